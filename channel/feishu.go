package channel

import "strings"

// feishu is the Feishu (Lark) adapter. The sender is the user's open_id,
// which is stable per app, unlike a chat id or a name.
type feishu struct{}

const feishuWant = "a Feishu open_id such as ou_7d8a6e6df7621556ce0d21922b676706"

// maxFeishuIDLen is far above the length of real open_ids (about 35 bytes).
const maxFeishuIDLen = 128

// Name returns "feishu".
func (feishu) Name() string { return "feishu" }

// Normalize accepts, after an optional "feishu:", "lark:", "open_id:" or
// "user:", an open_id: "ou_" and then ASCII letters, digits, '_' or '-'. Case
// is kept: open_ids are case-sensitive. Union ids (on_…), user ids and chat
// ids (oc_…) are refused.
func (feishu) Normalize(raw string) (string, error) {
	s, err := clean("feishu", feishuWant, raw, "feishu:", "lark:", "open_id:", "user:")
	if err != nil {
		return "", err
	}
	if strings.HasPrefix(s, "oc_") {
		return "", invalid("feishu", raw, "a chat id, not a person", feishuWant)
	}
	id, ok := strings.CutPrefix(s, "ou_")
	if !ok || id == "" || len(s) > maxFeishuIDLen {
		return "", invalid("feishu", raw, "", feishuWant)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !isAlnumASCII(c) && c != '_' && c != '-' {
			return "", invalid("feishu", raw, "", feishuWant)
		}
	}
	return s, nil
}

// ChallengeText is plain: a text message, not a rich-text post.
func (feishu) ChallengeText(c Challenge) string { return challengeText("feishu", c, plainText) }

// TooManyText is the shared "try later" text.
func (feishu) TooManyText() string { return tooManyText }

// ApprovedText is the shared approval text.
func (feishu) ApprovedText() string { return approvedText }

// CanSendImage is true: Feishu messages carry images.
func (feishu) CanSendImage() bool { return true }
