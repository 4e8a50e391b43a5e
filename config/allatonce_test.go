package config

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pairgate/pairgate/channel"
)

// A file with every kind of problem gets every one of them back in one
// error, each with file:line:col, in file order: unknown keys, values of
// the wrong type, bad durations, allow_from entries no channel would
// accept, and what Validate finds. (They used to come in stages: unknown
// keys first, then one bad value, and allow_from without a line, from the
// gate.)
func TestParseReportsEveryProblemAtOnce(t *testing.T) {
	_, err := Parse([]byte(`pairing:
  polcy: open
  limits:
    max_pending: three
    code_ttl: 1 hour
    lockout: 0s
    max_failures: 2.5
  ws_cleartext_allow: kitchen-pi.local
  channels:
    telegram:
      allow_from: ["123", "bob", "tg:456"]
      accounts:
        work:
          allow_from: ["12a"]
          polcy: open
    whatsapp:
      allow_from: ["+5491155556666", "12345@g.us"]
server:
  listen: [a, b]
nats: {url: "http://x"}
owner: {channel: telegarm, sender: "1"}
`), "/etc/pairgate.yaml")
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("Parse: %v, want ErrInvalid", err)
	}
	wa, _ := channel.NewRegistry().Get("whatsapp")
	_, group := wa.Normalize("12345@g.us")
	whatsappGroup := group.Error()
	want := `/etc/pairgate.yaml:2:3: unknown key "polcy" in pairing (valid: storage, setup_code, public_url, ws_cleartext_allow, policy, limits, channels)
/etc/pairgate.yaml:4:18: pairing.limits.max_pending: expected a whole number, got "three"
/etc/pairgate.yaml:5:15: pairing.limits.code_ttl: invalid duration "1 hour": use a duration such as 90m or 1h30m, or a whole number of seconds
/etc/pairgate.yaml:6:5: pairing.limits.lockout: must be positive, got 0s
/etc/pairgate.yaml:7:19: pairing.limits.max_failures: expected a whole number, got 2.5
/etc/pairgate.yaml:8:23: pairing.ws_cleartext_allow: expected a list, got "kitchen-pi.local"
/etc/pairgate.yaml:11:27: pairing.channels.telegram.allow_from[1]: telegram sender "bob": want a numeric Telegram user id such as 123456789: invalid sender
/etc/pairgate.yaml:14:24: pairing.channels.telegram.accounts.work.allow_from[0]: telegram sender "12a": want a numeric Telegram user id such as 123456789: invalid sender
/etc/pairgate.yaml:15:11: unknown key "polcy" in pairing.channels.telegram.accounts.work (valid: policy, allow_from)
/etc/pairgate.yaml:17:38: pairing.channels.whatsapp.allow_from[1]: ` + whatsappGroup + `
/etc/pairgate.yaml:19:11: server.listen: expected a string, got a list
/etc/pairgate.yaml:20:8: nats.url: want a nats://, tls://, ws:// or wss:// URL with a host, got "http://x"
/etc/pairgate.yaml:21:9: owner.channel: unknown channel "telegarm" (valid: telegram, whatsapp, signal, discord, slack, imessage, feishu, matrix, email)`
	if diff := cmp.Diff(want, err.Error()); diff != "" {
		t.Errorf("error mismatch (-want +got):\n%s", diff)
	}
}

// Parse hands on allow_from in canonical form, as the gate compares it;
// Canonical does the same for a configuration built in Go, and refuses
// what Validate refuses.
func TestAllowFromIsCanonical(t *testing.T) {
	got := mustParse(t, `
pairing:
  channels:
    telegram:
      allow_from: ["tg:42", "telegram:43"]
      accounts:
        Work: {allow_from: ["user:44"]}
    whatsapp:
      allow_from: ["5491155556666@s.whatsapp.net"]
`)
	want := map[string]Channel{
		"telegram": {AllowFrom: []string{"42", "43"}, Accounts: map[string]Account{"work": {AllowFrom: []string{"44"}}}},
		"whatsapp": {AllowFrom: []string{"+5491155556666"}},
	}
	if diff := cmp.Diff(want, got.Pairing.Channels); diff != "" {
		t.Errorf("parsed channels (-want +got):\n%s", diff)
	}

	c := Default()
	c.Pairing.Channels = map[string]Channel{"telegram": {AllowFrom: []string{"tg:42"}, Accounts: map[string]Account{"Work": {AllowFrom: []string{"user:44"}}}}}
	canon, err := c.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]Channel{"telegram": {AllowFrom: []string{"42"}, Accounts: map[string]Account{"work": {AllowFrom: []string{"44"}}}}}, canon.Pairing.Channels); diff != "" {
		t.Errorf("Canonical (-want +got):\n%s", diff)
	}
	if c.Pairing.Channels["telegram"].AllowFrom[0] != "tg:42" {
		t.Error("Canonical changed the configuration it was given")
	}
	c.Pairing.Channels["telegram"].AllowFrom[0] = "bob"
	if _, err := c.Canonical(); !errors.Is(err, ErrInvalid) {
		t.Errorf("Canonical of a bad allow_from entry: %v, want ErrInvalid", err)
	}
}
