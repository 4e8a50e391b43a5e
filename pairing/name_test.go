package pairing_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pairgate/pairgate/api"
	"github.com/pairgate/pairgate/config"
	"github.com/pairgate/pairgate/pairing"
)

// A sender's display name is the sender's to choose: what the operator
// later sees of it holds no character a terminal would obey (C0, DEL, C1)
// and none that reorders the text around it (bidi controls).
func TestSenderNameCleanedAtIngress(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"C0 controls", "Ali\u0000ce\u001b[2J\nFAKE", "Alice[2JFAKE"},
		{"C1 controls", "Bob\u009b2J\u0085", "Bob2J"},
		{"bidi controls", "Eve\u202egnp.exe\u2066", "Evegnp.exe"},
		{"cut to MaxNameLen", strings.Repeat("é", pairing.MaxNameLen), strings.Repeat("é", pairing.MaxNameLen/2)},
	}
	e := newEnv(t, func(c *config.Config) { c.Pairing.Limits.MaxPending = len(tests) })
	for i, tt := range tests {
		sender := string(rune('1' + i))
		d := e.svc.Admit(ctx, pairing.Inbound{Channel: "telegram", Sender: sender, SenderName: tt.in})
		if d.Verdict != api.Challenge {
			t.Fatalf("%s: %+v, want a challenge", tt.name, d)
		}
		pending, err := e.svc.ListPending(ctx, pairing.Filter{Channel: "telegram"})
		if err != nil {
			t.Fatal(err)
		}
		var got string
		for _, p := range pending {
			if p.Sender == sender {
				got = p.Name
			}
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s: stored name (-want +got):\n%s", tt.name, diff)
		}
	}
}
