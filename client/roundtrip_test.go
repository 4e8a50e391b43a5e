package client_test

import (
	"bytes"
	"errors"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pairgate/pairgate/api"
	"github.com/pairgate/pairgate/apitoken"
	"github.com/pairgate/pairgate/client"
	"github.com/pairgate/pairgate/config"
	"github.com/pairgate/pairgate/pairing"
	"github.com/pairgate/pairgate/secret"
	"github.com/pairgate/pairgate/server"
	"github.com/pairgate/pairgate/store"
	"github.com/pairgate/pairgate/store/sqlite"
)

const roundTripAdmin = "pga_roundtrip-admin-token-0123456789abcdefghijkl"

// daemon is a real server.Server over a SQLite store, served on loopback,
// with a client for each scope and the pairing service it runs, to ask
// in-process what the client should have decoded.
type daemon struct {
	svc     *pairing.Service
	st      store.Store
	url     string
	admin   *client.Client
	gateway *client.Client
}

func newDaemon(t *testing.T) *daemon {
	t.Helper()
	ctx := t.Context()
	st, err := sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(t.TempDir(), "pairgate.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	sec, err := secret.FromBytes(bytes.Repeat([]byte{3}, secret.Size))
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Pairing.Channels = map[string]config.Channel{"telegram": {AllowFrom: []string{"42"}}}
	svc, err := pairing.New(pairing.Options{Store: st, Secret: sec, Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	gw, err := apitoken.New(apitoken.Options{Store: st}).Create(ctx, store.ScopeGateway, "roundtrip", store.Actor{Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := apitoken.New(apitoken.Options{Store: st}).Authenticator(ctx, roundTripAdmin)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Options{Pairing: svc, Store: st, Tokens: tokens})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler()) // 127.0.0.1
	t.Cleanup(hs.Close)
	d := &daemon{svc: svc, st: st, url: hs.URL}
	if d.admin, err = client.New(hs.URL, roundTripAdmin); err != nil {
		t.Fatal(err)
	}
	if d.gateway, err = client.New(hs.URL, gw.Token); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestRoundTrip drives every call of the client against a real server:
// what the server encodes, the client decodes to the values the pairing
// service holds in-process, optional fields included (a revocation, a
// sender of allow_from, a notice, an approval made before).
func TestRoundTrip(t *testing.T) {
	d := newDaemon(t)
	ctx := t.Context()
	mustEqual := func(what string, want, got any) {
		t.Helper()
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s (-in process +over HTTP):\n%s", what, diff)
		}
	}
	pending := func(channel, account string) []api.PendingRequest {
		t.Helper()
		p, err := d.svc.ListPending(ctx, pairing.Filter{Channel: channel, Account: account})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	allowed := func(includeRevoked bool) []api.AllowedSender {
		t.Helper()
		a, err := d.svc.ListAllowed(ctx, pairing.Filter{Channel: "telegram"}, includeRevoked)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}

	if err := d.admin.Healthz(ctx); err != nil {
		t.Errorf("Healthz: %v", err)
	}
	if err := d.admin.Ready(ctx); err != nil {
		t.Errorf("Ready: %v", err)
	}

	// Admit: a challenge, a sender of allow_from, a group chat.
	alice, err := d.gateway.Admit(ctx, api.AdmitRequest{Channel: "telegram", Sender: "123456789", SenderName: "Alice"})
	if err != nil {
		t.Fatal(err)
	}
	p := pending("telegram", "")
	if len(p) != 1 {
		t.Fatalf("pending after the challenge: %+v", p)
	}
	if alice.Verdict != api.Challenge || alice.Reason != api.ReasonChallenged || alice.RequestID != p[0].RequestID ||
		alice.Code == "" || !strings.Contains(alice.Reply, alice.Code) {
		t.Errorf("Admit of an unknown sender: %+v", alice)
	}
	for _, tt := range []struct {
		in   api.AdmitRequest
		want api.Decision
	}{
		{api.AdmitRequest{Channel: "telegram", Sender: "tg:42"}, api.Decision{Verdict: api.Admit, Reason: api.ReasonAllowed}},
		{api.AdmitRequest{Channel: "telegram", Account: "work", Sender: "777", Chat: api.ChatGroup}, api.Decision{Verdict: api.Drop, Reason: api.ReasonGroup}},
	} {
		got, err := d.gateway.Admit(ctx, tt.in)
		if err != nil {
			t.Fatal(err)
		}
		mustEqual("Admit", tt.want, got)
	}
	if _, err := d.gateway.Admit(ctx, api.AdmitRequest{Channel: "telegram", Account: "work", Sender: "555000111", SenderName: "Bob"}); err != nil {
		t.Fatal(err)
	}

	// Pending, unfiltered and filtered.
	got, err := d.admin.Pending(ctx, "", "")
	if err != nil {
		t.Fatal(err)
	}
	mustEqual("Pending", pending("", ""), got)
	got, err = d.admin.Pending(ctx, "telegram", "work")
	if err != nil {
		t.Fatal(err)
	}
	mustEqual("Pending on telegram/work", pending("telegram", "work"), got)
	bob := got[0]

	// Approve with a notice, then again: already approved.
	ap, err := d.admin.Approve(ctx, api.ApproveRequest{Channel: "telegram", Code: strings.ToLower(alice.Code), Notify: true})
	if err != nil {
		t.Fatal(err)
	}
	entry := allowed(false)[1] // after the allow_from sender 42
	mustEqual("Approve", api.Approval{Allowed: entry, RequestID: alice.RequestID, Notify: ap.Notify}, ap)
	if ap.Notify == "" || entry.Sender != "123456789" || entry.Via != api.ViaCode {
		t.Errorf("Approve: notice %q, entry %+v", ap.Notify, entry)
	}
	again, err := d.admin.Approve(ctx, api.ApproveRequest{Channel: "telegram", RequestID: alice.RequestID})
	if err != nil {
		t.Fatal(err)
	}
	mustEqual("Approve again", api.Approval{Allowed: entry, RequestID: alice.RequestID, Already: true}, again)

	// Reject returns the request as it was pending.
	rej, err := d.admin.Reject(ctx, api.RejectRequest{Channel: "telegram", Account: "work", RequestID: bob.RequestID})
	if err != nil {
		t.Fatal(err)
	}
	mustEqual("Reject", bob, rej)

	// Allow, twice; revoke.
	res, err := d.admin.Allow(ctx, "telegram", "", "987654321")
	if err != nil {
		t.Fatal(err)
	}
	carol := allowed(false)[2]
	mustEqual("Allow", []api.AllowResult{{AllowedSender: carol, Changed: true}}, res)
	if res, err = d.admin.Allow(ctx, "telegram", "", "987654321"); err != nil {
		t.Fatal(err)
	}
	mustEqual("Allow again", []api.AllowResult{{AllowedSender: carol, Changed: false}}, res)
	rev, err := d.admin.Revoke(ctx, "telegram", "", "123456789")
	if err != nil {
		t.Fatal(err)
	}
	all := allowed(true)
	mustEqual("Revoke", all[1], rev)
	if rev.RevokedAt == nil || rev.RevokedBy != "admin" {
		t.Errorf("Revoke: %+v, want revoked_at and revoked_by", rev)
	}

	// Allowed: the allow_from sender, the revoked one, the active one.
	list, err := d.admin.Allowed(ctx, "telegram", "", true)
	if err != nil {
		t.Fatal(err)
	}
	mustEqual("Allowed with revoked", all, list)
	if list[0].Via != api.ViaConfig || list[0].Account != "*" || list[0].Config == "" {
		t.Errorf("Allowed: the allow_from sender is %+v", list[0])
	}
	if list, err = d.admin.Allowed(ctx, "telegram", "", false); err != nil {
		t.Fatal(err)
	}
	mustEqual("Allowed", allowed(false), list)

	// Audit: the latest changes, newest first, as the store recorded them.
	page, err := d.admin.Audit(ctx, api.AuditQuery{Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	changes := page.Changes
	if page.NextBefore != changes[len(changes)-1].Seq {
		t.Errorf("Audit: a full page has next_before %d, want the oldest seq %d", page.NextBefore, changes[len(changes)-1].Seq)
	}
	older, err := d.admin.Audit(ctx, api.AuditQuery{Limit: 3, Before: page.NextBefore, Kind: string(store.KindRequested)})
	if err != nil {
		t.Fatal(err)
	}
	if len(older.Changes) == 0 {
		t.Error("Audit found no pairing.requested change before the newest page")
	}
	for _, c := range older.Changes {
		if c.Seq >= page.NextBefore || c.Kind != string(store.KindRequested) {
			t.Errorf("Audit of older pairing.requested changes returned %+v", c)
		}
	}
	recent, err := d.st.RecentChanges(ctx, store.ChangeQuery{Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != len(recent) {
		t.Fatalf("Audit: %d changes, the store has %d", len(changes), len(recent))
	}
	for i, c := range recent {
		want := api.Change{Seq: c.Seq, At: c.At, Kind: string(c.Kind), Channel: c.Scope.Channel, Account: c.Scope.Account,
			Sender: c.Sender, RequestID: c.RequestID, Actor: c.Actor.Name, Source: c.Actor.Source, Detail: c.Detail}
		mustEqual("Audit", want, changes[i])
	}
	if changes[0].Kind != string(store.KindRevoked) || changes[0].Actor != "admin" || !strings.HasPrefix(changes[0].Source, "api 127.0.0.1:") {
		t.Errorf("Audit: the newest change is %+v, want the revocation by the admin token", changes[0])
	}
}

// TestRoundTripErrors: the error bodies the server writes are the errors
// the client's helpers recognise.
func TestRoundTripErrors(t *testing.T) {
	d := newDaemon(t)
	ctx := t.Context()
	dec, err := d.gateway.Admit(ctx, api.AdmitRequest{Channel: "telegram", Sender: "1"})
	if err != nil {
		t.Fatal(err)
	}

	_, err = d.gateway.Pending(ctx, "", "")
	if !client.IsForbidden(err) {
		t.Errorf("Pending with a gateway token: %v, want forbidden", err)
	}
	nobody, err := client.New(d.url, "pgt_not-a-token")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nobody.Admit(ctx, api.AdmitRequest{Channel: "telegram", Sender: "1"}); !client.IsUnauthorized(err) {
		t.Errorf("Admit with an unknown token: %v, want unauthorized", err)
	}
	if _, err := d.admin.Allow(ctx, "telegram", "", "bob"); !client.HasCode(err, api.CodeInvalidInput) {
		t.Errorf("Allow of a sender telegram refuses: %v, want invalid_input", err)
	}
	// Five wrong codes lock approvals: the first four are not found, and
	// the fifth sets the lock.
	for i := range 5 {
		_, err = d.admin.Approve(ctx, api.ApproveRequest{Channel: "telegram", Code: "ZZZZ2222"})
		if i < 4 && !client.IsNotFound(err) {
			t.Fatalf("Approve of wrong code %d: %v, want not_found", i+1, err)
		}
	}
	_, err = d.admin.Approve(ctx, api.ApproveRequest{Channel: "telegram", Code: dec.Code})
	e, ok := errors.AsType[*client.APIError](err)
	if !client.IsLockedOut(err) || !ok || e.Status != 429 || e.RetryAfter < 59*time.Minute || e.RetryAfter > time.Hour {
		t.Errorf("Approve while locked: %#v, want locked_out with Retry-After about 1h", err)
	}
	if !ok || !strings.Contains(e.Message, "locked until") {
		t.Errorf("Approve while locked: message %q", e.Message)
	}
}
