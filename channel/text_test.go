package channel

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestChallengeText(t *testing.T) {
	r := NewRegistry()
	tests := []struct {
		channel string
		c       Challenge
		want    string
	}{
		{
			channel: "telegram",
			c:       Challenge{Channel: "telegram", Account: "default", Code: "ABCD2345", TTL: time.Hour},
			want:    "Access to this assistant needs the owner's approval. Your pairing code: `ABCD2345` (valid 1 hour). Ask the owner to run: `pairgate pairing approve telegram ABCD2345`",
		},
		{
			channel: "whatsapp",
			c:       Challenge{Channel: "whatsapp", Account: "work", Code: "ABCD2345", TTL: 2 * time.Hour},
			want:    "Access to this assistant needs the owner's approval. Your pairing code: ABCD2345 (valid 2 hours). Ask the owner to run: pairgate pairing approve whatsapp ABCD2345 --account work",
		},
		{
			// No account means the default one; the adapter names its own
			// channel even when the caller left Channel out.
			channel: "email",
			c:       Challenge{Code: "ABCD2345", TTL: 90 * time.Minute},
			want:    "Access to this assistant needs the owner's approval. Your pairing code: ABCD2345 (valid 90 minutes). Ask the owner to run: pairgate pairing approve email ABCD2345",
		},
		{
			channel: "slack",
			c:       Challenge{Channel: "slack", Account: "acme", Code: "ABCD2345", TTL: 30 * time.Minute},
			want:    "Access to this assistant needs the owner's approval. Your pairing code: `ABCD2345` (valid 30 minutes). Ask the owner to run: `pairgate pairing approve slack ABCD2345 --account acme`",
		},
		{
			// An account name that needs shell quoting.
			channel: "signal",
			c:       Challenge{Channel: "signal", Account: "bob's bot", Code: "ABCD2345", TTL: time.Minute},
			want:    `Access to this assistant needs the owner's approval. Your pairing code: ABCD2345 (valid 1 minute). Ask the owner to run: pairgate pairing approve signal ABCD2345 --account 'bob'\''s bot'`,
		},
		{
			// A backtick would break Telegram's code span: fall back to plain.
			channel: "telegram",
			c:       Challenge{Channel: "telegram", Account: "a`b", Code: "ABCD2345", TTL: time.Hour},
			want:    "Access to this assistant needs the owner's approval. Your pairing code: ABCD2345 (valid 1 hour). Ask the owner to run: pairgate pairing approve telegram ABCD2345 --account 'a`b'",
		},
		{
			// No TTL: say nothing about validity rather than something false.
			channel: "matrix",
			c:       Challenge{Channel: "matrix", Code: "ABCD2345"},
			want:    "Access to this assistant needs the owner's approval. Your pairing code: ABCD2345. Ask the owner to run: pairgate pairing approve matrix ABCD2345",
		},
	}
	for _, tc := range tests {
		got := mustGet(t, r, tc.channel).ChallengeText(tc.c)
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s ChallengeText(%+v) (-want +got):\n%s", tc.channel, tc.c, diff)
		}
	}
}

// TestChallengeTextMarkup checks which channels format the code, and that
// each names itself in the command.
func TestChallengeTextMarkup(t *testing.T) {
	r := NewRegistry()
	formatted := map[string]bool{"telegram": true, "discord": true, "slack": true}
	for _, name := range Names() {
		text := mustGet(t, r, name).ChallengeText(Challenge{Channel: name, Account: "default", Code: "ABCD2345", TTL: time.Hour})
		if got := strings.Contains(text, "`"); got != formatted[name] {
			t.Errorf("%s: backticks in challenge = %v, want %v: %s", name, got, formatted[name], text)
		}
		if want := "pairgate pairing approve " + name + " ABCD2345"; !strings.Contains(text, want) {
			t.Errorf("%s: challenge %q lacks %q", name, text, want)
		}
		if strings.Contains(text, "--account") {
			t.Errorf("%s: challenge for the default account names it: %s", name, text)
		}
	}
}

func TestSharedTexts(t *testing.T) {
	r := NewRegistry()
	for _, name := range Names() {
		a := mustGet(t, r, name)
		if got, want := a.TooManyText(), "Too many pairing requests are waiting for the owner right now. Please try again later."; got != want {
			t.Errorf("%s TooManyText = %q, want %q", name, got, want)
		}
		if got, want := a.ApprovedText(), "The owner approved you: you can talk to this assistant now."; got != want {
			t.Errorf("%s ApprovedText = %q, want %q", name, got, want)
		}
		if !a.CanSendImage() {
			t.Errorf("%s CanSendImage = false, want true", name)
		}
	}
}

func TestHumanDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{time.Hour, "1 hour"},
		{2 * time.Hour, "2 hours"},
		{24 * time.Hour, "24 hours"},
		{30 * time.Minute, "30 minutes"},
		{time.Minute, "1 minute"},
		{90 * time.Minute, "90 minutes"},
		{61*time.Minute + 30*time.Second, "61 minutes"},
		{90 * time.Second, "1 minute"},
		{45 * time.Second, "45 seconds"},
		{time.Second, "1 second"},
		{time.Millisecond, "1 second"},
		{0, ""},
		{-time.Hour, ""},
	}
	for _, tc := range tests {
		if got := humanDuration(tc.d); got != tc.want {
			t.Errorf("humanDuration(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}
