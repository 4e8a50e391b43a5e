package termtext

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

func TestClean(t *testing.T) {
	tests := []struct {
		name string
		in   string
		max  int
		want string
	}{
		{"plain", "Pixel 9", 64, "Pixel 9"},
		{"non-ASCII kept", "Ana’s iPhone 🦊", 64, "Ana’s iPhone 🦊"},
		{"C0 and newline dropped", "a\u0000b\u001b[2J\nFAKE", 64, "ab[2JFAKE"},
		{"tab, CR and DEL dropped", "a\tb\rc\u007fd", 64, "abcd"},
		{"C1 dropped", "a\u009b2Jb\u0085c", 64, "a2Jbc"},
		{"bidi controls dropped", "abc\u202egnp.exe\u202c \u2066x\u2069 \u200f\u061c", 64, "abcgnp.exe x"},
		{"invalid UTF-8 replaced", "a\xffb\xc3", 64, "a\uFFFDb\uFFFD"},
		{"trimmed", "  \u0000 name \t ", 64, "name"},
		{"cut to max bytes", strings.Repeat("x", 100), 64, strings.Repeat("x", 64)},
		{"cut on a rune boundary", "ab€", 4, "ab"},
		{"controls do not count toward the limit", "\u001b\u001b\u001babcd", 4, "abcd"},
		{"trailing space after the cut trimmed", "abc def", 4, "abc"},
		{"nothing left", "\u0000\u001b\n", 64, ""},
		{"zero max", "abc", 0, ""},
		{"negative max", "abc", -1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Clean(tt.in, tt.max)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Clean(%q, %d) (-want +got):\n%s", tt.in, tt.max, diff)
			}
		})
	}
}

func TestEscape(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"plain", "Pixel 9", "Pixel 9"},
		{"empty", "", ""},
		{"non-ASCII kept", "Ana’s iPhone 🦊 ü", "Ana’s iPhone 🦊 ü"},
		{"backslash kept", `C:\temp\x1b`, `C:\temp\x1b`},
		{"the forged device row", "a\u0000b\u001b[2J\nFAKE", `a\x00b\x1b[2J\nFAKE`},
		{"the companion's server error", "bad_request\x1b[2J\x1b]0;pwned\x07", `bad_request\x1b[2J\x1b]0;pwned\x07`},
		{"tab and CR", "a\tb\rc", `a\tb\rc`},
		{"DEL", "a\u007f", `a\x7f`},
		{"C1", "a\u009b2J\u0085", `a\u009b2J\u0085`},
		{"bidi controls", "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069", `\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069`},
		{"bidi marks", "\u200e\u200f\u061c", `\u200e\u200f\u061c`},
		{"invalid UTF-8 bytes", "a\x9b2J\xff", `a\x9b2J\xff`},
		{"replacement character itself kept", "a\uFFFDb", "a\uFFFDb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, Escape(tt.in)); diff != "" {
				t.Errorf("Escape(%q) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestEscapeDoesNotAllocateForCleanText(t *testing.T) {
	s := strings.Repeat("Ana’s iPhone 🦊 ", 8)
	if n := testing.AllocsPerRun(100, func() { _ = Escape(s) }); n != 0 {
		t.Errorf("Escape of clean text: %v allocations, want 0", n)
	}
}

func FuzzEscape(f *testing.F) {
	for _, s := range []string{"", "Pixel 9", "a\u0000b\u001b[2J\nFAKE", "bad_request\x1b[2J\x1b]0;pwned\x07",
		"\u202egnp.exe", "\u009b", "\xff\xfe", `\x1b`, "🦊\u0085"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := Escape(s)
		if !utf8.ValidString(got) {
			t.Fatalf("Escape(%q) = %q: not valid UTF-8", s, got)
		}
		for _, r := range got {
			if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) {
				t.Fatalf("Escape(%q) = %q: still holds %U", s, got, r)
			}
		}
		if again := Escape(s); again != got {
			t.Fatalf("Escape(%q) gave %q, then %q", s, got, again)
		}
		if twice := Escape(got); twice != got {
			t.Fatalf("escaping the escaped %q changed it to %q", got, twice)
		}
		printable := utf8.ValidString(s)
		for _, r := range s {
			printable = printable && !unicode.IsControl(r) && !unicode.Is(unicode.Bidi_Control, r)
		}
		if printable && got != s {
			t.Fatalf("Escape changed printable %q to %q", s, got)
		}
		// Clean's output needs no escaping.
		if c := Clean(s, 64); Escape(c) != c || len(c) > 64 {
			t.Fatalf("Clean(%q, 64) = %q: escapes to %q", s, c, Escape(c))
		}
	})
}
