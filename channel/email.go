package channel

import "strings"

// email is the email adapter. The sender is the From address.
type email struct{}

const emailWant = "an email address such as alice@example.com"

// Limits from RFC 5321 section 4.5.3.1.
const (
	maxEmailLocalLen  = 64
	maxEmailDomainLen = 253
)

// Name returns "email".
func (email) Name() string { return "email" }

// Normalize accepts, after an optional "email:", "mailto:" or "user:", a
// plain address and returns it lower-cased.
func (email) Normalize(raw string) (string, error) {
	s, err := clean("email", emailWant, raw, "email:", "mailto:", "user:")
	if err != nil {
		return "", err
	}
	if out, ok := normalizeEmail(s); ok {
		return out, nil
	}
	return "", invalid("email", raw, "", emailWant)
}

// normalizeEmail returns s lower-cased if it is a plain address: a dot-atom
// local part (RFC 5322 atext and single dots), one '@', and a DNS name. It
// refuses quoted local parts, address literals ("a@[192.0.2.1]") and any
// non-ASCII: lower-casing Unicode can fold two different addresses into one
// (the Kelvin sign becomes 'k'), which would let one sender pass as another.
// Internationalised domains must arrive in their ASCII (xn--) form.
func normalizeEmail(s string) (string, bool) {
	local, domain, ok := strings.Cut(s, "@")
	if !ok || local == "" || len(local) > maxEmailLocalLen || len(domain) > maxEmailDomainLen {
		return "", false
	}
	if !isDotAtom(local) || !isHostname(domain) {
		return "", false
	}
	return strings.ToLower(s), true
}

// isDotAtom reports whether s is an RFC 5322 dot-atom: atext runs joined by
// single dots, with no dot at either end.
func isDotAtom(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.':
			if s[i-1] == '.' {
				return false
			}
		case isAlnumASCII(c), strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// ChallengeText is plain: a text/plain message.
func (email) ChallengeText(c Challenge) string { return challengeText("email", c, plainText) }

// TooManyText is the shared "try later" text.
func (email) TooManyText() string { return tooManyText }

// ApprovedText is the shared approval text.
func (email) ApprovedText() string { return approvedText }

// CanSendImage is true: a QR code travels as an attachment (or inline
// image), which every mail client shows.
func (email) CanSendImage() bool { return true }
