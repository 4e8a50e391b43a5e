package device

import (
	"encoding/json"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// A validly signed token says when it was issued and when it expires as
// whole JSON numbers, and lives no longer than MaxTokenTTL: the signing key
// is ours, but a token minted with a bug, a wrong clock or a stolen key
// must not outlive the maximum.
func TestVerifyRefusesBadTimes(t *testing.T) {
	k := testKeys(t)
	key := testSecret.Derive(KeyPurpose("k1"))
	unix := func(d time.Duration) int64 { return t0.Add(d).Unix() }
	claims := func(iat, exp any) jwt.MapClaims {
		c := jwt.MapClaims{"iss": "pairgate", "aud": testURL, "jti": "00112233445566778899aabbccddeeff", "role": "node", "scopes": []string{}}
		if iat != nil {
			c["iat"] = iat
		}
		if exp != nil {
			c["exp"] = exp
		}
		return c
	}
	str := func(n int64) string { return strconv.FormatInt(n, 10) }

	tests := []struct {
		name     string
		iat, exp any
		want     error
	}{
		{"issued now, default lifetime (control)", unix(0), unix(DefaultTokenTTL), nil},
		{"lifetime exactly the maximum (control)", unix(-time.Minute), unix(MaxTokenTTL - time.Minute), nil},
		{"issued a little ahead of the verifier's clock (control)", unix(30 * time.Second), unix(MaxTokenTTL + 30*time.Second), nil},
		{"exp a numeric string", unix(0), str(unix(10 * time.Minute)), ErrInvalidToken},
		{"exp a numeric string, in the past", unix(-time.Hour), str(unix(-time.Second)), ErrInvalidToken},
		{"iat a numeric string", str(unix(0)), unix(10 * time.Minute), ErrInvalidToken},
		{"exp a fraction", unix(0), json.Number(str(unix(10*time.Minute)) + ".5"), ErrInvalidToken},
		{"exp in exponent notation", unix(0), json.Number("1.9e9"), ErrInvalidToken},
		{"exp null", unix(0), json.RawMessage("null"), ErrInvalidToken},
		{"iat missing", nil, unix(10 * time.Minute), ErrInvalidToken},
		{"iat null", json.RawMessage("null"), unix(10 * time.Minute), ErrInvalidToken},
		{"lifetime over the maximum", unix(-30 * time.Minute), unix(31 * time.Minute), ErrInvalidToken},
		{"lifetime of years, issued at 0", 0, unix(10 * time.Minute), ErrInvalidToken},
		{"expires before it was issued", unix(5 * time.Minute), unix(4 * time.Minute), ErrInvalidToken},
		{"expires too far after now", unix(2 * time.Hour), unix(2*time.Hour + 10*time.Minute), ErrInvalidToken},
		{"exp far in the future, iat too", unix(100 * 24 * time.Hour), unix(100*24*time.Hour + time.Minute), ErrInvalidToken},
		{"expired, well formed", unix(-time.Hour), unix(-time.Second), ErrTokenExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := sign(t, jwt.SigningMethodHS256, key, "k1", claims(tt.iat, tt.exp))
			_, err := k.Verify(tok, []string{testURL}, t0)
			if (tt.want == nil) != (err == nil) || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Errorf("Verify: %v, want %v", err, tt.want)
			}
		})
	}
}
