package channel

// telegram is the Telegram Bot API adapter. The sender is the numeric user
// id (message.from.id). Usernames are refused: their owner can drop one and
// someone else can take it, so they cannot carry an approval.
type telegram struct{}

const telegramWant = "a numeric Telegram user id such as 123456789"

// Name returns "telegram".
func (telegram) Name() string { return "telegram" }

// Normalize accepts the decimal user id, optionally after "telegram:",
// "tg:" or "user:". Negative ids are groups and channels, never a person;
// ids have at most 52 significant bits per the Bot API, so anything that
// does not fit in an int64 is garbage.
func (telegram) Normalize(raw string) (string, error) {
	s, err := clean("telegram", telegramWant, raw, "telegram:", "tg:", "user:")
	if err != nil {
		return "", err
	}
	switch {
	case s[0] == '-':
		return "", invalid("telegram", raw, "a group or channel id (negative)", telegramWant)
	case s[0] == '@':
		return "", invalid("telegram", raw, "a username, which can change hands", telegramWant)
	case !isDecimalID(s, 63):
		return "", invalid("telegram", raw, "", telegramWant)
	}
	return s, nil
}

// ChallengeText puts the code and the command in inline code, which the
// gateway renders with Telegram's legacy Markdown parse mode.
func (telegram) ChallengeText(c Challenge) string { return challengeText("telegram", c, backticks) }

// TooManyText is the shared "try later" text.
func (telegram) TooManyText() string { return tooManyText }

// ApprovedText is the shared approval text.
func (telegram) ApprovedText() string { return approvedText }

// CanSendImage is true: bots can send photos.
func (telegram) CanSendImage() bool { return true }
