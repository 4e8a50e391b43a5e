package channel

import (
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
