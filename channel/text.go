package channel

import (
	"strconv"
	"strings"
	"time"
)

// The texts every channel sends. Adapters differ only in markup, so the
// wording lives here once.
const (
	tooManyText  = "Too many pairing requests are waiting for the owner right now. Please try again later."
	approvedText = "The owner approved you: you can talk to this assistant now."
)

// markup is how a channel renders the code and the command in a challenge.
type markup int

const (
	// plainText: no formatting; the channel would show markup characters
	// literally.
	plainText markup = iota
	// backticks: inline code, which Telegram (legacy Markdown parse mode),
	// Discord and Slack (mrkdwn) render as code, so the owner can copy the
	// command in one go.
	backticks
)

// challengeText writes the challenge for channel in the given markup:
//
//	Access to this assistant needs the owner's approval. Your pairing code:
//	ABCD2345 (valid 1 hour). Ask the owner to run: pairgate pairing approve
//	telegram ABCD2345
//
// The channel named in the command is the adapter's own, not c.Channel: the
// text goes out on this adapter's channel, so that is where the request is.
func challengeText(channel string, c Challenge, m markup) string {
	cmd := "pairgate pairing approve " + channel + " " + shellWord(c.Code)
	if c.Account != "" && c.Account != "default" {
		cmd += " --account " + shellWord(c.Account)
	}
	// A backtick inside an inline code span would end it early and garble
	// the command; plain text is always safe.
	if m == backticks && (strings.Contains(c.Code, "`") || strings.Contains(cmd, "`")) {
		m = plainText
	}
	code := c.Code
	if m == backticks {
		code = "`" + code + "`"
		cmd = "`" + cmd + "`"
	}

	var b strings.Builder
	b.WriteString("Access to this assistant needs the owner's approval. Your pairing code: ")
	b.WriteString(code)
	if ttl := humanDuration(c.TTL); ttl != "" {
		b.WriteString(" (valid ")
		b.WriteString(ttl)
		b.WriteString(")")
	}
	b.WriteString(". Ask the owner to run: ")
	b.WriteString(cmd)
	return b.String()
}

// humanDuration writes d for people: whole hours when d is a whole number of
// hours ("1 hour", "2 hours"), otherwise whole minutes ("90 minutes"), and
// seconds under a minute. It rounds down, so the text never promises more
// time than the code has. A zero or negative d gives "", and the challenge
// then says nothing about validity rather than something false.
func humanDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return ""
	case d >= time.Hour && d%time.Hour == 0:
		return plural(int64(d/time.Hour), "hour")
	case d >= time.Minute:
		return plural(int64(d/time.Minute), "minute")
	default:
		return plural(max(int64(d/time.Second), 1), "second")
	}
}

func plural(n int64, unit string) string {
	s := strconv.FormatInt(n, 10) + " " + unit
	if n != 1 {
		s += "s"
	}
	return s
}

// shellWord quotes s for a POSIX shell when it holds anything but characters
// that are safe unquoted, so the owner can paste the command as it is even
// for an account named "work bot".
func shellWord(s string) string {
	if s == "" {
		return "''"
	}
	safe := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isAlnumASCII(c) && !strings.ContainsRune("-_.,:/@+=%", rune(c)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
