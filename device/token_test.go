package device

import (
	"bytes"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pairgate/pairgate/secret"
	"github.com/pairgate/pairgate/store"
)

const testURL = "wss://gw.example.com/pair"

var t0 = time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)

var testSecret = func() secret.Secret {
	s, _ := secret.FromBytes(bytes.Repeat([]byte{5}, secret.Size))
	return s
}()

// rawToken decodes a token's 33 bytes, failing the test if it is not one.
func rawToken(t *testing.T, tok string) []byte {
	t.Helper()
	body, ok := strings.CutPrefix(tok, "pg2_")
	raw, err := base64.RawURLEncoding.Strict().DecodeString(body)
	if !ok || err != nil || len(raw) != 33 || len(tok) != 48 {
		t.Fatalf("token %q is not pg2_ and 33 bytes of base64url (%v)", tok, err)
	}
	return raw
}

func reencode(raw []byte) string { return "pg2_" + base64.RawURLEncoding.EncodeToString(raw) }

// TestTokenFormat checks an issued token against SPEC section 3, computed
// here with the standard library alone: kid ‖ exp ‖ id ‖ the first 16 bytes
// of HMAC-SHA256 over "pg2_" and those 17 bytes, under the key HKDF-SHA256
// derives from the pairing secret for that key's number and salt.
func TestTokenFormat(t *testing.T) {
	k := NewKeys(testSecret)
	tok, issued, err := k.Issue(2, t0.Add(500*time.Millisecond), 0)
	if err != nil {
		t.Fatal(err)
	}
	raw := rawToken(t, tok)
	if raw[0] != 2 || issued.KID != 2 {
		t.Errorf("kid %d (Token says %d), want 2: the key it was issued with", raw[0], issued.KID)
	}
	wantExp := t0.Add(DefaultTokenTTL)
	if exp := binary.BigEndian.Uint32(raw[1:5]); int64(exp) != wantExp.Unix() || !issued.ExpiresAt.Equal(wantExp) {
		t.Errorf("exp %d (Token says %v), want %d: issue time plus 10 min, rounded down", exp, issued.ExpiresAt, wantExp.Unix())
	}
	if !bytes.Equal(raw[5:17], issued.ID[:]) || issued.ID == (TokenID{}) {
		t.Errorf("id %x, Token says %x", raw[5:17], issued.ID)
	}
	key, err := hkdf.Key(sha256.New, bytes.Repeat([]byte{5}, 32), nil, "pairgate/v2/setup-token/2", 32)
	if err != nil {
		t.Fatal(err)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte("pg2_"))
	mac.Write(raw[:17])
	if want := mac.Sum(nil)[:16]; !bytes.Equal(raw[17:], want) {
		t.Errorf("tag %x, want %x", raw[17:], want)
	}
	got, err := k.Verify(tok, t0.Add(DefaultTokenTTL-time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(issued, got); diff != "" {
		t.Errorf("Verify (-issued +verified):\n%s", diff)
	}
	if other, _, _ := k.Issue(2, t0, 0); other == tok {
		t.Error("two tokens issued alike")
	}
}

// Every key number verifies with its own key, derived from the secret
// alone: a token of a key retired by a rotation keeps verifying (until it
// expires), in any process holding the secret; another secret's key of the
// same number verifies nothing here.
func TestKeyNumbers(t *testing.T) {
	k := NewKeys(testSecret)
	var raws [][]byte
	for _, kid := range []uint8{1, 2, 255} {
		tok, _, err := k.Issue(kid, t0, 0)
		if err != nil {
			t.Fatal(err)
		}
		raw := rawToken(t, tok)
		if raw[0] != kid {
			t.Errorf("issued with key %d, the token names key %d", kid, raw[0])
		}
		raws = append(raws, raw)
		if _, err := NewKeys(testSecret).Verify(tok, t0); err != nil {
			t.Errorf("key %d's token, verified by another Keys of the same secret: %v", kid, err)
		}
		other, _ := secret.FromBytes(bytes.Repeat([]byte{6}, secret.Size))
		if _, err := NewKeys(other).Verify(tok, t0); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("key %d's token under another secret: %v", kid, err)
		}
	}
	if bytes.Equal(raws[0][17:], raws[1][17:]) {
		t.Error("two keys gave the same tag")
	}
}

func TestIssueRefuses(t *testing.T) {
	k := NewKeys(testSecret)
	for _, ttl := range []time.Duration{2 * time.Hour, MaxTokenTTL + time.Second, -time.Minute, 500 * time.Millisecond} {
		if tok, _, err := k.Issue(1, t0, ttl); err == nil {
			t.Errorf("Issue with lifetime %s: %s", ttl, tok)
		}
	}
	if _, _, err := k.Issue(1, t0, MaxTokenTTL); err != nil {
		t.Errorf("Issue with the maximum lifetime: %v", err)
	}
	if _, _, err := k.Issue(1, time.Unix(math.MaxUint32-59, 0), time.Minute); err == nil {
		t.Error("Issue past what 4 bytes of unix seconds hold succeeded")
	}
	if _, _, err := k.Issue(0, t0, 0); err == nil {
		t.Error("Issue with key 0 succeeded")
	}
}

func TestVerifyRefuses(t *testing.T) {
	k := NewKeys(testSecret)
	valid, issued, err := k.Issue(2, t0, 0)
	if err != nil {
		t.Fatal(err)
	}
	raw := rawToken(t, valid)
	with := func(i int, b byte) string {
		r := bytes.Clone(raw)
		r[i] = b
		return reencode(r)
	}
	retag := func(i int, bit byte) string { return with(17+i, raw[17+i]^bit) }
	otherHome := func() string {
		s, _ := secret.FromBytes(bytes.Repeat([]byte{6}, secret.Size))
		tok, _, _ := NewKeys(s).Issue(2, t0, 0)
		return tok
	}()
	// Tokens that Issue would not make, tagged with our own key: the
	// verifier refuses what it did not issue even when the tag is good.
	tagged := func(exp time.Time) string { return k.encode(Token{KID: 2, ExpiresAt: exp, ID: issued.ID}) }
	maxAhead := t0.Add(MaxTokenTTL + issuerClockAllowance)

	tests := []struct {
		name  string
		token string
		want  error
	}{
		{"issued (control)", valid, nil},
		{"tagged by hand (control)", tagged(issued.ExpiresAt), nil},
		{"lives the maximum, issued a minute ahead (control)", tagged(maxAhead), nil},
		{"expires a second too far ahead", tagged(maxAhead.Add(time.Second)), ErrInvalidToken},
		{"expires in 100 days", tagged(t0.Add(100 * 24 * time.Hour)), ErrInvalidToken},
		{"expired", tagged(t0.Add(-time.Second)), ErrTokenExpired},
		{"expires now", tagged(t0), ErrTokenExpired},
		{"expired long ago", tagged(time.Unix(1, 0)), ErrTokenExpired},
		{"another home's secret, same key number", otherHome, ErrInvalidToken},
		{"truncated by one character", valid[:47], ErrInvalidToken},
		{"truncated to the prefix", "pg2_", ErrInvalidToken},
		{"one character more", valid + "A", ErrInvalidToken},
		{"a tag bit flipped (first)", retag(0, 0x01), ErrInvalidToken},
		{"a tag bit flipped (last)", retag(15, 0x80), ErrInvalidToken},
		{"tag zeroed", reencode(append(bytes.Clone(raw[:17]), make([]byte, 16)...)), ErrInvalidToken},
		{"kid moved to another key", with(0, 1), ErrInvalidToken},
		{"kid moved to key 255", with(0, 255), ErrInvalidToken},
		{"kid 0", with(0, 0), ErrInvalidToken},
		{"exp moved a second later", with(4, raw[4]+1), ErrInvalidToken},
		{"id changed", with(5, raw[5]^1), ErrInvalidToken},
		{"another prefix", "pg1_" + valid[4:], ErrInvalidToken},
		{"upper-case prefix", "PG2_" + valid[4:], ErrInvalidToken},
		{"not base64url", valid[:20] + "!" + valid[21:], ErrInvalidToken},
		{"a standard-alphabet character", valid[:20] + "+" + valid[21:], ErrInvalidToken},
		{"a line break inside", valid[:20] + "\n" + valid[21:], ErrInvalidToken},
		{"padded", valid[:47] + "=", ErrInvalidToken},
		{"a JWT", "eyJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJwYWlyZ2F0ZSJ9.c2lnbmF0dXJl", ErrInvalidToken},
		{"empty", "", ErrInvalidToken},
	}
	for _, tt := range tests {
		got, err := k.Verify(tt.token, t0)
		if (tt.want == nil) != (err == nil) || (tt.want != nil && !errors.Is(err, tt.want)) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.want)
		}
		if err != nil && got != (Token{}) {
			t.Errorf("%s: refused, yet returned %+v", tt.name, got)
		}
		if err != nil && len(tt.token) > 8 && strings.Contains(err.Error(), tt.token[4:]) {
			t.Errorf("%s: the error repeats the token: %v", tt.name, err)
		}
	}
}

// A validly tagged token is only as good as the row stored with it: the
// row must be the token's, live no longer than MaxTokenTTL (whatever the
// issuing process's bug or clock), name a role and this gateway's URL.
func TestCheckStored(t *testing.T) {
	tok := Token{KID: 2, ExpiresAt: t0.Add(10 * time.Minute), ID: TokenID{1, 2, 3}}
	good := store.SetupToken{ID: tok.ID.String(), KID: 2, Role: RoleNode, URL: testURL, CreatedAt: t0, ExpiresAt: tok.ExpiresAt}
	urls := []string{"wss://configured.example.com/pair", testURL}
	row := func(change func(*store.SetupToken)) store.SetupToken { r := good; change(&r); return r }
	tests := []struct {
		name string
		row  store.SetupToken
		ok   bool
	}{
		{"as issued (control)", good, true},
		{"operator (control)", row(func(r *store.SetupToken) { r.Role = RoleOperator }), true},
		{"the configured URL (control)", row(func(r *store.SetupToken) { r.URL = urls[0] }), true},
		{"lifetime exactly the maximum (control)", row(func(r *store.SetupToken) { r.CreatedAt = r.ExpiresAt.Add(-MaxTokenTTL) }), true},
		{"used (single use is the store's)", row(func(r *store.SetupToken) { r.UsedAt = t0 }), true},
		{"lifetime a second over the maximum", row(func(r *store.SetupToken) { r.CreatedAt = r.ExpiresAt.Add(-MaxTokenTTL - time.Second) }), false},
		{"lifetime of years", row(func(r *store.SetupToken) { r.CreatedAt = time.Unix(0, 0) }), false},
		{"expires before it was issued", row(func(r *store.SetupToken) { r.CreatedAt = r.ExpiresAt.Add(time.Minute) }), false},
		{"expires as it was issued", row(func(r *store.SetupToken) { r.CreatedAt = r.ExpiresAt }), false},
		{"another key", row(func(r *store.SetupToken) { r.KID = 1 }), false},
		{"another expiry", row(func(r *store.SetupToken) { r.ExpiresAt = r.ExpiresAt.Add(time.Second) }), false},
		{"another gateway", row(func(r *store.SetupToken) { r.URL = "wss://elsewhere.example.com/pair" }), false},
		{"the URL differing in case", row(func(r *store.SetupToken) { r.URL = strings.ToUpper(testURL) }), false},
		{"no role", row(func(r *store.SetupToken) { r.Role = "" }), false},
		{"role root", row(func(r *store.SetupToken) { r.Role = "root" }), false},
	}
	for _, tt := range tests {
		err := checkStored(tok, tt.row, urls)
		if tt.ok != (err == nil) || (err != nil && !errors.Is(err, ErrInvalidToken)) {
			t.Errorf("%s: %v, want ok %v", tt.name, err, tt.ok)
		}
	}
	if err := checkStored(tok, good, nil); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("no URL to check against: %v", err)
	}
}

// nextKey numbers keys in turn, 255 wrapping to 1, never taking the number
// of a key still kept.
func TestNextKey(t *testing.T) {
	now := t0
	kept := func(kid uint8, retiredAgo time.Duration) store.SigningKey {
		k := store.SigningKey{KID: kid}
		if retiredAgo > 0 {
			k.RetiredAt = now.Add(-retiredAgo)
		}
		return k
	}
	tests := []struct {
		name string
		list []store.SigningKey
		want uint8
	}{
		{"first key", nil, 1},
		{"after 1", []store.SigningKey{kept(1, 0)}, 2},
		{"after 7, with older keys", []store.SigningKey{kept(7, 0), kept(6, time.Minute), kept(200, 59*time.Minute)}, 8},
		{"255 wraps to 1", []store.SigningKey{kept(255, 0)}, 1},
		{"1 still verifies", []store.SigningKey{kept(255, 0), kept(1, time.Minute), kept(2, time.Minute)}, 3},
		{"1 retired an hour ago is dropped", []store.SigningKey{kept(255, 0), kept(1, time.Hour)}, 1},
	}
	for _, tt := range tests {
		k, err := nextKey(tt.list, now)
		if err != nil || k != (store.SigningKey{KID: tt.want, CreatedAt: now}) {
			t.Errorf("%s: %+v, %v; want key %d, made now", tt.name, k, err, tt.want)
		}
	}
	var all []store.SigningKey
	for n := 1; n <= 255; n++ {
		all = append(all, kept(uint8(n), time.Duration(n)*time.Second))
	}
	all[41].RetiredAt = time.Time{}
	if k, err := nextKey(all, now); err == nil {
		t.Errorf("every number kept: got key %d, want an error", k.KID)
	}
}

func FuzzVerify(f *testing.F) {
	k := NewKeys(testSecret)
	// A fixed token, identical in every fuzzing worker process.
	valid := k.encode(Token{KID: 2, ExpiresAt: t0.Add(time.Minute), ID: TokenID{0: 0xde, 11: 0xad}})
	f.Add(valid)
	f.Add("pg2_" + strings.Repeat("A", 44))
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, tok string) {
		got, err := k.Verify(tok, t0)
		if err != nil {
			if !errors.Is(err, ErrInvalidToken) && !errors.Is(err, ErrTokenExpired) {
				t.Fatalf("error of no known kind: %v", err)
			}
			return
		}
		// One spelling, an HMAC over all of it: only the token we tagged
		// verifies.
		if tok != valid || got.ID[0] != 0xde {
			t.Fatalf("verified a token we did not tag: %q", tok)
		}
	})
}

// BenchmarkIssueVerify is SPEC section 7's "setup token issue + verify":
// in process, without the store (≤ 2 µs, ≤ 4 allocs).
func BenchmarkIssueVerify(b *testing.B) {
	k := NewKeys(testSecret)
	b.ReportAllocs()
	for b.Loop() {
		tok, _, err := k.Issue(1, t0, 0)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := k.Verify(tok, t0); err != nil {
			b.Fatal(err)
		}
	}
}
