package pairing_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pairgate/pairgate/api"
	"github.com/pairgate/pairgate/config"
	"github.com/pairgate/pairgate/pairing"
	"github.com/pairgate/pairgate/secret"
	"github.com/pairgate/pairgate/store"
	"github.com/pairgate/pairgate/store/sqlite"
)

// badAccounts are account names SPEC section 1 refuses: NATS wildcards and
// separators, paths, spaces, nothing, too long, not ASCII.
var badAccounts = []string{"*", ">", "a.b", "../x", "a b", "  ", strings.Repeat("a", 65), "wörk", "\u212aelvin"}

func TestAdmitDropsAnInvalidAccount(t *testing.T) {
	e := newEnv(t, nil)
	want := api.Decision{Verdict: api.Drop, Reason: api.ReasonInvalidAccount}
	for _, acct := range badAccounts {
		in := pairing.Inbound{Channel: "telegram", Account: acct, Sender: "123456789"}
		if diff := cmp.Diff(want, e.svc.Admit(ctx, in)); diff != "" {
			t.Errorf("Admit with account %q (-want +got):\n%s", acct, diff)
		}
	}
	pending, err := e.svc.ListPending(ctx, pairing.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 0 {
		t.Errorf("an invalid account must never get a request: %+v", pending)
	}
}

// TestOperatorRefusesAnInvalidAccount: every operator method refuses the
// account as invalid input, with a message that blames the account (not
// the sender) and says what an account looks like.
func TestOperatorRefusesAnInvalidAccount(t *testing.T) {
	e := newEnv(t, nil)
	ops := []struct {
		name string
		call func(account string) error
	}{
		{"approve", func(a string) error {
			_, err := e.svc.Approve(ctx, pairing.Target{Channel: "telegram", Account: a, CodeOrID: "ABCD2345"}, false, operator)
			return err
		}},
		{"reject", func(a string) error {
			_, err := e.svc.Reject(ctx, pairing.Target{Channel: "telegram", Account: a, CodeOrID: "req_x"}, operator)
			return err
		}},
		{"allow", func(a string) error {
			_, err := e.svc.Allow(ctx, "telegram", a, []string{"42"}, store.ViaManual, operator)
			return err
		}},
		{"revoke", func(a string) error { _, err := e.svc.Revoke(ctx, "telegram", a, "42", operator); return err }},
		{"list", func(a string) error {
			_, err := e.svc.ListPending(ctx, pairing.Filter{Channel: "telegram", Account: a})
			return err
		}},
		{"allowed", func(a string) error {
			_, err := e.svc.ListAllowed(ctx, pairing.Filter{Channel: "telegram", Account: a}, true)
			return err
		}},
		{"clear", func(a string) error {
			_, err := e.svc.ClearPending(ctx, pairing.Filter{Channel: "telegram", Account: a}, operator)
			return err
		}},
	}
	for _, op := range ops {
		for _, acct := range []string{"*", "a.b", "../x"} {
			err := op.call(acct)
			if !errors.Is(err, pairing.ErrInvalidInput) {
				t.Errorf("%s with account %q: %v, want ErrInvalidInput", op.name, acct, err)
				continue
			}
			msg := err.Error()
			for _, want := range []string{`account "` + acct + `"`, "1–64 characters of a-z, 0-9, _ and -"} {
				if !strings.Contains(msg, want) {
					t.Errorf("%s with account %q: message %q does not say %q", op.name, acct, msg, want)
				}
			}
			if strings.Contains(msg, "sender") {
				t.Errorf("%s with account %q: message %q blames the sender", op.name, acct, msg)
			}
		}
	}
	allowed, err := e.svc.ListAllowed(ctx, pairing.Filter{}, true)
	if err != nil || len(allowed) != 0 {
		t.Errorf("nothing may be allowed under an invalid account: %+v, %v", allowed, err)
	}
}

// TestAccountsAreCaseFolded: Work, WORK and work are one scope, and it is
// reported as work.
func TestAccountsAreCaseFolded(t *testing.T) {
	e := newEnv(t, nil)
	d := e.svc.Admit(ctx, pairing.Inbound{Channel: "telegram", Account: "Work", Sender: "1"})
	if d.Verdict != api.Challenge {
		t.Fatalf("first message on Work: %+v", d)
	}
	// The same sender on WORK is the same pending request.
	if again := e.svc.Admit(ctx, pairing.Inbound{Channel: "telegram", Account: "WORK", Sender: "1"}); again.Reason != api.ReasonPending {
		t.Fatalf("the same sender on WORK: %+v, want the pending request of Work", again)
	}
	a, err := e.svc.Approve(ctx, pairing.Target{Channel: "telegram", Account: "Work", CodeOrID: d.Code}, false, operator)
	if err != nil {
		t.Fatal(err)
	}
	if a.Allowed.Account != "work" {
		t.Errorf("approved on account %q, want work", a.Allowed.Account)
	}
	want := api.Decision{Verdict: api.Admit, Reason: api.ReasonAllowed}
	if diff := cmp.Diff(want, e.svc.Admit(ctx, pairing.Inbound{Channel: "telegram", Account: "work", Sender: "1"})); diff != "" {
		t.Errorf("approved via Work, admitted via work (-want +got):\n%s", diff)
	}
	list, err := e.svc.ListAllowed(ctx, pairing.Filter{Channel: "telegram", Account: "WoRk"}, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Account != "work" || list[0].Sender != "1" {
		t.Errorf("allowed on WoRk: %+v, want sender 1 on work", list)
	}

	// DEFAULT is the default account.
	if _, err := e.svc.Allow(ctx, "telegram", "DEFAULT", []string{"2"}, store.ViaManual, operator); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, e.svc.Admit(ctx, dm("2"))); diff != "" {
		t.Errorf("allowed on DEFAULT, admitted with no account (-want +got):\n%s", diff)
	}
	if _, err := e.svc.Revoke(ctx, "telegram", "Default", "2", operator); err != nil {
		t.Errorf("revoke on Default: %v", err)
	}
	if got := e.svc.Admit(ctx, dm("2")); got.Verdict == api.Admit {
		t.Errorf("revoked on Default, still admitted on default: %+v", got)
	}
}

// TestConfigAccountsAreCaseFolded: an account written Work in the config is
// the account work of the gate and the CLI, whether the config came from a
// file or was built in Go.
func TestConfigAccountsAreCaseFolded(t *testing.T) {
	parsed, err := config.Parse([]byte("pairing:\n  channels:\n    telegram:\n      accounts:\n        Work: {policy: open}\n"), "pairgate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	configs := map[string]func(*config.Config){
		"parsed": func(c *config.Config) { *c = *parsed },
		"built in Go": func(c *config.Config) {
			c.Pairing.Channels = map[string]config.Channel{"telegram": {Accounts: map[string]config.Account{"Work": {Policy: config.PolicyOpen}}}}
		},
	}
	for name, mutate := range configs {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, mutate)
			want := api.Decision{Verdict: api.Admit, Reason: api.ReasonOpen}
			for _, acct := range []string{"work", "Work", "WORK"} {
				if diff := cmp.Diff(want, e.svc.Admit(ctx, pairing.Inbound{Channel: "telegram", Account: acct, Sender: "5"})); diff != "" {
					t.Errorf("account %q under a config naming Work (-want +got):\n%s", acct, diff)
				}
			}
		})
	}
}

func TestNewRefusesConfigAccounts(t *testing.T) {
	tests := []struct {
		name     string
		accounts map[string]config.Account
		want     string
	}{
		{"invalid", map[string]config.Account{"a.b": {}}, `pairing.channels.telegram.accounts."a.b": account "a.b": '.' is not allowed`},
		{"two spellings of one", map[string]config.Account{"Work": {}, "work": {}}, "pairing.channels.telegram.accounts.work: the same account as Work"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newService(t, func(c *config.Config) {
				c.Pairing.Channels = map[string]config.Channel{"telegram": {Accounts: tt.accounts}}
			})
			if !errors.Is(err, pairing.ErrInvalidInput) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New: %v; want ErrInvalidInput mentioning %q", err, tt.want)
			}
		})
	}
}

func TestAdmitAllowedOnANamedAccountDoesNotAllocate(t *testing.T) {
	e := newEnv(t, nil)
	if _, err := e.svc.Allow(ctx, "telegram", "work", []string{"123456789"}, store.ViaManual, operator); err != nil {
		t.Fatal(err)
	}
	in := pairing.Inbound{Channel: "telegram", Account: "work", Sender: "123456789"}
	if d := e.svc.Admit(ctx, in); d.Verdict != api.Admit {
		t.Fatal(d)
	}
	if n := testing.AllocsPerRun(1000, func() { e.svc.Admit(ctx, in) }); n != 0 {
		t.Errorf("Admit for an allowed sender on account work allocates %v times per call, want 0", n)
	}
}

// newService is pairing.New over a fresh store, for tests of what New refuses.
func newService(t *testing.T, mutate func(*config.Config)) (*pairing.Service, error) {
	t.Helper()
	st, err := sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(t.TempDir(), "pairgate.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg := config.Default()
	mutate(cfg)
	sec, err := secret.FromBytes(testKey)
	if err != nil {
		t.Fatal(err)
	}
	return pairing.New(pairing.Options{Store: st, Secret: sec, Config: cfg})
}
