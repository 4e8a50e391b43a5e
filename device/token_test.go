package device

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/pairgate/pairgate/secret"
)

const testURL = "wss://gw.example.com/pair"

var t0 = time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)

var testSecret = func() secret.Secret {
	s, _ := secret.FromBytes(bytes.Repeat([]byte{5}, secret.Size))
	return s
}()

// testKeys knows kids "k1" and "k2"; "k1" signs.
func testKeys(t testing.TB) Keys {
	k, err := NewKeys(testSecret, "k1", []string{"k1", "k2"})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestIssueAndVerify(t *testing.T) {
	k := testKeys(t)
	tok, issued, err := k.Issue(IssueParams{URL: testURL, Role: RoleNode, Scopes: []string{"chat"}, Label: "kitchen", Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	header, _, _ := strings.Cut(tok, ".")
	raw, _ := base64.RawURLEncoding.DecodeString(header)
	var h map[string]string
	json.Unmarshal(raw, &h)
	if h["alg"] != "HS256" || h["typ"] != "JWT" || h["kid"] != "k1" {
		t.Errorf("header %v", h)
	}
	got, err := k.Verify(tok, []string{testURL}, t0.Add(9*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != issued.ID || len(got.ID) != 32 || got.Role != RoleNode || got.Label != "kitchen" || got.Scopes[0] != "chat" ||
		!got.ExpiresAt.Equal(t0.Add(DefaultTokenTTL)) || got.Issuer != "pairgate" {
		t.Errorf("claims %+v", got)
	}
	// A rotated-in key signs; tokens of the old one keep verifying while it
	// is known.
	k2, err := NewKeys(testSecret, "k2", []string{"k1", "k2"})
	if err != nil {
		t.Fatal(err)
	}
	tok2, _, _ := k2.Issue(IssueParams{URL: testURL, Role: RoleOperator, Now: t0})
	if _, err := k.Verify(tok2, []string{testURL}, t0); err != nil {
		t.Errorf("a token of the newer key: %v", err)
	}
	if _, err := k2.Verify(tok, []string{testURL}, t0); err != nil {
		t.Errorf("a token of the older key after rotation: %v", err)
	}
}

func TestIssueRefuses(t *testing.T) {
	k := testKeys(t)
	for _, p := range []IssueParams{
		{URL: testURL, Role: RoleNode, TTL: 2 * time.Hour, Now: t0},
		{URL: testURL, Role: RoleNode, TTL: -time.Minute, Now: t0},
		{URL: testURL, Role: "admin", Now: t0},
	} {
		if _, _, err := k.Issue(p); err == nil {
			t.Errorf("Issue(%+v) succeeded", p)
		}
	}
	if _, err := NewKeys(testSecret, "gone", []string{"k1"}); err == nil {
		t.Error("NewKeys with a signing key it does not know succeeded")
	}
	if _, _, err := (Keys{}).Issue(IssueParams{URL: testURL, Role: RoleNode, Now: t0}); err == nil {
		t.Error("Issue with zero Keys succeeded")
	}
	// After rotation drops k1, its tokens stop verifying.
	old, _, _ := k.Issue(IssueParams{URL: testURL, Role: RoleNode, Now: t0})
	k2only, _ := NewKeys(testSecret, "k2", []string{"k2"})
	if _, err := k2only.Verify(old, []string{testURL}, t0); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("a token of a dropped key: %v", err)
	}
}

// sign makes a token by hand, for the shapes Issue never makes.
func sign(t *testing.T, method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestVerifyRefuses(t *testing.T) {
	k := testKeys(t)
	key := testSecret.Derive(KeyPurpose("k1"))
	good := func() jwt.MapClaims {
		return jwt.MapClaims{"iss": "pairgate", "aud": testURL, "jti": "00112233445566778899aabbccddeeff",
			"iat": t0.Unix(), "exp": t0.Add(10 * time.Minute).Unix(), "role": "node", "scopes": []string{}}
	}
	without := func(field string) jwt.MapClaims { c := good(); delete(c, field); return c }
	with := func(field string, v any) jwt.MapClaims { c := good(); c[field] = v; return c }
	valid, _, _ := k.Issue(IssueParams{URL: testURL, Role: RoleNode, Now: t0})
	head, rest, _ := strings.Cut(valid, ".")
	payload, sig, _ := strings.Cut(rest, ".")
	noneHeader := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT","kid":"k1"}`))
	tamperedPayload, _ := base64.RawURLEncoding.DecodeString(payload)
	tamperedPayload = bytes.Replace(tamperedPayload, []byte(`"node"`), []byte(`"operator"`), 1)

	tests := []struct {
		name  string
		token string
		want  error
	}{
		{"hand-made good token (control)", sign(t, jwt.SigningMethodHS256, key, "k1", good()), nil},
		{"alg none", noneHeader + "." + payload + ".", ErrInvalidToken},
		{"alg none via the library", sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "k1", good()), ErrInvalidToken},
		{"alg HS512", sign(t, jwt.SigningMethodHS512, key, "k1", good()), ErrInvalidToken},
		{"missing exp", sign(t, jwt.SigningMethodHS256, key, "k1", without("exp")), ErrInvalidToken},
		{"expired", sign(t, jwt.SigningMethodHS256, key, "k1", with("exp", t0.Add(-time.Second).Unix())), ErrTokenExpired},
		{"wrong aud", sign(t, jwt.SigningMethodHS256, key, "k1", with("aud", "wss://evil.example.com/pair")), ErrInvalidToken},
		{"wrong iss", sign(t, jwt.SigningMethodHS256, key, "k1", with("iss", "nexo")), ErrInvalidToken},
		{"no jti", sign(t, jwt.SigningMethodHS256, key, "k1", without("jti")), ErrInvalidToken},
		{"bad role", sign(t, jwt.SigningMethodHS256, key, "k1", with("role", "root")), ErrInvalidToken},
		{"bad signature", sign(t, jwt.SigningMethodHS256, []byte("not the key"), "k1", good()), ErrInvalidToken},
		{"tampered payload", head + "." + base64.RawURLEncoding.EncodeToString(tamperedPayload) + "." + sig, ErrInvalidToken},
		{"unknown kid", sign(t, jwt.SigningMethodHS256, key, "k9", good()), ErrInvalidToken},
		{"no kid", sign(t, jwt.SigningMethodHS256, key, "", good()), ErrInvalidToken},
		{"other key's kid", sign(t, jwt.SigningMethodHS256, key, "k2", good()), ErrInvalidToken},
		{"garbage", "not.a.jwt", ErrInvalidToken},
		{"empty", "", ErrInvalidToken},
	}
	for _, tt := range tests {
		_, err := k.Verify(tt.token, []string{testURL}, t0)
		if (tt.want == nil) != (err == nil) || (tt.want != nil && !errors.Is(err, tt.want)) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.want)
		}
	}
}

func FuzzVerify(f *testing.F) {
	k := testKeys(f)
	// A fixed token, identical in every fuzzing worker process.
	fixed := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"iss": "pairgate", "aud": testURL,
		"jti": "00112233445566778899aabbccddeeff", "iat": t0.Unix(), "exp": t0.Add(time.Minute).Unix(), "role": "node", "scopes": []string{}})
	fixed.Header["kid"] = "k1"
	valid, err := fixed.SignedString(testSecret.Derive(KeyPurpose("k1")))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, tok string) {
		claims, err := k.Verify(tok, []string{testURL}, t0)
		if err != nil {
			if !errors.Is(err, ErrInvalidToken) && !errors.Is(err, ErrTokenExpired) {
				t.Fatalf("error of no known kind: %v", err)
			}
			return
		}
		// HMAC over the exact text, with strict base64: only the token we
		// signed can verify.
		if tok != valid || claims.ID == "" {
			t.Fatalf("verified a token we did not sign: %q", tok)
		}
	})
}

func BenchmarkIssueVerify(b *testing.B) {
	k := testKeys(b)
	for b.Loop() {
		tok, _, err := k.Issue(IssueParams{URL: testURL, Role: RoleNode, Now: t0})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := k.Verify(tok, []string{testURL}, t0); err != nil {
			b.Fatal(err)
		}
	}
}
