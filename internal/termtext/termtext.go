// Package termtext holds pairgate's two rules for text that came from
// outside (a device's name, a chat sender's display name, a server's error
// message) and ends up in front of a person: [Clean] it where it comes in,
// [Escape] it where it goes out to a terminal.
//
// Both treat the same characters as unsafe: the control characters (C0,
// DEL and C1, which a terminal obeys instead of showing: ESC starts a
// sequence that can clear the screen or retitle the window, a newline
// starts a forged row) and the Unicode bidi controls (which reorder what
// the reader sees: "abc\u202egnp.exe" reads as "abcexe.png").
package termtext

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// unsafeRune reports whether r acts on a terminal or on the order of the text
// around it instead of being shown: unicode.IsControl (C0, DEL, C1) or
// Bidi_Control (U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069).
func unsafeRune(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r)
}

// Clean makes text from outside fit to store and show: invalid UTF-8 is
// replaced by U+FFFD, control and bidi characters are dropped, leading and
// trailing white space is trimmed, and the rest is cut to at most maxBytes
// on a rune boundary. Dropped characters do not count toward maxBytes.
func Clean(s string, maxBytes int) string {
	if maxBytes <= 0 {
		return ""
	}
	if isClean(s, maxBytes) {
		return s
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	var b strings.Builder
	b.Grow(min(len(s), maxBytes))
	for _, r := range s {
		if unsafeRune(r) || (b.Len() == 0 && unicode.IsSpace(r)) {
			continue
		}
		if b.Len()+utf8.RuneLen(r) > maxBytes {
			break
		}
		b.WriteRune(r)
	}
	return strings.TrimRightFunc(b.String(), unicode.IsSpace)
}

// isClean reports whether Clean would return s unchanged.
func isClean(s string, maxBytes int) bool {
	if len(s) > maxBytes || !utf8.ValidString(s) || strings.TrimSpace(s) != s {
		return false
	}
	for _, r := range s {
		if unsafeRune(r) {
			return false
		}
	}
	return true
}

// Escape returns s with everything a terminal would obey rather than show
// written out visibly, so the text can neither drive the terminal nor forge
// a line: tab, newline and carriage return as \t, \n and \r; the other C0
// controls, DEL and each byte of invalid UTF-8 as \xNN; C1 and bidi
// controls as \uNNNN. Everything else, a backslash included, is unchanged;
// when nothing needs escaping, s itself is returned without allocating.
func Escape(s string) string {
	i := firstUnsafe(s)
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	b.WriteString(s[:i])
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			writeHex(&b, `\x`, uint32(s[i]), 2)
		case !unsafeRune(r):
			b.WriteString(s[i : i+size])
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < utf8.RuneSelf:
			writeHex(&b, `\x`, uint32(r), 2)
		default:
			writeHex(&b, `\u`, uint32(r), 4)
		}
		i += size
	}
	return b.String()
}

// firstUnsafe returns the index of the first byte Escape must rewrite, or
// -1.
func firstUnsafe(s string) int {
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f {
				return i
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || unsafeRune(r) {
			return i
		}
		i += size
	}
	return -1
}

func writeHex(b *strings.Builder, prefix string, v uint32, digits int) {
	const hex = "0123456789abcdef"
	b.WriteString(prefix)
	for shift := 4 * (digits - 1); shift >= 0; shift -= 4 {
		b.WriteByte(hex[v>>shift&0xf])
	}
}
