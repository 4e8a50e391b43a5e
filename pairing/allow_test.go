package pairing_test

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pairgate/pairgate/channel"
	"github.com/pairgate/pairgate/pairing"
	"github.com/pairgate/pairgate/store"
)

// AllowNamed records names, and refuses a list with bad senders as a
// whole, naming each by its position.
func TestAllowNamed(t *testing.T) {
	e := newEnv(t, nil)
	_, err := e.svc.AllowNamed(ctx, "telegram", "", []pairing.NamedSender{{Sender: "1"}, {Sender: "bob"}, {Sender: "2"}, {Sender: "@x"}},
		store.ViaManual, operator)
	var invalid *pairing.InvalidSendersError
	if !errors.As(err, &invalid) || !errors.Is(err, pairing.ErrInvalidInput) {
		t.Fatalf("AllowNamed with bad senders: %v, want an *InvalidSendersError matching ErrInvalidInput", err)
	}
	var at []int
	for _, s := range invalid.Senders {
		at = append(at, s.Index)
		if !errors.Is(s.Err, channel.ErrInvalidSender) {
			t.Errorf("sender %d: %v, want the channel's ErrInvalidSender", s.Index, s.Err)
		}
	}
	if diff := cmp.Diff([]int{1, 3}, at); diff != "" {
		t.Errorf("refused positions (-want +got):\n%s", diff)
	}
	if l, _ := e.svc.ListAllowed(ctx, pairing.Filter{}, true); len(l) != 0 {
		t.Errorf("a refused list added %+v", l)
	}

	res, err := e.svc.AllowNamed(ctx, "telegram", "", []pairing.NamedSender{{Sender: "tg:1", Name: "Ana\u202e\x1b"}, {Sender: "2"}},
		store.ViaManual, operator)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range res {
		got = append(got, r.Sender+" "+r.Name)
	}
	if diff := cmp.Diff([]string{"1 Ana", "2 "}, got); diff != "" {
		t.Errorf("allowed with names (-want +got):\n%s", diff)
	}
}
