package channel

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// DefaultAccount is the account of a channel when none is named.
const DefaultAccount = "default"

// MaxAccountLen is the longest account name, in characters (account names
// are ASCII, so also in bytes).
const MaxAccountLen = 64

// ErrInvalidAccount is wrapped by NormalizeAccount errors.
var ErrInvalidAccount = errors.New("invalid account")

// accountRule is what an account name must look like, as errors say it.
const accountRule = "want 1–64 characters of a-z, 0-9, _ and -"

// NormalizeAccount returns the canonical form of an account name: surrounding
// whitespace trimmed and upper-case letters folded to lower case, so "Work"
// and "work" are one account. What is left must be 1 to MaxAccountLen
// characters of a-z, 0-9, _ and -: account names become NATS subject tokens,
// metric labels and file names, where ".", "*", ">", "/" and spaces mean
// something else. Anything else is refused with an error that names the
// account and the rule and wraps ErrInvalidAccount.
//
// The empty name is refused: a caller for whom "no account" means
// DefaultAccount says so before calling. A canonical name is returned as is,
// without allocating: the gate calls this for every message.
func NormalizeAccount(raw string) (string, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return "", invalidAccount(raw, "empty")
	}
	upper := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '_', c == '-':
		case 'A' <= c && c <= 'Z':
			upper = true
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size <= 1 {
				return "", invalidAccount(raw, "invalid UTF-8")
			}
			return "", invalidAccount(raw, strconv.QuoteRune(r)+" is not allowed")
		}
	}
	if len(s) > MaxAccountLen {
		return "", invalidAccount(raw, strconv.Itoa(len(s))+" characters")
	}
	if upper {
		// Only ASCII is left, so this is plain ASCII folding: no Unicode
		// rule (the Kelvin sign is k) can merge two names.
		s = strings.ToLower(s)
	}
	return s, nil
}

func invalidAccount(raw, problem string) error {
	return fmt.Errorf("account %s: %s; %s: %w", quoteShort(raw), problem, accountRule, ErrInvalidAccount)
}
