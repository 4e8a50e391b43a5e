package device

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/pairgate/pairgate/secret"
)

// Setup-token limits (SPEC section 3).
const (
	DefaultTokenTTL = 10 * time.Minute
	MaxTokenTTL     = time.Hour
	tokenIssuer     = "pairgate"
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

// Errors of Verify; each maps to the protocol's error code of the same name.
var (
	ErrInvalidToken = errors.New("invalid_token")
	ErrTokenExpired = errors.New("token_expired")
)

// Claims are a setup token's claims.
type Claims struct {
	jwt.RegisteredClaims
	Role   string   `json:"role"`
	Scopes []string `json:"scopes"`
	Label  string   `json:"label,omitempty"`
}

// Keys signs and verifies setup tokens. Each key is named by a kid and
// derived from the pairing secret, so rotating adds a name, not a file.
type Keys struct {
	current string
	keys    map[string][]byte
}

// NewKeys derives the key of every kid in known (which must include
// current, the one that signs) from the pairing secret. Tokens naming any
// other kid are refused.
func NewKeys(sec secret.Secret, current string, known []string) (Keys, error) {
	k := Keys{current: current, keys: map[string][]byte{}}
	for _, kid := range known {
		if kid == "" {
			return Keys{}, errors.New("setup-token key with an empty kid")
		}
		k.keys[kid] = sec.Derive(KeyPurpose(kid))
	}
	if k.keys[current] == nil {
		return Keys{}, fmt.Errorf("signing key %q is not among the known keys", current)
	}
	return k, nil
}

// KeyPurpose is the HKDF info for a setup-token key: one key per kid.
func KeyPurpose(kid string) string { return "pairgate/v1/setup-token/" + kid }

// IssueParams describe a new setup token.
type IssueParams struct {
	URL    string // the audience: the normalised WebSocket URL
	Role   string // RoleNode or RoleOperator
	Scopes []string
	Label  string
	TTL    time.Duration // 0 means DefaultTokenTTL; at most MaxTokenTTL
	Now    time.Time
}

// Issue signs a setup token: HS256, header {"alg","typ","kid"}, claims iss,
// aud, jti (128 random bits, hex), iat, exp, role, scopes, label.
func (k Keys) Issue(p IssueParams) (token string, claims Claims, err error) {
	if p.TTL == 0 {
		p.TTL = DefaultTokenTTL
	}
	if p.TTL < 0 || p.TTL > MaxTokenTTL {
		return "", Claims{}, fmt.Errorf("setup token lifetime %s: must be between 1s and %s", p.TTL, MaxTokenTTL)
	}
	if p.Role != RoleNode && p.Role != RoleOperator {
		return "", Claims{}, fmt.Errorf("role %q: want %s or %s", p.Role, RoleNode, RoleOperator)
	}
	key := k.keys[k.current]
	if key == nil {
		return "", Claims{}, errors.New("no signing key: make Keys with NewKeys")
	}
	var jti [16]byte
	rand.Read(jti[:])
	scopes := p.Scopes
	if scopes == nil {
		scopes = []string{}
	}
	now := p.Now.Truncate(time.Second)
	claims = Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    tokenIssuer,
			Audience:  jwt.ClaimStrings{p.URL},
			ID:        hex.EncodeToString(jti[:]),
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(p.TTL)),
		},
		Role: p.Role, Scopes: scopes, Label: p.Label,
	}
	t := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	t.Header["kid"] = k.current
	token, err = t.SignedString(key)
	return token, claims, err
}

// Verify checks a setup token presented at a WebSocket URL: HS256 only (so
// never "none"), a known kid, a valid signature, iss "pairgate", an aud equal
// to one of urls, an exp in the future, and iat and exp as Issue writes them
// (tokenTimes, checkLifetime). It does not consume the token: single use is
// the store's job, in the transaction that creates the device request.
func (k Keys) Verify(token string, urls []string, now time.Time) (Claims, error) {
	if len(urls) == 0 {
		return Claims{}, fmt.Errorf("%w: no audience to check against", ErrInvalidToken)
	}
	var claims Claims
	_, err := jwt.ParseWithClaims(token, &claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		key := k.keys[kid]
		if key == nil {
			return nil, fmt.Errorf("unknown key id %q", kid)
		}
		return key, nil
	},
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuer(tokenIssuer),
		jwt.WithAudience(urls...),
		jwt.WithTimeFunc(func() time.Time { return now }),
		jwt.WithStrictDecoding(),
	)
	if err != nil && !errors.Is(err, jwt.ErrTokenExpired) {
		return Claims{}, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	// The signature verified (golang-jwt checks claims, expiry among them,
	// only after it). A malformed time is refused as such, even when the
	// library read it as past; an expired token's lifetime no longer
	// matters.
	iat, exp, terr := tokenTimes(token)
	if terr != nil {
		return Claims{}, fmt.Errorf("%w: %v", ErrInvalidToken, terr)
	}
	if err != nil {
		return Claims{}, fmt.Errorf("%w: the setup token expired; ask the operator for a new setup code", ErrTokenExpired)
	}
	if terr := checkLifetime(iat, exp, now); terr != nil {
		return Claims{}, fmt.Errorf("%w: %v", ErrInvalidToken, terr)
	}
	if claims.ID == "" || (claims.Role != RoleNode && claims.Role != RoleOperator) {
		return Claims{}, fmt.Errorf("%w: the token lacks a jti or a valid role", ErrInvalidToken)
	}
	return claims, nil
}

// tokenTimes reads a token's iat and exp as they were written, which
// golang-jwt does not check: its NumericDate also reads a numeric string
// ("exp":"1999999999") or a fraction, and iat is optional to it. Issue writes
// both as whole numbers of unix seconds, so anything else was not made by
// Issue. token must have parsed already.
func tokenTimes(token string) (iat, exp int64, err error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return 0, 0, errors.New("not a JWT")
	}
	payload, err := b64url.Strict().DecodeString(parts[1])
	if err != nil {
		return 0, 0, errors.New("the claims are not base64url")
	}
	var raw struct {
		IssuedAt  json.RawMessage `json:"iat"`
		ExpiresAt json.RawMessage `json:"exp"`
	}
	if err := json.Unmarshal(payload, &raw); err != nil {
		return 0, 0, errors.New("the claims are not a JSON object")
	}
	if iat, err = unixSeconds("iat", raw.IssuedAt); err != nil {
		return 0, 0, err
	}
	if exp, err = unixSeconds("exp", raw.ExpiresAt); err != nil {
		return 0, 0, err
	}
	return iat, exp, nil
}

// checkLifetime refuses what Issue never makes: exp not after iat, a
// lifetime over MaxTokenTTL, or an exp more than MaxTokenTTL (plus
// issuerClockAllowance) after now.
func checkLifetime(iat, exp int64, now time.Time) error {
	switch {
	case exp <= iat:
		return errors.New("exp is not after iat")
	case exp-iat > int64(MaxTokenTTL/time.Second):
		return fmt.Errorf("exp is %d s after iat: a setup token lives at most %s", exp-iat, MaxTokenTTL)
	case exp > now.Add(MaxTokenTTL+issuerClockAllowance).Unix():
		return fmt.Errorf("exp is more than %s from now", MaxTokenTTL)
	}
	return nil
}

// unixSeconds reads a JSON number of whole, positive unix seconds.
func unixSeconds(name string, raw json.RawMessage) (int64, error) {
	if len(raw) == 0 || raw[0] < '0' || raw[0] > '9' {
		return 0, fmt.Errorf("%s is missing or not a JSON number", name)
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s is not a whole, positive number of seconds", name)
	}
	return n, nil
}
