package channel

import "strings"

// slack is the Slack adapter. The sender is the user id: U… for a
// workspace user, W… for an Enterprise Grid user.
type slack struct{}

const slackWant = "a Slack user id such as U024BE7LH"

// maxSlackIDLen is well above the longest ids Slack issues (Slack says they
// may grow to 21 characters) and well below anything a person would use.
const maxSlackIDLen = 32

// Name returns "slack".
func (slack) Name() string { return "slack" }

// Normalize accepts, after an optional "slack:" or "user:", a user id in any
// case, or a user mention ("<@U024BE7LH>", "<@U024BE7LH|bob>"), and returns
// the id upper-cased. Bot (B…), channel (C…) and group ids are refused.
func (slack) Normalize(raw string) (string, error) {
	s, err := clean("slack", slackWant, raw, "slack:", "user:")
	if err != nil {
		return "", err
	}
	if inner, ok := strings.CutPrefix(s, "<@"); ok {
		inner, ok = strings.CutSuffix(inner, ">")
		if !ok {
			return "", invalid("slack", raw, "", slackWant)
		}
		s, _, _ = strings.Cut(inner, "|") // drop the display name
	}
	if len(s) < 2 || len(s) > maxSlackIDLen {
		return "", invalid("slack", raw, "", slackWant)
	}
	if first := lowerASCII(s[0]); first != 'u' && first != 'w' {
		return "", invalid("slack", raw, "", slackWant)
	}
	for i := 1; i < len(s); i++ {
		if !isAlnumASCII(s[i]) {
			return "", invalid("slack", raw, "", slackWant)
		}
	}
	return strings.ToUpper(s), nil
}

// ChallengeText uses inline code, which Slack's mrkdwn renders natively.
func (slack) ChallengeText(c Challenge) string { return challengeText("slack", c, backticks) }

// TooManyText is the shared "try later" text.
func (slack) TooManyText() string { return tooManyText }

// ApprovedText is the shared approval text.
func (slack) ApprovedText() string { return approvedText }

// CanSendImage is true: Slack carries file uploads.
func (slack) CanSendImage() bool { return true }
