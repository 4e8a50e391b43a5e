package device

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pairgate/pairgate/secret"
	"github.com/pairgate/pairgate/store"
)

// Setup-token limits (SPEC section 3).
const (
	DefaultTokenTTL = 10 * time.Minute
	MaxTokenTTL     = time.Hour
	// issuerClockAllowance is how far the clock of the process that issued
	// a token (the CLI, another replica) may run ahead of the verifier's
	// before the token's exp counts as too far away. NTP keeps hosts well
	// within a second; a minute tolerates a host whose NTP lapsed for a
	// while, and lets no token live more than a minute past MaxTokenTTL.
	issuerClockAllowance = time.Minute
)

// Roles a device may pair as.
const (
	RoleNode     = "node"
	RoleOperator = "operator"
)

// Errors of Verify and of the stored token's checks; each maps to the
// protocol's error code of the same name.
var (
	ErrInvalidToken = errors.New("invalid_token")
	ErrTokenExpired = errors.New("token_expired")
)

// The compact setup token of SPEC section 3:
//
//	"pg2_" + base64url-nopad(kid[1] ‖ exp[4] ‖ id[12] ‖ tag[16])
//
// exp is big-endian unix seconds; tag is the first 16 bytes of
// HMAC-SHA256(key kid, "pg2_" ‖ kid ‖ exp ‖ id). 33 bytes are a whole
// number of base64 groups, so the text has one spelling: 48 characters.
const (
	tokenPrefix = "pg2_"
	tokenIDLen  = 12
	tagLen      = 16
	signedLen   = 1 + 4 + tokenIDLen // kid ‖ exp ‖ id
	rawLen      = signedLen + tagLen // 33
	// tokenLen is the length of every setup token pairgate issues.
	tokenLen = len(tokenPrefix) + rawLen/3*4 // 48
)

var tokenEncoding = base64.RawURLEncoding

// TokenID is a setup token's random id: it names the stored row that says
// what the token is for.
type TokenID [tokenIDLen]byte

// String is the id as the store keeps it: lowercase hex.
func (id TokenID) String() string { return hex.EncodeToString(id[:]) }

// Token is what a setup token says, once its tag has verified.
type Token struct {
	KID       uint8     // the number of the key that signed it
	ExpiresAt time.Time // UTC, whole seconds
	ID        TokenID
}

// Keys signs and verifies setup tokens. Key number n (the token's kid byte,
// 1 to 255) is derived from the pairing secret with KeyPurpose(n), so
// verifying needs no storage: a forged token costs no read, and a token
// signed a moment ago by another process, with a key it just made, verifies
// here at once. Which number signs is the store's to say (SigningKeys). A
// *Keys is safe for concurrent use.
type Keys struct {
	sec   secret.Secret
	byKID [256]atomic.Pointer[tagKey] // derived on first use
}

// tagKey is one key, with a pool of HMACs keyed with it: a pooled HMAC is
// reset rather than re-keyed, so a tag costs two SHA-256 blocks and no
// allocation.
type tagKey struct {
	macs sync.Pool // of *tagMAC
}

type tagMAC struct {
	h   hash.Hash
	buf [sha256.Size]byte // the message going in, then the sum coming out
}

// NewKeys returns the setup-token keys of the pairing secret.
func NewKeys(sec secret.Secret) *Keys { return &Keys{sec: sec} }

// KeyPurpose is the HKDF info of setup-token key kid.
func KeyPurpose(kid uint8) string { return "pairgate/v2/setup-token/" + strconv.Itoa(int(kid)) }

// key returns key kid (not 0), deriving it on first use.
func (k *Keys) key(kid uint8) *tagKey {
	if t := k.byKID[kid].Load(); t != nil {
		return t
	}
	raw := k.sec.Derive(KeyPurpose(kid))
	t := &tagKey{macs: sync.Pool{New: func() any { return &tagMAC{h: hmac.New(sha256.New, raw)} }}}
	if k.byKID[kid].CompareAndSwap(nil, t) {
		return t
	}
	return k.byKID[kid].Load()
}

// tag computes the tag of a token's first signedLen bytes.
func (t *tagKey) tag(signed []byte) (tag [tagLen]byte) {
	m := t.macs.Get().(*tagMAC)
	m.h.Reset()
	n := copy(m.buf[:], tokenPrefix)
	n += copy(m.buf[n:], signed)
	m.h.Write(m.buf[:n])
	copy(tag[:], m.h.Sum(m.buf[:0]))
	t.macs.Put(m)
	return tag
}

// Issue makes a setup token signed by key kid, with a fresh random id,
// expiring ttl after now (DefaultTokenTTL when ttl is 0), rounded down to
// the second. ttl must be from 1s to MaxTokenTTL.
func (k *Keys) Issue(kid uint8, now time.Time, ttl time.Duration) (string, Token, error) {
	if ttl == 0 {
		ttl = DefaultTokenTTL
	}
	if ttl < time.Second || ttl > MaxTokenTTL {
		return "", Token{}, fmt.Errorf("setup token lifetime %s: must be between 1s and %s", ttl, MaxTokenTTL)
	}
	if kid == 0 {
		return "", Token{}, errors.New("setup-token key 0: keys are numbered from 1")
	}
	exp := now.Add(ttl).Unix()
	if exp <= 0 || exp > math.MaxUint32 {
		return "", Token{}, fmt.Errorf("setup token expiry %d: outside what 4 bytes of unix seconds hold", exp)
	}
	t := Token{KID: kid, ExpiresAt: time.Unix(exp, 0).UTC()}
	rand.Read(t.ID[:])
	return k.encode(t), t, nil
}

// encode writes t as a token, tagged with key t.KID (not 0).
func (k *Keys) encode(t Token) string {
	var raw [rawLen]byte
	raw[0] = t.KID
	binary.BigEndian.PutUint32(raw[1:5], uint32(t.ExpiresAt.Unix()))
	copy(raw[5:signedLen], t.ID[:])
	tag := k.key(t.KID).tag(raw[:signedLen])
	copy(raw[signedLen:], tag[:])
	var text [tokenLen]byte
	copy(text[:], tokenPrefix)
	tokenEncoding.Encode(text[len(tokenPrefix):], raw[:])
	return string(text[:])
}

// Verify checks what a setup token says by itself, in this order and
// without reading any storage: its form, a kid from 1 to 255, its tag (in
// constant time), then exp: ErrTokenExpired once now reaches it, ErrInvalidToken if
// it is further away than a token may live. Whether the token was issued
// for this gateway, and is unused, is for the stored row to tell
// (checkStored); consuming it is the store's job, in the transaction that
// creates the device request.
func (k *Keys) Verify(token string, now time.Time) (Token, error) {
	if len(token) != tokenLen || token[:len(tokenPrefix)] != tokenPrefix {
		return Token{}, fmt.Errorf("%w: not a pairgate setup token (%q followed by %d characters)", ErrInvalidToken, tokenPrefix, tokenLen-len(tokenPrefix))
	}
	var text [tokenLen - len(tokenPrefix)]byte
	copy(text[:], token[len(tokenPrefix):])
	// The decoder skips line breaks, so a token with one decodes short.
	var raw [rawLen]byte
	if n, err := tokenEncoding.Decode(raw[:], text[:]); err != nil || n != rawLen {
		return Token{}, fmt.Errorf("%w: the token is not base64url", ErrInvalidToken)
	}
	if raw[0] == 0 {
		return Token{}, fmt.Errorf("%w: key number 0", ErrInvalidToken)
	}
	want := k.key(raw[0]).tag(raw[:signedLen])
	if subtle.ConstantTimeCompare(want[:], raw[signedLen:rawLen]) != 1 {
		return Token{}, fmt.Errorf("%w: the tag does not verify", ErrInvalidToken)
	}
	t := Token{KID: raw[0], ExpiresAt: time.Unix(int64(binary.BigEndian.Uint32(raw[1:5])), 0).UTC()}
	copy(t.ID[:], raw[5:signedLen])
	switch {
	case !now.Before(t.ExpiresAt):
		return Token{}, fmt.Errorf("%w: the setup token expired; ask the operator for a new setup code", ErrTokenExpired)
	case t.ExpiresAt.After(now.Add(MaxTokenTTL + issuerClockAllowance)):
		return Token{}, fmt.Errorf("%w: the token expires more than %s from now", ErrInvalidToken, MaxTokenTTL)
	}
	return t, nil
}

// checkStored checks the row stored for a verified token: that it is the
// row of that token (same key, same expiry), that it lived no longer than
// MaxTokenTTL, that it names a valid role, and that it was issued for one of
// urls (the configured public URL and the one the device connected to). It
// does not look at UsedAt: single use is the store's, atomically.
func checkStored(t Token, row store.SetupToken, urls []string) error {
	switch {
	case row.KID != t.KID || !row.ExpiresAt.Equal(t.ExpiresAt):
		return fmt.Errorf("%w: the stored token is not the one presented", ErrInvalidToken)
	case row.ExpiresAt.Sub(row.CreatedAt) > MaxTokenTTL || !row.ExpiresAt.After(row.CreatedAt):
		return fmt.Errorf("%w: the token was stored with a lifetime of %s; a setup token lives at most %s",
			ErrInvalidToken, row.ExpiresAt.Sub(row.CreatedAt), MaxTokenTTL)
	case row.Role != RoleNode && row.Role != RoleOperator:
		return fmt.Errorf("%w: the token was stored with role %q", ErrInvalidToken, row.Role)
	}
	for _, u := range urls {
		if u == row.URL {
			return nil
		}
	}
	return fmt.Errorf("%w: the setup code was issued for another gateway URL", ErrInvalidToken)
}
