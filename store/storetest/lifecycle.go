package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/pairgate/pairgate/store"
)

// call is one store method, with arguments that succeed (and, for the
// mutating ones, change something) on a healthy store holding what
// lifecycleFixture made.
type call struct {
	name string
	do   func(ctx context.Context, s store.Store) error
}

// lifecycleFixture makes a store holding a live request of sender "1" and
// an active allow entry of sender "9", both in tg, a web session and a
// sign-in link, and returns the calls.
func lifecycleFixture(t *testing.T, b Backend) (*fixture, store.Request, []call) {
	f := newFixture(t, b)
	r := f.mustCreate(tg, "1", at(0))
	f.allow(tg, "9", alice, at(0))
	issued := f.issue("lifecycle", at(0))
	fresh := f.request(tg, "2", at(minute))
	web, link := lifecycleWeb()
	f.createWeb(web)
	f.createWeb(link)
	calls := []call{
		{"CreateRequest", func(ctx context.Context, s store.Store) error {
			_, err := s.CreateRequest(ctx, store.CreateRequestParams{Request: fresh, MaxPending: 10, Actor: gate})
			return err
		}},
		{"PendingFor", func(ctx context.Context, s store.Store) error {
			_, _, _, err := s.PendingFor(ctx, tg, "1", at(minute), 3)
			return err
		}},
		{"MarkRequestSent", func(ctx context.Context, s store.Store) error {
			_, err := s.MarkRequestSent(ctx, r.ID, at(window), at(window))
			return err
		}},
		{"ListRequests", func(ctx context.Context, s store.Store) error {
			_, err := s.ListRequests(ctx, all(), at(minute))
			return err
		}},
		{"Approve", func(ctx context.Context, s store.Store) error {
			_, err := s.Approve(ctx, by(store.ViaCode, r, alice, at(minute)))
			return err
		}},
		{"Reject", func(ctx context.Context, s store.Store) error {
			_, err := s.Reject(ctx, by(store.ViaRequest, r, alice, at(minute)))
			return err
		}},
		{"ClearRequests", func(ctx context.Context, s store.Store) error {
			_, err := s.ClearRequests(ctx, all(), alice, at(minute))
			return err
		}},
		{"ExpireRequests", func(ctx context.Context, s store.Store) error {
			_, err := s.ExpireRequests(ctx, at(2*hour))
			return err
		}},
		{"Allow", func(ctx context.Context, s store.Store) error {
			_, err := s.Allow(ctx, store.AllowParams{Scope: tg, Senders: []store.AllowSender{{Sender: "3"}}, Via: store.ViaManual, Actor: alice, Now: at(minute)})
			return err
		}},
		{"Revoke", func(ctx context.Context, s store.Store) error {
			_, err := s.Revoke(ctx, tg, "9", alice, at(minute))
			return err
		}},
		{"ListAllowed", func(ctx context.Context, s store.Store) error {
			_, err := s.ListAllowed(ctx, all(), true)
			return err
		}},
		{"ScanAllowed", func(ctx context.Context, s store.Store) error {
			_, err := s.ScanAllowed(ctx, func(store.Scope, string) error { return nil })
			return err
		}},
		{"DeclinedSince", func(ctx context.Context, s store.Store) error {
			_, err := s.DeclinedSince(ctx, tg, "1", at(0))
			return err
		}},
		{"LockedUntil", func(ctx context.Context, s store.Store) error {
			_, err := s.LockedUntil(ctx, tg, at(minute))
			return err
		}},
		{"RecordApprovalFailure", func(ctx context.Context, s store.Store) error {
			_, err := s.RecordApprovalFailure(ctx, tg, ops, at(minute), store.LockoutPolicy{MaxFailures: 1, Window: hour, LockFor: hour})
			return err
		}},
		{"Lockouts", func(ctx context.Context, s store.Store) error {
			_, err := s.Lockouts(ctx, all(), at(minute))
			return err
		}},
		{"Unlock", func(ctx context.Context, s store.Store) error {
			_, err := s.Unlock(ctx, tg, alice, at(minute))
			return ignoreNotFound(err)
		}},
		{"MarkNotice", func(ctx context.Context, s store.Store) error {
			_, err := s.MarkNotice(ctx, tg, "1", "max_pending", at(minute), at(minute))
			return err
		}},
		{"Changes", func(ctx context.Context, s store.Store) error {
			_, err := s.Changes(ctx, 0, 10)
			return err
		}},
		{"RecentChanges", func(ctx context.Context, s store.Store) error {
			_, err := s.RecentChanges(ctx, store.ChangeQuery{Limit: 10})
			return err
		}},
		{"CreateToken", func(ctx context.Context, s store.Store) error {
			return s.CreateToken(ctx, token("tok_lifecycle", store.ScopeGateway, at(minute)), alice)
		}},
		{"ListTokens", func(ctx context.Context, s store.Store) error {
			_, err := s.ListTokens(ctx, true)
			return err
		}},
		{"RevokeToken", func(ctx context.Context, s store.Store) error {
			_, err := s.RevokeToken(ctx, "tok_lifecycle", alice, at(minute))
			return err
		}},
		{"Ping", func(ctx context.Context, s store.Store) error {
			return s.Ping(ctx)
		}},
		{"SigningKeys", func(ctx context.Context, s store.Store) error {
			_, err := s.SigningKeys(ctx)
			return err
		}},
		{"RotateSigningKey", func(ctx context.Context, s store.Store) error {
			return s.RotateSigningKey(ctx, key(1, at(minute)), at(0), alice)
		}},
		{"CreateSetupToken", func(ctx context.Context, s store.Store) error {
			return s.CreateSetupToken(ctx, setupToken("lifecycle-new", at(minute)), at(0), alice)
		}},
		{"GetSetupToken", func(ctx context.Context, s store.Store) error {
			_, err := s.GetSetupToken(ctx, issued.ID)
			return err
		}},
		{"CreateDeviceRequest", func(ctx context.Context, s store.Store) error {
			return s.CreateDeviceRequest(ctx, deviceRequest("lifecycle", at(minute)), issued.ID, gate)
		}},
		{"GetDeviceRequest", func(ctx context.Context, s store.Store) error {
			_, err := s.GetDeviceRequest(ctx, "dreq_x")
			return ignoreNotFound(err)
		}},
		{"ListDeviceRequests", func(ctx context.Context, s store.Store) error {
			_, err := s.ListDeviceRequests(ctx, at(0))
			return err
		}},
		{"ListDevices", func(ctx context.Context, s store.Store) error {
			_, err := s.ListDevices(ctx)
			return err
		}},
		{"TouchDevice", func(ctx context.Context, s store.Store) error {
			return s.TouchDevice(ctx, "x", at(0))
		}},
		{"CreateWebSession", func(ctx context.Context, s store.Store) error {
			return s.CreateWebSession(ctx, webSession("lifecycle-new", store.WebSessionBrowser, at(minute), hour))
		}},
		{"WebSession", func(ctx context.Context, s store.Store) error {
			_, err := s.WebSession(ctx, web.Hash, at(minute))
			return err
		}},
		{"DeleteWebSession", func(ctx context.Context, s store.Store) error {
			return s.DeleteWebSession(ctx, web.Hash)
		}},
		{"RedeemWebLink", func(ctx context.Context, s store.Store) error {
			return s.RedeemWebLink(ctx, link.Hash, fromLink("lifecycle-redeemed", at(minute), hour), at(minute))
		}},
	}
	return f, r, calls
}

// lifecycleWeb is the web session and the sign-in link lifecycleFixture
// stores.
func lifecycleWeb() (web, link store.WebSession) {
	return webSession("lifecycle", store.WebSessionBrowser, at(0), hour), webSession("lifecycle-link", store.WebSessionLink, at(0), hour)
}

// safely runs c, turning a panic into an error.
func safely(ctx context.Context, s store.Store, c call) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return c.do(ctx, s)
}

// checkUnchanged fails if anything the lifecycle calls would have changed
// did change.
func checkUnchanged(f *fixture, r store.Request, seq int64) {
	f.t.Helper()
	f.checkChanges("after the refused calls", seq)
	f.checkList(all(), at(minute), r)
	if es := f.allowed(all(), true); len(es) != 1 || es[0].Sender != "9" || !es[0].Active() {
		f.t.Errorf("ListAllowed after the refused calls = %+v, want only the active entry of sender 9", es)
	}
	if ok, err := f.s.MarkNotice(f.ctx, tg, "1", "max_pending", at(minute), at(minute)); err != nil || !ok {
		f.t.Errorf("MarkNotice after a refused MarkNotice = %v, %v; want true (nothing recorded before)", ok, err)
	}
	if ok, err := f.s.MarkRequestSent(f.ctx, r.ID, at(window), at(window)); err != nil || !ok {
		f.t.Errorf("MarkRequestSent after a refused MarkRequestSent = %v, %v; want true (nothing recorded before)", ok, err)
	}
	web, link := lifecycleWeb()
	f.checkWeb("the web session after a refused DeleteWebSession", storedWeb(web), at(minute))
	f.checkNoWeb("the web session of a refused CreateWebSession", webSession("lifecycle-new", store.WebSessionBrowser, at(minute), hour).Hash, at(minute))
	redeemed := fromLink("lifecycle-redeemed", at(minute), hour)
	f.checkNoWeb("the web session of a refused RedeemWebLink", redeemed.Hash, at(minute))
	if err := f.s.RedeemWebLink(f.ctx, link.Hash, redeemed, at(minute)); err != nil {
		f.t.Errorf("RedeemWebLink after a refused RedeemWebLink: %v; want the link kept", err)
	}
}

func testClosed(t *testing.T, b Backend) {
	f, r, calls := lifecycleFixture(t, b)
	seq := f.lastSeq()
	closed, err := b.Open(f.ctx, f.locator)
	if err != nil {
		t.Fatalf("Backend.Open: %v", err)
	}
	if err := closed.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	for _, c := range calls {
		err := safely(f.ctx, closed, c)
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s after Close: error %v, want one wrapping %q", c.name, err, store.ErrUnavailable)
		}
	}
	func() {
		defer func() {
			if p := recover(); p != nil {
				t.Errorf("Changed or a second Close after Close panicked: %v", p)
			}
		}()
		_ = closed.Changed()
		if err := closed.Close(); err != nil && !errors.Is(err, store.ErrUnavailable) {
			t.Logf("second Close: %v", err)
		}
	}()
	// Closing one store leaves the others on the same database working.
	checkUnchanged(f, r, seq)
}

func testContextCanceled(t *testing.T, b Backend) {
	f, r, calls := lifecycleFixture(t, b)
	seq := f.lastSeq()
	ctx, cancel := context.WithCancel(f.ctx)
	cancel()
	for _, c := range calls {
		if err := safely(ctx, f.s, c); err == nil {
			t.Errorf("%s with a cancelled context succeeded, want an error", c.name)
		}
	}
	checkUnchanged(f, r, seq)
}

// ignoreNotFound lets a read of something absent count as a success: the
// lifecycle cases care whether the store answered at all.
func ignoreNotFound(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}
