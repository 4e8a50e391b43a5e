package device

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/pairgate/pairgate/secret"
)

// Setup-token limits (SPEC section 3).
const (
	DefaultTokenTTL = 10 * time.Minute
	MaxTokenTTL     = time.Hour
	tokenIssuer     = "pairgate"
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
// to one of urls, and an exp in the future. It does not
// consume the token: single use is the store's job, in the transaction that
// creates the device request.
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
	switch {
	case err == nil:
	case errors.Is(err, jwt.ErrTokenExpired):
		return Claims{}, fmt.Errorf("%w: the setup token expired; ask the operator for a new setup code", ErrTokenExpired)
	default:
		return Claims{}, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	if claims.ID == "" || (claims.Role != RoleNode && claims.Role != RoleOperator) {
		return Claims{}, fmt.Errorf("%w: the token lacks a jti or a valid role", ErrInvalidToken)
	}
	return claims, nil
}
