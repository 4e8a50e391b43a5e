package channel

import "strings"

// whatsapp is the WhatsApp adapter. The sender is the phone number in E.164
// form; gateways hand it over bare, with a '+', or as a JID.
type whatsapp struct{}

const whatsappWant = "a WhatsApp phone number such as +5491155556666 or 5491155556666@s.whatsapp.net"

// Name returns "whatsapp".
func (whatsapp) Name() string { return "whatsapp" }

// Normalize accepts, after an optional "whatsapp:" or "user:":
//
//	+5491155556666, 5491155556666 (visual separators allowed)
//	5491155556666@c.us, 5491155556666@s.whatsapp.net
//	5491155556666:12@s.whatsapp.net (the device suffix is dropped)
//	5491155556666@lid
//
// and returns "+5491155556666". Group (@g.us), broadcast and newsletter
// JIDs are refused: they are not a person.
//
// A number without '+' is taken as international, since that is how JIDs
// write it.
func (whatsapp) Normalize(raw string) (string, error) {
	s, err := clean("whatsapp", whatsappWant, raw, "whatsapp:", "user:")
	if err != nil {
		return "", err
	}
	user, server, isJID := strings.Cut(s, "@")
	if !isJID {
		if out, ok := normalizeE164(s, true); ok {
			return out, nil
		}
		return "", invalid("whatsapp", raw, "", whatsappWant)
	}
	switch {
	case equalFoldASCII(server, "g.us"):
		return "", invalid("whatsapp", raw, "a group, not a person", whatsappWant)
	case equalFoldASCII(server, "broadcast"), equalFoldASCII(server, "newsletter"):
		return "", invalid("whatsapp", raw, "a broadcast or channel, not a person", whatsappWant)
	case !equalFoldASCII(server, "s.whatsapp.net") && !equalFoldASCII(server, "c.us") && !equalFoldASCII(server, "lid"):
		return "", invalid("whatsapp", raw, "", whatsappWant)
	}
	// A multi-device JID names one of the user's devices; the person is
	// the same on all of them.
	if number, device, ok := strings.Cut(user, ":"); ok {
		if !allDigits(device) {
			return "", invalid("whatsapp", raw, "", whatsappWant)
		}
		user = number
	}
	if !allDigits(user) {
		return "", invalid("whatsapp", raw, "", whatsappWant)
	}
	out := "+" + user
	if !isE164(out) {
		return "", invalid("whatsapp", raw, "", whatsappWant)
	}
	return out, nil
}

// ChallengeText is plain: WhatsApp's own markup (```code```) is not what
// every gateway passes through unchanged.
func (whatsapp) ChallengeText(c Challenge) string { return challengeText("whatsapp", c, plainText) }

// TooManyText is the shared "try later" text.
func (whatsapp) TooManyText() string { return tooManyText }

// ApprovedText is the shared approval text.
func (whatsapp) ApprovedText() string { return approvedText }

// CanSendImage is true: WhatsApp carries images.
func (whatsapp) CanSendImage() bool { return true }
