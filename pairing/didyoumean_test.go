package pairing_test

import (
	"errors"
	"testing"

	"github.com/pairgate/pairgate/config"
	"github.com/pairgate/pairgate/pairing"
	"github.com/pairgate/pairgate/store"
)

// An operator who types a real code without the account it belongs to is
// told which account has it. It still counts as a wrong code on the
// account named: not counting it would let anyone learn, strike-free,
// which codes exist on the other accounts.
func TestWrongAccountSuggestsTheRightOne(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.Pairing.Limits.MaxFailures = 7 })
	work := e.svc.Admit(ctx, pairing.Inbound{Channel: "telegram", Account: "work", Sender: "1"})
	home := e.svc.Admit(ctx, dm("2"))
	other := e.svc.Admit(ctx, pairing.Inbound{Channel: "discord", Sender: "80351110224678912"})

	suggestion := func(err error) string {
		var wa *pairing.WrongAccountError
		if !errors.As(err, &wa) {
			return ""
		}
		return wa.Account
	}
	for _, c := range []struct {
		what, account, code, want string
	}{
		{"a work code on default", "", work.Code, "work"},
		{"a default code on work", "work", home.Code, "default"},
		{"a default code on another account", "home", home.Code, "default"},
		{"a code of no request", "", "ZZZZZZZZ", ""},
		{"a discord code on telegram", "", other.Code, ""},
	} {
		_, err := e.svc.Approve(ctx, pairing.Target{Channel: "telegram", Account: c.account, CodeOrID: c.code}, false, operator)
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s: %v, want not found", c.what, err)
		}
		if got := suggestion(err); got != c.want {
			t.Errorf("%s: suggests account %q, want %q (error: %v)", c.what, got, c.want, err)
		}
		_, err = e.svc.Reject(ctx, pairing.Target{Channel: "telegram", Account: c.account, CodeOrID: c.code}, operator)
		if got := suggestion(err); got != c.want {
			t.Errorf("reject of %s: suggests account %q, want %q (error: %v)", c.what, got, c.want, err)
		}
	}
	// Each counted: default has had 3 approvals and 3 rejects of wrong
	// codes; the seventh locks it, and the lock still says where the code
	// is.
	_, err := e.svc.Approve(ctx, pairing.Target{Channel: "telegram", CodeOrID: work.Code}, false, operator)
	if !errors.Is(err, store.ErrLockedOut) || suggestion(err) != "work" {
		t.Errorf("the seventh wrong code on default: %v; want locked out, suggesting work", err)
	}
	// The request on work is untouched and approvable there.
	if _, err := e.svc.Approve(ctx, pairing.Target{Channel: "telegram", Account: "work", CodeOrID: work.Code}, false, operator); err != nil {
		t.Errorf("approve on the right account: %v", err)
	}
}
