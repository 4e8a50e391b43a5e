package server

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"testing"
)

// FuzzQuery: parseQuery never panics, and either refuses the query with a
// 400 bad_request or returns only allowed keys, each with the value a
// standard encoder would have written for it.
func FuzzQuery(f *testing.F) {
	for _, s := range []string{
		"", "channel=slack", "channel=slack&account=work", "channel=slack;", "channel=%zz", "%zz=1",
		"channel=slack&channel=x", "chanel=1", "channel", "channel=a+b%2Fc", "&&channel=x&", "a;channel=slack",
	} {
		f.Add(s)
	}
	allowed := []string{"channel", "account", "include_revoked"}
	f.Fuzz(func(t *testing.T, raw string) {
		got, err := parseQuery(raw, allowed...)
		if err != nil {
			var ae *apiError
			if !errors.As(err, &ae) || ae.status != http.StatusBadRequest || ae.code != "bad_request" || ae.msg == "" {
				t.Fatalf("parseQuery(%q): error %v is not a 400 bad_request with a message", raw, err)
			}
			if got != nil {
				t.Fatalf("parseQuery(%q) = %v with an error", raw, got)
			}
			return
		}
		v := url.Values{}
		for k, val := range got {
			if !slices.Contains(allowed, k) {
				t.Fatalf("parseQuery(%q) returned key %q, not one of %v", raw, k, allowed)
			}
			v.Set(k, val)
		}
		// What was read is what an encoder writes back.
		again, err := parseQuery(v.Encode(), allowed...)
		if err != nil || len(again) != len(got) {
			t.Fatalf("parseQuery(%q) = %v, but its encoding %q gives %v, %v", raw, got, v.Encode(), again, err)
		}
		for k, val := range got {
			if again[k] != val {
				t.Fatalf("parseQuery(%q) = %v, but its encoding %q gives %v", raw, got, v.Encode(), again)
			}
		}
	})
}
