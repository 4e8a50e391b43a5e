package channel

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxSenderLen is the longest raw sender id, in bytes, that any adapter's
// Normalize accepts. Real ids are far shorter; the cap keeps hostile input
// from costing work or filling the store and the logs.
const MaxSenderLen = 256

// errQuoteLen is how much of a refused sender an error message quotes: enough
// to recognise it, not enough for a hostile id to flood the logs.
const errQuoteLen = 64

// invalid builds the error for a refused sender: the channel, the raw input
// (quoted, shortened), what was wrong with it when that helps, and what was
// wanted instead. It wraps ErrInvalidSender so the gate can test for it.
func invalid(channel, raw, problem, want string) error {
	if problem != "" {
		return fmt.Errorf("%s sender %s: %s; want %s: %w", channel, quoteShort(raw), problem, want, ErrInvalidSender)
	}
	return fmt.Errorf("%s sender %s: want %s: %w", channel, quoteShort(raw), want, ErrInvalidSender)
}

// quoteShort quotes s for an error message, cut to errQuoteLen bytes. %q
// escapes control characters and invalid UTF-8, so the result is safe to log.
func quoteShort(s string) string {
	if len(s) <= errQuoteLen {
		return strconv.Quote(s)
	}
	cut := errQuoteLen
	// Back up to a rune boundary, but no further than one rune: a run of
	// stray continuation bytes has no boundary to find.
	for i := 0; i < utf8.UTFMax-1 && cut > 0 && !utf8.RuneStart(s[cut]); i++ {
		cut--
	}
	return fmt.Sprintf("%q... (%d bytes)", s[:cut], len(s))
}

// clean applies the rules every channel shares: the length cap, surrounding
// whitespace trimmed, no control characters, valid UTF-8, and the channel's
// prefixes dropped (case-insensitively, as often as they appear). It returns
// a substring of raw, so a canonical input costs no allocation. prefixes must
// be lower-case.
//
// clean lets other non-ASCII text through: every channel's own grammar is
// ASCII, so the adapter refuses it with a message saying what it wanted.
func clean(channel, want, raw string, prefixes ...string) (string, error) {
	if len(raw) > MaxSenderLen {
		return "", invalid(channel, raw, "longer than "+strconv.Itoa(MaxSenderLen)+" bytes", want)
	}
	s := strings.TrimSpace(raw)
	if s == "" {
		return "", invalid(channel, raw, "empty", want)
	}
	if problem := checkText(s); problem != "" {
		return "", invalid(channel, raw, problem, want)
	}
	s = stripPrefixes(s, prefixes)
	if s == "" {
		return "", invalid(channel, raw, "nothing after the prefix", want)
	}
	return s, nil
}

// checkText reports what makes s unusable as an id ("" when nothing does):
// invalid UTF-8 or a control character, which could hide the real id from
// the operator reading a list or a log.
func checkText(s string) string {
	for i := 0; i < len(s); i++ {
		// One unsigned compare finds any byte outside printable ASCII
		// (0x20 to 0x7e): this loop runs on every message.
		if s[i]-0x20 > 0x7e-0x20 {
			return checkUnicode(s[i:])
		}
	}
	return ""
}

// checkUnicode is checkText's slow path, from the first byte that is not
// printable ASCII.
func checkUnicode(s string) string {
	for len(s) > 0 {
		r, size := utf8.DecodeRuneInString(s)
		if r == utf8.RuneError && size == 1 {
			return "not valid UTF-8"
		}
		if unicode.IsControl(r) {
			return "contains a control character"
		}
		s = s[size:]
	}
	return ""
}

// stripPrefixes drops any of prefixes (lower-case ASCII) from the front of
// s, matching case-insensitively, until none is left, trimming whitespace
// after each ("tg: 123"). Each round removes at least one byte, so it ends.
func stripPrefixes(s string, prefixes []string) string {
	for {
		stripped := false
		for _, p := range prefixes {
			if hasPrefixFold(s, p) {
				s = strings.TrimSpace(s[len(p):])
				stripped = true
				break
			}
		}
		if !stripped {
			return s
		}
	}
}

// hasPrefixFold reports whether s starts with prefix, ignoring ASCII case.
// prefix must be lower-case ASCII. It compares bytes, not runes, so no
// Unicode case folding (the Kelvin sign folds to 'k') can make a match.
func hasPrefixFold(s, prefix string) bool {
	if len(s) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		if lowerASCII(s[i]) != prefix[i] {
			return false
		}
	}
	return true
}

// equalFoldASCII reports whether s equals want (lower-case ASCII), ignoring
// ASCII case.
func equalFoldASCII(s, want string) bool {
	return len(s) == len(want) && hasPrefixFold(s, want)
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isAlnumASCII(c byte) bool {
	return isDigit(c) || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
}

func isHexDigit(c byte) bool {
	return isDigit(c) || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

// allDigits reports whether s is one or more ASCII digits.
func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// isDecimalID reports whether s is a positive integer written in canonical
// decimal (no sign, no leading zero) that fits in bits bits (1 to 64). A
// leading zero is refused rather than dropped: no channel writes ids that
// way, and "0123" and "123" must not both name one allowlist entry.
//
// One pass with an overflow check: strconv.ParseUint costs as much again,
// and this runs on the hot path.
func isDecimalID(s string, bits int) bool {
	if s == "" || s[0] == '0' || bits < 1 || bits > 64 {
		return false
	}
	limit := uint64(1)<<(bits-1) - 1 + uint64(1)<<(bits-1) // 1<<bits - 1 without overflow
	var n uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isDigit(c) {
			return false
		}
		if n > limit/10 {
			return false
		}
		n *= 10 // n <= limit now, so limit-n cannot wrap
		if d := uint64(c - '0'); d <= limit-n {
			n += d
		} else {
			return false
		}
	}
	return true
}

// E.164 allows at most 15 digits; 7 is the shortest full international
// number in use.
const (
	minE164Digits = 7
	maxE164Digits = 15
)

// isE164 reports whether s is "+" followed by 7 to 15 digits, the first not
// 0 (no country code starts with 0).
func isE164(s string) bool {
	n := len(s) - 1
	return n >= minE164Digits && n <= maxE164Digits && s[0] == '+' && s[1] != '0' && allDigits(s[1:])
}

// normalizeE164 returns s as "+digits". It accepts the visual separators
// people paste (spaces, '-', '.', '(', ')'). Without a leading '+' the
// number is accepted only when plusOptional: a number without a country code
// would otherwise be read as an international one and name someone else.
func normalizeE164(s string, plusOptional bool) (string, bool) {
	if isE164(s) {
		return s, true
	}
	rest, hasPlus := strings.CutPrefix(s, "+")
	if !hasPlus && !plusOptional {
		return "", false
	}
	var digits [maxE164Digits]byte
	n := 0
	for i := 0; i < len(rest); i++ {
		switch c := rest[i]; {
		case isDigit(c):
			if n == len(digits) {
				return "", false
			}
			digits[n] = c
			n++
		case c == ' ' || c == '-' || c == '.' || c == '(' || c == ')':
		default:
			return "", false
		}
	}
	out := "+" + string(digits[:n])
	if !isE164(out) {
		return "", false
	}
	return out, true
}

// isHostname reports whether s is a DNS name: dot-separated labels of ASCII
// letters, digits and '-', 1 to 63 bytes each, no label starting or ending
// with '-', 253 bytes at most, no trailing dot. A single label ("localhost")
// is a valid host. Internationalised names must arrive in their ASCII
// (xn--) form.
func isHostname(s string) bool {
	if len(s) > 253 {
		return false
	}
	labelLen := 0
	prev := byte('.')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '.':
			if labelLen == 0 || prev == '-' {
				return false
			}
			labelLen = 0
		case c == '-':
			if labelLen == 0 {
				return false
			}
			labelLen++
		case isAlnumASCII(c):
			labelLen++
		default:
			return false
		}
		if labelLen > 63 {
			return false
		}
		prev = s[i]
	}
	// An empty last label is an empty name or a trailing dot.
	return labelLen > 0 && prev != '-'
}
