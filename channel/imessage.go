package channel

import "strings"

// imessage is the iMessage (and SMS relay) adapter. A sender is a handle:
// a phone number or the email address of an Apple ID.
type imessage struct{}

const imessageWant = "an E.164 phone number such as +15551234567 or an email address"

// Name returns "imessage".
func (imessage) Name() string { return "imessage" }

// Normalize accepts, after an optional "imessage:", "sms:", "auto:" or
// "user:", an E.164 number ("+15551234567", visual separators allowed) or an
// email address, returned lower-cased. A number must carry its '+': handles
// without a country code could name someone else. Chat ids are refused.
func (imessage) Normalize(raw string) (string, error) {
	s, err := clean("imessage", imessageWant, raw, "imessage:", "sms:", "auto:", "user:")
	if err != nil {
		return "", err
	}
	if strings.Contains(s, "@") {
		if out, ok := normalizeEmail(s); ok {
			return out, nil
		}
		return "", invalid("imessage", raw, "", imessageWant)
	}
	if out, ok := normalizeE164(s, false); ok {
		return out, nil
	}
	return "", invalid("imessage", raw, "", imessageWant)
}

// ChallengeText is plain: Messages shows markup characters as they are.
func (imessage) ChallengeText(c Challenge) string { return challengeText("imessage", c, plainText) }

// TooManyText is the shared "try later" text.
func (imessage) TooManyText() string { return tooManyText }

// ApprovedText is the shared approval text.
func (imessage) ApprovedText() string { return approvedText }

// CanSendImage is true: iMessage (and MMS) carry images.
func (imessage) CanSendImage() bool { return true }
