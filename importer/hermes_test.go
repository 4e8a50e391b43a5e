package importer

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pairgate/pairgate/channel"
)

// Whatever a hermes file holds, reading it gives a plan or an error, never
// a panic, and every sender in the plan is canonical for its channel.
func FuzzHermes(f *testing.F) {
	f.Add([]byte(`{"123456789": {"user_name": "Alice", "approved_at": 1764000000.5}}`), "telegram", false)
	f.Add([]byte(`{"ABCD2345": {"user_id": "555", "user_name": "Dan", "created_at": 1764000002}}`), "telegram", true)
	f.Add([]byte(`{"+1 (555) 010-2000": {"approved_at": "2026-11-01T10:00:00Z"}}`), "whatsapp", false)
	f.Add([]byte(`{"x": null, "y": {"approved_at": 1e300}}`), "bluebubbles", false)
	reg := channel.NewRegistry()
	f.Fuzz(func(t *testing.T, data []byte, platform string, pending bool) {
		var p Plan
		if err := p.hermesData(data, "f.json", platform, pending, channel.DefaultAccount, reg); err != nil {
			return
		}
		checkCanonical(t, p, reg)
	})
}

func TestHermesTime(t *testing.T) {
	for raw, want := range map[string]time.Time{
		`1764000000.5`:           time.Unix(1764000000, 5e8).UTC(),
		`"2026-11-01T10:00:00Z"`: time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC),
		`"yesterday"`:            {},
		`-5`:                     {},
		`null`:                   {},
	} {
		if got := hermesTime([]byte(raw)); !got.Equal(want) {
			t.Errorf("hermesTime(%s) = %v, want %v", raw, got, want)
		}
	}
}

// Whatever an OpenClaw file holds, reading it gives a plan or an error,
// never a panic, and every sender in the plan is canonical.
func FuzzOpenClaw(f *testing.F) {
	f.Add([]byte(`{"version": 1, "allowFrom": ["123456789", 42, "*", "@bob"]}`), "telegram-allowFrom.json")
	f.Add([]byte(`{"version": 1, "allowFrom": ["+1 555 010 2000"]}`), "whatsapp-work-allowFrom.json")
	f.Add([]byte(`{"version": 1, "requests": [{"id": "77", "code": "ABCD2345", "createdAt": "2026-11-01T10:00:00Z", "meta": {}}]}`), "telegram-pairing.json")
	f.Add([]byte(`{"version": 2}`), "irc-x-allowFrom.json")
	reg := channel.NewRegistry()
	f.Fuzz(func(t *testing.T, data []byte, name string) {
		var p Plan
		if err := p.openClawData(data, name, reg); err != nil {
			return
		}
		checkCanonical(t, p, reg)
	})
}

func TestOpenClawFile(t *testing.T) {
	reg := channel.NewRegistry()
	var p Plan
	if err := p.openClawData([]byte(`{"version": 1, "allowFrom": ["123456789", 42, "*", "@bob"]}`), "telegram-allowFrom.json", reg); err != nil {
		t.Fatal(err)
	}
	if err := p.openClawData([]byte(`{"version": 1, "allowFrom": ["+1 (555) 010-2000"]}`), "whatsapp-Work-Team-allowFrom.json", reg); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range p.Senders {
		got = append(got, s.Channel+"/"+s.Account+" "+s.Sender)
	}
	want := []string{"telegram/default 123456789", "telegram/default 42", "whatsapp/work-team +15550102000"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("senders %v, want %v", got, want)
	}
	if len(p.Refused) != 2 || p.Refused[0].Key != "*" || p.Refused[1].Key != "@bob" {
		t.Errorf("refused %+v, want * and @bob", p.Refused)
	}
	if err := p.openClawData([]byte(`{"version": 2, "allowFrom": []}`), "telegram-allowFrom.json", reg); err == nil || !strings.Contains(err.Error(), "version 2") {
		t.Errorf("a version 2 file: %v, want an error naming the version", err)
	}
}

// checkCanonical fails t unless every sender of p is on a known channel
// and written as that channel writes it.
func checkCanonical(t *testing.T, p Plan, reg *channel.Registry) {
	t.Helper()
	for _, s := range p.Senders {
		ad, err := reg.Get(s.Channel)
		if err != nil {
			t.Fatalf("sender on unknown channel %q", s.Channel)
		}
		if again, err := ad.Normalize(s.Sender); err != nil || again != s.Sender {
			t.Fatalf("sender %q is not canonical on %s: %q, %v", s.Sender, s.Channel, again, err)
		}
	}
}

// A sender in two files, or written two ways, is imported once.
func TestPlanKeepsOneOfASenderListedTwice(t *testing.T) {
	reg := channel.NewRegistry()
	var p Plan
	for i, body := range []string{`{"version": 1, "allowFrom": ["+1 (555) 010-2000", "+15550102000"]}`, `{"version": 1, "allowFrom": ["+15550102000"]}`} {
		if err := p.openClawData([]byte(body), fmt.Sprintf("whatsapp-%d-allowFrom.json", i), reg); err != nil {
			t.Fatal(err)
		}
	}
	p.sort()
	if len(p.Senders) != 2 || p.Senders[0].Account != "0" || p.Senders[0].Raw == "" || p.Senders[1].Account != "1" {
		t.Errorf("senders %+v, want one a scope, the first spelling kept", p.Senders)
	}
}

// Older hermes pending files key requests by their plaintext code, which
// comes over; newer ones keep a salted hash, which cannot.
func TestHermesPendingCodes(t *testing.T) {
	var p Plan
	reg := channel.NewRegistry()
	if err := p.hermesData([]byte(`{"ABCD2345": {"user_id": "555", "user_name": "Dan", "created_at": 1764000002},
		"e1": {"user_id": "556", "code_hash": "9f2c", "salt": "ab", "created_at": 1764000003}}`), "telegram-pending.json", "telegram", true, channel.DefaultAccount, reg); err != nil {
		t.Fatal(err)
	}
	p.sort()
	if len(p.Pending) != 2 || p.Pending[0].Code != "ABCD2345" || !p.Pending[0].CreatedAt.Equal(time.Unix(1764000002, 0)) || p.Pending[1].Code != "" {
		t.Errorf("pending %+v, want 555 with its code and time, 556 without a code", p.Pending)
	}
}
