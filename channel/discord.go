package channel

import "strings"

// discord is the Discord adapter. The sender is the user's snowflake id.
type discord struct{}

const discordWant = "a Discord user id such as 123456789012345678 or <@123456789012345678>"

// Name returns "discord".
func (discord) Name() string { return "discord" }

// Normalize accepts, after an optional "discord:" or "user:", a snowflake
// ("123"), or a user mention ("<@123>", "<@!123>"), and returns the digits.
// Role (<@&…>) and channel (<#…>) mentions are refused.
func (discord) Normalize(raw string) (string, error) {
	s, err := clean("discord", discordWant, raw, "discord:", "user:")
	if err != nil {
		return "", err
	}
	if inner, ok := strings.CutPrefix(s, "<@"); ok {
		inner, ok = strings.CutSuffix(inner, ">")
		if !ok {
			return "", invalid("discord", raw, "", discordWant)
		}
		s = strings.TrimPrefix(inner, "!") // the nickname mention form
	}
	// Snowflakes are unsigned 64-bit integers.
	if !isDecimalID(s, 64) {
		return "", invalid("discord", raw, "", discordWant)
	}
	return s, nil
}

// ChallengeText uses inline code, which Discord renders natively.
func (discord) ChallengeText(c Challenge) string { return challengeText("discord", c, backticks) }

// TooManyText is the shared "try later" text.
func (discord) TooManyText() string { return tooManyText }

// ApprovedText is the shared approval text.
func (discord) ApprovedText() string { return approvedText }

// CanSendImage is true: Discord carries attachments.
func (discord) CanSendImage() bool { return true }
