package channel

import "strings"

// signal is the Signal adapter (signal-cli and friends). A sender is known
// by phone number or, when the number is hidden, by account UUID.
type signal struct{}

const signalWant = "an E.164 phone number such as +15551234567 or uuid:<uuid>"

// uuidPrefix marks a UUID sender in canonical form.
const uuidPrefix = "uuid:"

// Name returns "signal".
func (signal) Name() string { return "signal" }

// Normalize accepts, after an optional "signal:" or "user:", an E.164 number
// ("+15551234567", visual separators allowed) or a UUID, bare or after
// "uuid:" in any case, returned as "uuid:<lower-case uuid>". A number must
// carry its '+': without a country code it could name someone else.
func (signal) Normalize(raw string) (string, error) {
	s, err := clean("signal", signalWant, raw, "signal:", "user:")
	if err != nil {
		return "", err
	}
	if hasPrefixFold(s, uuidPrefix) {
		u := s[len(uuidPrefix):]
		if !isUUID(u) {
			return "", invalid("signal", raw, "", signalWant)
		}
		if s[:len(uuidPrefix)] == uuidPrefix && strings.ToLower(u) == u {
			return s, nil
		}
		return uuidPrefix + strings.ToLower(u), nil
	}
	if isUUID(s) {
		return uuidPrefix + strings.ToLower(s), nil
	}
	if out, ok := normalizeE164(s, false); ok {
		return out, nil
	}
	return "", invalid("signal", raw, "", signalWant)
}

// isUUID reports whether s is a UUID in its 8-4-4-4-12 hex form, any case.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch i {
		case 8, 13, 18, 23:
			if s[i] != '-' {
				return false
			}
		default:
			if !isHexDigit(s[i]) {
				return false
			}
		}
	}
	return true
}

// ChallengeText is plain: Signal shows markup characters as they are.
func (signal) ChallengeText(c Challenge) string { return challengeText("signal", c, plainText) }

// TooManyText is the shared "try later" text.
func (signal) TooManyText() string { return tooManyText }

// ApprovedText is the shared approval text.
func (signal) ApprovedText() string { return approvedText }

// CanSendImage is true: Signal carries attachments.
func (signal) CanSendImage() bool { return true }
