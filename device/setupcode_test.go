package device

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The worked example quoted in README.md. Other implementations check
// themselves against these bytes, so a change here is a wire format change.
const (
	goldenURL   = "wss://gateway.example.com/pair"
	goldenToken = "pg2_AWsFVGgQERITFBUWFxgZGhvQ9ajAKIh5DWZ1oK-7chU3"
	goldenJSON  = `{"v":1,"url":"wss://gateway.example.com/pair","token":"pg2_AWsFVGgQERITFBUWFxgZGhvQ9ajAKIh5DWZ1oK-7chU3","expires_at":"2026-11-24T09:10:00Z"}`
	goldenCode  = "eyJ2IjoxLCJ1cmwiOiJ3c3M6Ly9nYXRld2F5LmV4YW1wbGUuY29tL3BhaXIiLCJ0b2tlbiI6InBnMl9BV3NGVkdnUUVSSVRGQlVXRnhnWkdodlE5YWpBS0loNURXWjFvSy03Y2hVMyIsImV4cGlyZXNfYXQiOiIyMDI2LTExLTI0VDA5OjEwOjAwWiJ9"
)

var goldenExpiry = time.Date(2026, 11, 24, 9, 10, 0, 0, time.UTC)

func golden() SetupCode {
	return SetupCode{Version: 1, URL: goldenURL, Token: goldenToken, ExpiresAt: goldenExpiry}
}

// b64 encodes a JSON text as a setup code does.
func b64(json string) string { return base64.RawURLEncoding.EncodeToString([]byte(json)) }

func TestEncodeSetupCodeGolden(t *testing.T) {
	paris := time.FixedZone("CET", 3600)
	for name, c := range map[string]SetupCode{
		"as is": golden(),
		// Version 0 means the current version; the zone and the fraction of
		// a second do not reach the wire.
		"defaults and rounding": {URL: goldenURL, Token: goldenToken, ExpiresAt: time.Date(2026, 11, 24, 10, 10, 0, 999_999_999, paris)},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := EncodeSetupCode(c)
			if err != nil {
				t.Fatal(err)
			}
			if got != goldenCode {
				t.Errorf("EncodeSetupCode = %s\nwant %s", got, goldenCode)
			}
			raw, err := base64.RawURLEncoding.DecodeString(got)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(goldenJSON, string(raw)); diff != "" {
				t.Errorf("JSON (-want +got):\n%s", diff)
			}
		})
	}
}

// TestEncodeSetupCodeEscaping pins the string escaping to what
// JSON.stringify writes: no HTML escaping, no \u2028 escaping, short forms
// for the usual control characters.
func TestEncodeSetupCodeEscaping(t *testing.T) {
	c := SetupCode{
		URL:       "wss://h/pair?a=<b>&c=\"d\"\\",
		Token:     "t\b\t\n\f\r\x00\x1f\x7f\u2028é😀",
		ExpiresAt: goldenExpiry,
	}
	s, err := EncodeSetupCode(c)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(s)
	want := `{"v":1,"url":"wss://h/pair?a=<b>&c=\"d\"\\","token":"t\b\t\n\f\r\u0000\u001f` + "\x7f\u2028é😀" + `","expires_at":"2026-11-24T09:10:00Z"}`
	if diff := cmp.Diff(want, string(raw)); diff != "" {
		t.Errorf("JSON (-want +got):\n%s", diff)
	}
	back, err := DecodeSetupCode(s)
	if err != nil {
		t.Fatal(err)
	}
	c.Version = 1
	if diff := cmp.Diff(c, back); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

func TestSetupCodeRoundTrip(t *testing.T) {
	for _, c := range []SetupCode{
		golden(),
		{Version: 1, URL: "ws://[::1]:7420/pair", Token: "x", ExpiresAt: time.Unix(0, 0).UTC()},
		{Version: 1, URL: "ws://kitchen-pi.local:7420/pair", Token: strings.Repeat("t", 3000), ExpiresAt: time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)},
		{Version: 1, URL: "wss://ünïcödé.example/pair", Token: "a+b/c=", ExpiresAt: goldenExpiry},
	} {
		s, err := EncodeSetupCode(c)
		if err != nil {
			t.Fatalf("EncodeSetupCode(%+v): %v", c, err)
		}
		if strings.ContainsAny(s, "+/=") {
			t.Errorf("code %s is not unpadded base64url", s)
		}
		got, err := DecodeSetupCode(s)
		if err != nil {
			t.Fatalf("DecodeSetupCode(%s): %v", s, err)
		}
		if diff := cmp.Diff(c, got); diff != "" {
			t.Errorf("round trip (-want +got):\n%s", diff)
		}
		if got.ExpiresAt.Location() != time.UTC {
			t.Errorf("ExpiresAt in %v, want UTC", got.ExpiresAt.Location())
		}
	}
}

func TestEncodeSetupCodeRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    SetupCode
		want string
	}{
		{"empty URL", SetupCode{Token: "t", ExpiresAt: goldenExpiry}, "URL is empty"},
		{"empty token", SetupCode{URL: goldenURL, ExpiresAt: goldenExpiry}, "token is empty"},
		{"no expiry", SetupCode{URL: goldenURL, Token: "t"}, "no expiry"},
		{"future version", SetupCode{Version: 2, URL: goldenURL, Token: "t", ExpiresAt: goldenExpiry}, "version 2"},
		{"negative version", SetupCode{Version: -1, URL: goldenURL, Token: "t", ExpiresAt: goldenExpiry}, "version -1"},
		{"bad UTF-8", SetupCode{URL: goldenURL, Token: "t\xff", ExpiresAt: goldenExpiry}, "UTF-8"},
		{"year 10000", SetupCode{URL: goldenURL, Token: "t", ExpiresAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}, "1970 to 9999"},
		{"before 1970", SetupCode{URL: goldenURL, Token: "t", ExpiresAt: time.Date(1969, 12, 31, 23, 59, 59, 0, time.UTC)}, "1970 to 9999"},
		{"too long", SetupCode{URL: goldenURL, Token: strings.Repeat("t", MaxSetupCodeLen), ExpiresAt: goldenExpiry}, "more than the 8192"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := EncodeSetupCode(tc.c)
			if err == nil {
				t.Fatalf("EncodeSetupCode = %q, want an error", s)
			}
			if !errors.Is(err, ErrBadSetupCode) {
				t.Errorf("error %v does not wrap ErrBadSetupCode", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

func TestDecodeSetupCode(t *testing.T) {
	const (
		u   = "wss://gw.example.com/pair"
		tok = "tok.en.value"
	)
	exp := time.Date(2026, 11, 24, 9, 10, 0, 0, time.UTC)
	want := SetupCode{Version: 1, URL: u, Token: tok, ExpiresAt: exp}
	noExpiry := SetupCode{Version: 1, URL: u, Token: tok}

	// A payload whose standard base64 has both '+' and '/', to show the
	// lenient alphabet matters.
	plusSlash := `{"v":1,"url":"` + u + `","token":"a~~~b??>>","expires_at":"2026-11-24T09:10:00Z"}`
	std := base64.StdEncoding.EncodeToString([]byte(plusSlash))
	if !strings.Contains(std, "+") || !strings.Contains(std, "/") || !strings.HasSuffix(std, "=") {
		t.Fatalf("test payload no longer exercises '+', '/' and '=': %s", std)
	}
	plusSlashWant := SetupCode{Version: 1, URL: u, Token: "a~~~b??>>", ExpiresAt: exp}

	for _, tc := range []struct {
		name string
		in   string
		want SetupCode
	}{
		{"pairgate", b64(`{"v":1,"url":"` + u + `","token":"` + tok + `","expires_at":"2026-11-24T09:10:00Z"}`), want},
		{"pairgate, keys reordered, whitespace in JSON", b64(` { "expires_at" : "2026-11-24T09:10:00Z" , "token":"` + tok + `", "url":"` + u + `", "v" : 1 } `), want},
		{"pairgate without v", b64(`{"url":"` + u + `","token":"` + tok + `","expires_at":"2026-11-24T09:10:00Z"}`), want},
		{"v null", b64(`{"v":null,"url":"` + u + `","token":"` + tok + `","expires_at":"2026-11-24T09:10:00Z"}`), want},
		{"nexo", b64(`{"v":1,"url":"` + u + `","bootstrap_token":"` + tok + `","expires_at":"2026-11-24T09:10:00Z"}`), want},
		{"nexo without v", b64(`{"url":"` + u + `","bootstrap_token":"` + tok + `","expires_at":"2026-11-24T09:10:00Z"}`), want},
		{"OpenClaw, url", b64(`{"url":"` + u + `","bootstrapToken":"` + tok + `","expiresAtMs":1795511400000}`), want},
		{"OpenClaw, gatewayUrl", b64(`{"gatewayUrl":"` + u + `","bootstrapToken":"` + tok + `","expiresAtMs":1795511400000}`), want},
		{"OpenClaw, both URL spellings agreeing", b64(`{"url":"` + u + `","gatewayUrl":"` + u + `","bootstrapToken":"` + tok + `","expiresAtMs":1795511400000}`), want},
		{"OpenClaw, no expiry, extra urls", b64(`{"url":"` + u + `","urls":["` + u + `","wss://other/pair"],"bootstrapToken":"` + tok + `"}`), noExpiry},
		{"OpenClaw, milliseconds rounded down", b64(`{"url":"` + u + `","bootstrapToken":"` + tok + `","expiresAtMs":1795511400999}`), want},
		{"all token spellings agreeing", b64(`{"url":"` + u + `","token":"` + tok + `","bootstrap_token":"` + tok + `","bootstrapToken":"` + tok + `"}`), noExpiry},
		{"both expiry spellings agreeing", b64(`{"url":"` + u + `","token":"` + tok + `","expires_at":"2026-11-24T09:10:00Z","expiresAtMs":1795511400500}`), want},
		{"null spelling ignored", b64(`{"url":"` + u + `","gatewayUrl":null,"token":"` + tok + `","bootstrapToken":null,"expires_at":null}`), noExpiry},
		{"expires_at with offset and fraction", b64(`{"url":"` + u + `","token":"` + tok + `","expires_at":"2026-11-24T10:10:00.75+01:00"}`), want},
		{"unknown fields of every type", b64(`{"url":"` + u + `","token":"` + tok + `","expires_at":"2026-11-24T09:10:00Z","x":{"y":[1,2,{"z":null}]},"n":1.5,"b":true,"Token":"other","x":2}`), want},
		{"escaped strings", b64(`{"url":"wss:\/\/gw.example.com\/pair","token":"tok\u002een.value","expires_at":"2026-11-24T09:10:00Z"}`), want},
		{"padded base64url", b64pad(`{"url":"` + u + `","token":"` + tok + `","expires_at":"2026-11-24T09:10:00Z"}`), want},
		{"standard base64, padded", std, plusSlashWant},
		{"standard base64, unpadded", strings.TrimRight(std, "="), plusSlashWant},
		{"base64url from the same payload", b64(plusSlash), plusSlashWant},
		{"surrounding whitespace", " \t\n" + goldenCode + "\r\n ", golden()},
		{"wrapped lines", goldenCode[:40] + "\n" + goldenCode[40:80] + "\r\n  " + goldenCode[80:], golden()},
		{"golden", goldenCode, golden()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeSetupCode(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("DecodeSetupCode (-want +got):\n%s", diff)
			}
		})
	}
}

func b64pad(json string) string {
	s := base64.URLEncoding.EncodeToString([]byte(json))
	if !strings.HasSuffix(s, "=") {
		panic("test payload needs padding")
	}
	return s
}

func TestDecodeSetupCodeRefuses(t *testing.T) {
	const (
		u      = "wss://gw.example.com/pair"
		secret = "SECRET-TOKEN-VALUE"
	)
	obj := func(fields string) string { return b64("{" + fields + "}") }
	good := `"url":"` + u + `","token":"` + secret + `"`
	for _, tc := range []struct {
		name string
		in   string
		want string // part of the message
	}{
		{"empty", "", "it is empty"},
		{"blank", " \n\t ", "it is empty"},
		{"huge", strings.Repeat("A", MaxSetupCodeLen+1), "more than the 8192"},
		{"huge JSON", b64(`{"url":"` + u + `","token":"` + strings.Repeat("t", 7000) + `"}`), "more than the 8192"},
		// 8,171 characters, but adding "v" and "expires_at" would make the
		// code longer than 8,192, so it could not be written back.
		{"too long to write back", b64(`{"url":"u","token":"` + strings.Repeat("t", 6106) + `"}`), "longer than a setup code may hold"},
		{"garbage", "this is not a setup code!", "not base64url"},
		{"one char", "e", "cut off"},
		{"wrong length", goldenCode[:len(goldenCode)-len(goldenCode)%4] + "A", "cut off"},
		{"too much padding", goldenCode + "===", "padding"},
		{"padding at the wrong length", goldenCode + "==", "padding"}, // 200 characters take no "="
		{"padding in the middle", goldenCode[:8] + "==" + goldenCode[8:], "not base64url"},
		{"not UTF-8", base64.RawURLEncoding.EncodeToString([]byte("{\"url\":\"\xff\xfe\"}")), "does not decode to text"},
		{"not JSON", b64("hello"), "not hold valid JSON"},
		{"JSON array", b64(`["` + u + `","` + secret + `"]`), "a JSON array, not a JSON object, so it is not a setup code"},
		{"JSON string", b64(`"` + secret + `"`), "a JSON string, not a JSON object"},
		{"JSON number", b64(`1`), "a JSON number, not a JSON object"},
		{"JSON null", b64(`null`), "JSON null, not a JSON object"},
		{"truncated JSON", b64(`{` + good + `,"expires_at":"2026-11-24T0`), "cut off"},
		{"truncated after a key", b64(`{"url":`), "cut off"},
		{"trailing data", b64(`{` + good + `}{}`), "more after its JSON object"},
		{"trailing garbage", b64(`{` + good + `}x`), "more after its JSON object"},
		{"v newer", obj(`"v":2,` + good), "setup code version 2 is newer than this pairgate understands: upgrade"},
		{"v much newer", obj(`"v":99999999999999999999999,` + good), "is newer than this pairgate understands: upgrade"},
		{"v newer wins over missing fields", obj(`"v":3,"gateway":"x"`), "setup code version 3 is newer"},
		{"v zero", obj(`"v":0,` + good), "version 0 does not exist"},
		{"v negative", obj(`"v":-1,` + good), "version -1 does not exist"},
		{"v string", obj(`"v":"1",` + good), "field v must be a number, not a string"},
		{"v fraction", obj(`"v":1.0,` + good), "field v must be a whole number"},
		{"v exponent", obj(`"v":1e0,` + good), "field v must be a whole number"},
		{"v bool", obj(`"v":true,` + good), "field v must be a number, not a boolean"},
		{"missing url", obj(`"token":"` + secret + `"`), "no url (or gatewayUrl) field"},
		{"missing token", obj(`"url":"` + u + `"`), "no token (or bootstrap_token, or bootstrapToken) field"},
		{"key case matters", obj(`"URL":"` + u + `","Token":"` + secret + `"`), "no url"},
		{"empty url", obj(`"url":"","token":"` + secret + `"`), "field url is empty"},
		{"empty bootstrapToken", obj(`"url":"` + u + `","bootstrapToken":""`), "field bootstrapToken is empty"},
		{"url number", obj(`"url":5,"token":"` + secret + `"`), "field url must be a string, not a number"},
		{"gatewayUrl object", obj(`"gatewayUrl":{},"token":"` + secret + `"`), "field gatewayUrl must be a string, not an object"},
		{"token array", obj(`"url":"` + u + `","token":["` + secret + `"]`), "field token must be a string, not an array"},
		{"tokens disagree", obj(`"url":"` + u + `","token":"` + secret + `","bootstrap_token":"` + secret + `2"`), "fields token and bootstrap_token disagree"},
		{"OpenClaw tokens disagree", obj(`"url":"` + u + `","bootstrap_token":"` + secret + `","bootstrapToken":"other"`), "fields bootstrap_token and bootstrapToken disagree"},
		{"urls disagree", obj(`"url":"` + u + `","gatewayUrl":"wss://evil.example/pair","token":"` + secret + `"`), "fields url and gatewayUrl disagree"},
		{"duplicate token", obj(`"url":"` + u + `","token":"` + secret + `","token":"` + secret + `"`), "field token appears twice"},
		{"duplicate url", obj(`"url":"` + u + `","url":"wss://evil.example/pair","token":"` + secret + `"`), "field url appears twice"},
		{"expires_at number", obj(good + `,"expires_at":1795511400`), "expires_at must be an RFC 3339 string, not a number"},
		{"expires_at prose", obj(good + `,"expires_at":"tomorrow"`), "expires_at is not an RFC 3339 time"},
		{"expires_at date only", obj(good + `,"expires_at":"2026-11-24"`), "expires_at is not an RFC 3339 time"},
		{"expires_at year 1", obj(good + `,"expires_at":"0001-01-01T00:00:00Z"`), "1970 to 9999"},
		{"expires_at past 9999 in UTC", obj(good + `,"expires_at":"9999-12-31T23:59:59-01:00"`), "1970 to 9999"},
		{"expiresAtMs string", obj(good + `,"expiresAtMs":"x"`), "expiresAtMs must be a number of milliseconds, not a string"},
		{"expiresAtMs numeric string", obj(good + `,"expiresAtMs":"1795511400000"`), "not a string"},
		{"expiresAtMs fraction", obj(good + `,"expiresAtMs":1795511400000.5`), "whole, positive"},
		{"expiresAtMs exponent", obj(good + `,"expiresAtMs":1.7955114e12`), "whole, positive"},
		{"expiresAtMs zero", obj(good + `,"expiresAtMs":0`), "whole, positive"},
		{"expiresAtMs negative", obj(good + `,"expiresAtMs":-1`), "whole, positive"},
		{"expiresAtMs past 9999", obj(good + `,"expiresAtMs":253402300800000`), "whole, positive"},
		{"expiresAtMs overflow", obj(good + `,"expiresAtMs":99999999999999999999999`), "whole, positive"},
		{"expiries disagree", obj(good + `,"expires_at":"2026-11-24T09:10:00Z","expiresAtMs":1795511401000`), "expires_at and expiresAtMs disagree"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeSetupCode(tc.in)
			if err == nil {
				t.Fatalf("DecodeSetupCode = %+v, want an error", got)
			}
			if !errors.Is(err, ErrBadSetupCode) {
				t.Errorf("error %v does not wrap ErrBadSetupCode", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q\ndoes not say %q", err, tc.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error %q repeats the token", err)
			}
			if diff := cmp.Diff(SetupCode{}, got); diff != "" {
				t.Errorf("a refused code returned a value (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDecodeSetupCodeTruncated cuts the golden code at every length: each
// prefix is refused, cleanly.
func TestDecodeSetupCodeTruncated(t *testing.T) {
	for n := 1; n < len(goldenCode); n++ {
		if _, err := DecodeSetupCode(goldenCode[:n]); !errors.Is(err, ErrBadSetupCode) {
			t.Fatalf("DecodeSetupCode(first %d characters) = %v, want ErrBadSetupCode", n, err)
		}
	}
}

func FuzzDecodeSetupCode(f *testing.F) {
	for _, s := range []string{
		goldenCode,
		b64(`{"url":"wss://h/pair","bootstrapToken":"t","expiresAtMs":1795511400123}`),
		b64(`{"gatewayUrl":"ws://[::1]:7420","urls":[],"bootstrapToken":"t"}`),
		b64(`{"v":1,"url":"u","bootstrap_token":"t","expires_at":"2026-11-24T10:10:00.5+01:00"}`),
		b64(`{"url":"u","token":"\ud800\u0000\"","expires_at":null}`),
		b64(`{"v":2}`),
		b64(`[1,{"a":`),
		"",
		"====",
		"eyJ2Ijox",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := DecodeSetupCode(s)
		if err != nil {
			if !errors.Is(err, ErrBadSetupCode) {
				t.Fatalf("error %v does not wrap ErrBadSetupCode", err)
			}
			return
		}
		if c.Version != 1 || c.URL == "" || c.Token == "" {
			t.Fatalf("accepted an incomplete code: %+v", c)
		}
		if !c.ExpiresAt.IsZero() && (c.ExpiresAt.Location() != time.UTC || c.ExpiresAt.Nanosecond() != 0) {
			t.Fatalf("ExpiresAt %v is not UTC seconds", c.ExpiresAt)
		}
		// A code without an expiry (OpenClaw) gets one, since pairgate
		// always writes one; everything else must survive as it is.
		if c.ExpiresAt.IsZero() {
			c.ExpiresAt = goldenExpiry
		}
		enc, err := EncodeSetupCode(c)
		if err != nil {
			t.Fatalf("EncodeSetupCode(%+v) of an accepted code: %v", c, err)
		}
		back, err := DecodeSetupCode(enc)
		if err != nil {
			t.Fatalf("DecodeSetupCode(EncodeSetupCode(%+v)): %v", c, err)
		}
		if diff := cmp.Diff(c, back); diff != "" {
			t.Fatalf("round trip (-want +got):\n%s", diff)
		}
	})
}
