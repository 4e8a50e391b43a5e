package pairing_test

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pairgate/pairgate/api"
	"github.com/pairgate/pairgate/config"
	"github.com/pairgate/pairgate/pairing"
	"github.com/pairgate/pairgate/store"
)

func withChannels(chs map[string]config.Channel) *config.Config {
	c := config.Default()
	c.Pairing.Channels = chs
	return c
}

// Reconfigure puts a new policy, allow_from and limits into effect for the
// next message; a config that New would refuse is refused and the running
// one stays.
func TestReconfigureTakesEffectAtOnce(t *testing.T) {
	e := newEnv(t, nil)
	if d := e.svc.Admit(ctx, dm("1")); d.Verdict != api.Challenge {
		t.Fatalf("under the defaults: %+v", d)
	}
	if err := e.svc.Reconfigure(withChannels(map[string]config.Channel{"telegram": {Policy: config.PolicyDisabled}})); err != nil {
		t.Fatal(err)
	}
	if d := e.svc.Admit(ctx, dm("2")); d.Reason != api.ReasonDisabled {
		t.Errorf("after telegram was disabled: %+v", d)
	}

	next := withChannels(map[string]config.Channel{"telegram": {Policy: config.PolicyAllowlist, AllowFrom: []string{"tg:42"}}})
	next.Pairing.Limits.MaxFailures = 1
	if err := e.svc.Reconfigure(next); err != nil {
		t.Fatal(err)
	}
	if d := e.svc.Admit(ctx, dm("42")); d.Reason != api.ReasonAllowed {
		t.Errorf("a sender added to allow_from: %+v", d)
	}
	if d := e.svc.Admit(ctx, dm("3")); d.Reason != api.ReasonNotAllowed {
		t.Errorf("under allowlist: %+v", d)
	}
	if _, err := e.svc.Approve(ctx, pairing.Target{Channel: "telegram", CodeOrID: "ZZZZZZZZ"}, false, operator); !errors.Is(err, store.ErrLockedOut) {
		t.Errorf("one wrong code with max_failures 1: %v, want a lockout", err)
	}
	if got := e.svc.Config().Pairing.Channels["telegram"].AllowFrom; !cmp.Equal(got, []string{"42"}) {
		t.Errorf("Config() allow_from = %q, want the canonical [42]", got)
	}

	bad := withChannels(map[string]config.Channel{"telegram": {Policy: config.PolicyOpen, AllowFrom: []string{"bob"}}})
	err := e.svc.Reconfigure(bad)
	if !errors.Is(err, pairing.ErrInvalidInput) || !strings.Contains(err.Error(), "pairing.channels.telegram.allow_from[0]") {
		t.Errorf("Reconfigure with a bad allow_from entry: %v; want ErrInvalidInput naming it", err)
	}
	if d := e.svc.Admit(ctx, dm("3")); d.Reason != api.ReasonNotAllowed {
		t.Errorf("after a refused Reconfigure: %+v, want the running config (allowlist) kept", d)
	}
}

// Admit runs on while the config is swapped under it: every decision is
// that of one config or the other (the race detector watches the rest).
func TestReconfigureUnderLoad(t *testing.T) {
	e := newEnv(t, nil)
	open := withChannels(map[string]config.Channel{"telegram": {Policy: config.PolicyOpen}})
	closed := withChannels(map[string]config.Channel{"telegram": {Policy: config.PolicyDisabled}})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[api.Reason]int{}
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				d := e.svc.Admit(ctx, dm("1"))
				mu.Lock()
				seen[d.Reason]++
				mu.Unlock()
			}
		})
	}
	for i := range 200 {
		cfg := open
		if i%2 == 1 {
			cfg = closed
		}
		if err := e.svc.Reconfigure(cfg); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	for reason := range seen {
		if reason != api.ReasonOpen && reason != api.ReasonDisabled && reason != api.ReasonChallenged && reason != api.ReasonPending {
			t.Errorf("a decision for reason %q while switching between open and disabled", reason)
		}
	}
}

// Senders admitted by allow_from in the config show in ListAllowed, marked
// via config with the key they come from; revoking one says it must be
// removed from the config.
func TestConfigSendersInListings(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.Pairing.Channels = map[string]config.Channel{
			"telegram": {AllowFrom: []string{"tg:42", "43"}, Accounts: map[string]config.Account{"work": {AllowFrom: []string{"44", "43"}}}},
		}
	})
	if _, err := e.svc.Allow(ctx, "telegram", "", []string{"43", "50"}, store.ViaManual, operator); err != nil {
		t.Fatal(err)
	}
	list, err := e.svc.ListAllowed(ctx, pairing.Filter{}, false)
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		Account, Sender string
		Via             api.Via
		Config          string
	}
	var got []row
	for _, a := range list {
		got = append(got, row{a.Account, a.Sender, a.Via, a.Config})
	}
	const chKey, workKey = "pairing.channels.telegram.allow_from", "pairing.channels.telegram.accounts.work.allow_from"
	want := []row{
		{"*", "42", api.ViaConfig, chKey},
		{"*", "43", api.ViaConfig, chKey},
		{"default", "43", api.ViaManual, ""},
		{"default", "50", api.ViaManual, ""},
		{"work", "43", api.ViaConfig, workKey},
		{"work", "44", api.ViaConfig, workKey},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ListAllowed (-want +got):\n%s", diff)
	}
	// Filtered by account: that account's entries and the channel's.
	list, _ = e.svc.ListAllowed(ctx, pairing.Filter{Channel: "telegram", Account: "work"}, true)
	got = nil
	for _, a := range list {
		got = append(got, row{a.Account, a.Sender, a.Via, a.Config})
	}
	if diff := cmp.Diff([]row{want[0], want[1], want[4], want[5]}, got); diff != "" {
		t.Errorf("ListAllowed of telegram/work (-want +got):\n%s", diff)
	}
	if list, _ := e.svc.ListAllowed(ctx, pairing.Filter{Channel: "discord"}, true); len(list) != 0 {
		t.Errorf("ListAllowed of discord: %+v", list)
	}

	// Only in the config: nothing to revoke in the store.
	_, err = e.svc.Revoke(ctx, "telegram", "work", "44", operator)
	var ce *pairing.ConfigAllowedError
	if !errors.As(err, &ce) || !errors.Is(err, pairing.ErrConfigAllowed) || ce.Keys[0] != workKey {
		t.Errorf("Revoke of a sender admitted only by the config: %v; want ConfigAllowedError naming %s", err, workKey)
	}
	if d := e.svc.Admit(ctx, pairing.Inbound{Channel: "telegram", Account: "work", Sender: "44"}); d.Reason != api.ReasonAllowed {
		t.Errorf("after the refused revoke: %+v", d)
	}
	// In both: the store's entry is revoked, the config still admits.
	if _, err := e.svc.Revoke(ctx, "telegram", "", "43", operator); err != nil {
		t.Errorf("Revoke of a sender in the store and the config: %v", err)
	}
	keys, err := e.svc.AllowedByConfig("telegram", "", "43")
	if err != nil || !cmp.Equal(keys, []string{chKey}) {
		t.Errorf("AllowedByConfig(telegram, default, 43) = %q, %v; want [%s]", keys, err, chKey)
	}
	keys, _ = e.svc.AllowedByConfig("telegram", "work", "43")
	if !cmp.Equal(keys, []string{chKey, workKey}) {
		t.Errorf("AllowedByConfig(telegram, work, 43) = %q", keys)
	}
	if keys, _ := e.svc.AllowedByConfig("telegram", "", "50"); len(keys) != 0 {
		t.Errorf("AllowedByConfig of a sender in the store only: %q", keys)
	}
}
