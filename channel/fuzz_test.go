package channel

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzNormalize checks, for any channel and input, that Normalize never
// panics and that what it accepts is canonical: non-empty, at most
// MaxSenderLen bytes, valid UTF-8, and unchanged by a second Normalize.
// It also holds the stronger rule every adapter keeps today: a canonical
// sender is printable ASCII without spaces, so no look-alike, invisible or
// direction-changing character can make two ids read the same.
func FuzzNormalize(f *testing.F) {
	names := Names()
	for i, name := range names {
		for _, tc := range normalizeCases[name] {
			f.Add(uint8(i), tc.raw)
		}
		f.Add(uint8(i), canonicalSenders[name])
	}
	r := NewRegistry()
	f.Fuzz(func(t *testing.T, channel uint8, raw string) {
		name := names[int(channel)%len(names)]
		a := mustGet(t, r, name)
		out, err := a.Normalize(raw)
		if err != nil {
			if out != "" {
				t.Fatalf("%s.Normalize(%q) = %q with error %v", name, raw, out, err)
			}
			return
		}
		if out == "" || len(out) > MaxSenderLen || !utf8.ValidString(out) {
			t.Fatalf("%s.Normalize(%q) = %q: empty, too long or invalid UTF-8", name, raw, out)
		}
		for i := 0; i < len(out); i++ {
			if c := out[i]; c <= ' ' || c > '~' {
				t.Fatalf("%s.Normalize(%q) = %q: byte %#x is not printable ASCII", name, raw, out, c)
			}
		}
		again, err := a.Normalize(out)
		if err != nil || again != out {
			t.Fatalf("%s.Normalize(%q) = %q, but Normalize(%q) = %q, %v", name, raw, out, out, again, err)
		}
	})
}

// FuzzNormalizeAccount checks that NormalizeAccount never panics and that
// what it accepts is 1 to MaxAccountLen bytes of [a-z0-9_-], unchanged by a
// second call and the same account whatever the case it was written in.
func FuzzNormalizeAccount(f *testing.F) {
	for _, s := range []string{"default", "Work", " bot_2-eu ", "*", "a.b", "../x", "wörk", "\u212aelvin", "a\xffb", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		out, err := NormalizeAccount(raw)
		if err != nil {
			if out != "" {
				t.Fatalf("NormalizeAccount(%q) = %q with error %v", raw, out, err)
			}
			return
		}
		if out == "" || len(out) > MaxAccountLen {
			t.Fatalf("NormalizeAccount(%q) = %q: empty or too long", raw, out)
		}
		for i := 0; i < len(out); i++ {
			if c := out[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
				t.Fatalf("NormalizeAccount(%q) = %q: byte %#x is not one of [a-z0-9_-]", raw, out, c)
			}
		}
		for _, again := range []string{out, strings.ToUpper(out)} {
			if got, err := NormalizeAccount(again); err != nil || got != out {
				t.Fatalf("NormalizeAccount(%q) = %q, but NormalizeAccount(%q) = %q, %v", raw, out, again, got, err)
			}
		}
	})
}
