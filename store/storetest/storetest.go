// Package storetest is the conformance suite every store.Store backend runs.
//
// A backend's test file calls Run with a Backend that makes fresh stores, and
// calls ChildMain first thing in its TestMain so that the suite can re-execute
// the test binary as several OS processes racing on one database (the hermes
// and OpenClaw failures of SPEC section 6 only show up across processes).
//
// The suite tests exactly what the doc comments of store.Store promise. Every
// case uses a fixed clock and explicit times, never the wall clock, so expiry,
// rate windows and lockouts are tested without sleeping.
package storetest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/pairgate/pairgate/store"
)

// Backend tells the suite how to make stores.
type Backend struct {
	// New returns a fresh, empty store for one test (closed by t.Cleanup) and a
	// locator string with which Open can open the same database from another process.
	New func(t *testing.T) (store.Store, string)
	// Open opens an existing database by locator (used by child processes).
	Open func(ctx context.Context, locator string) (store.Store, error)
}

// NewBackend makes a Backend from an engine's open function and a way to
// make a fresh, empty database for one test (its locator: a file path, a
// DSN). Stores New makes are closed at the end of their test.
func NewBackend(open func(ctx context.Context, locator string) (store.Store, error), fresh func(t *testing.T) string) Backend {
	return Backend{
		New: func(t *testing.T) (store.Store, string) {
			t.Helper()
			locator := fresh(t)
			s, err := open(t.Context(), locator)
			if err != nil {
				t.Fatalf("open a fresh store: %v", err)
			}
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			return s, locator
		},
		Open: open,
	}
}

// Run runs every conformance case against b, each as its own subtest with
// its own fresh store.
func Run(t *testing.T, b Backend) {
	if b.New == nil || b.Open == nil {
		t.Fatal("storetest: Backend.New and Backend.Open must both be set")
	}
	cases := []struct {
		name string
		fn   func(*testing.T, Backend)
	}{
		{"CreateList", testCreateList},
		{"Pending", testPending},
		{"PendingFor", testPendingFor},
		{"GateState", testGateState},
		{"AllowedSender", testAllowedSender},
		{"Cap", testCap},
		{"CodeConflict", testCodeConflict},
		{"CapConcurrentGoroutines", testCapGoroutines},
		{"CapConcurrentProcesses", testCapProcesses},
		{"MarkRequestSent", testMarkRequestSent},
		{"MarkNotice", testMarkNotice},
		{"Approve", testApprove},
		{"ApproveRace", testApproveRace},
		{"AlreadyApproved", testAlreadyApproved},
		{"AllowRevoke", testAllowRevoke},
		{"Reject", testReject},
		{"Lockout", testLockout},
		{"Unlock", testUnlock},
		{"ClearRequests", testClearRequests},
		{"ChangeLog", testChangeLog},
		{"Changed", testChanged},
		{"Tokens", testTokens},
		{"SigningKeys", testSigningKeys},
		{"SetupTokens", testSetupTokens},
		{"SetupTokenUse", testSetupTokenUse},
		{"Devices", testDevices},
		{"DeviceRaces", testDeviceRaces},
		{"Closed", testClosed},
		{"ContextCanceled", testContextCanceled},
		{"CommitOrder", testCommitOrder},
		{"Gapless", testGapless},
		{"Cursors", testCursors},
		{"Payloads", testPayloads},
		{"Retention", testRetention},
		{"RetentionPrunedAll", testRetentionPrunedAll},
		{"RetentionSkew", testRetentionSkew},
		{"Leases", testLeases},
		{"WebSessions", testWebSessions},
		{"Outbound", testOutbound},
		{"GCRows", testGCRows},
		{"GCZero", testGCZero},
		{"GCNotices", testGCNotices},
		{"AllowRace", testAllowRace},
		{"FailureRace", testFailureRace},
		{"FirstReadsAtOnce", testFirstReadsAtOnce},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.fn(t, b) })
	}
}

// The fixed clock: every time in the suite is t0 plus an explicit offset.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

const (
	ms     = time.Millisecond
	minute = time.Minute
	hour   = time.Hour
	// ttl is the lifetime of every request the suite makes (SPEC default).
	ttl = time.Hour
	// window is the rate window of MarkRequestSent and MarkNotice.
	window = 10 * time.Minute
	// notifyLatency bounds how fast Changed must fire for a change made by
	// another store on the same database (store.Store.Changed: ≤ 1 s).
	notifyLatency = time.Second
)

// Scopes: two accounts on one channel and the same account on another
// channel, so that every isolation test crosses both boundaries.
var (
	tg     = store.Scope{Channel: "telegram", Account: "default"}
	tgWork = store.Scope{Channel: "telegram", Account: "work"}
	sig    = store.Scope{Channel: "signal", Account: "default"}
)

// Fake actors.
var (
	gate  = store.Actor{Name: "gate", Source: "gate"}
	alice = store.Actor{Name: "cli:alice", Source: "cli"}
	ops   = store.Actor{Name: "token:ops", Source: "api 127.0.0.1:5123"}
)

// hash stands in for the keyed code hash: any 32 bytes unique per code.
func hash(s string) []byte {
	h := sha256.Sum256([]byte("pairgate storetest code " + s))
	return h[:]
}

// fixture is one test's store plus helpers that fail the test on
// unexpected errors.
type fixture struct {
	t       *testing.T
	ctx     context.Context
	b       Backend
	s       store.Store
	locator string
	n       int // request counter, for unique ids and code hashes
}

func newFixture(t *testing.T, b Backend) *fixture {
	t.Helper()
	s, locator := b.New(t)
	if s == nil {
		t.Fatal("Backend.New returned a nil store")
	}
	return &fixture{t: t, ctx: t.Context(), b: b, s: s, locator: locator}
}

// open opens a second store on the fixture's database, closed at cleanup.
func (f *fixture) open() store.Store {
	f.t.Helper()
	s, err := f.b.Open(f.ctx, f.locator)
	if err != nil {
		f.t.Fatalf("Backend.Open(%q): %v", f.locator, err)
	}
	f.t.Cleanup(func() { _ = s.Close() })
	return s
}

// request builds a request (not yet stored) with a fresh id and code hash,
// created at created and expiring ttl later.
func (f *fixture) request(scope store.Scope, sender string, created time.Time) store.Request {
	f.n++
	id := fmt.Sprintf("req_%03d_%s", f.n, sender)
	return store.Request{
		ID:        id,
		Scope:     scope,
		Sender:    sender,
		Name:      "Name of " + sender,
		CodeHash:  hash(id),
		CreatedAt: created,
		ExpiresAt: created.Add(ttl),
	}
}

// stored is what the store holds after creating r: the code is sent when the
// request is created, so LastSentAt starts at CreatedAt unless r has a later
// one (an import's), and times are truncated to milliseconds.
func stored(r store.Request) store.Request {
	r.CreatedAt = r.CreatedAt.Truncate(ms)
	r.ExpiresAt = r.ExpiresAt.Truncate(ms)
	if r.LastSentAt = r.LastSentAt.Truncate(ms); r.LastSentAt.Before(r.CreatedAt) {
		r.LastSentAt = r.CreatedAt
	}
	return r
}

func (f *fixture) tryCreate(r store.Request, maxPending int) (store.Request, error) {
	return f.s.CreateRequest(f.ctx, store.CreateRequestParams{Request: r, MaxPending: maxPending, Actor: gate})
}

// create stores r and checks that CreateRequest returns it as stored.
func (f *fixture) create(r store.Request, maxPending int) store.Request {
	f.t.Helper()
	got, err := f.tryCreate(r, maxPending)
	if err != nil {
		f.t.Fatalf("CreateRequest(%s, %s, max %d): %v", r.ID, r.Scope, maxPending, err)
	}
	if diff := cmp.Diff(stored(r), got); diff != "" {
		f.t.Errorf("CreateRequest(%s) returned (-want +got):\n%s", r.ID, diff)
	}
	return stored(r)
}

// mustCreate builds and stores a request with a generous cap.
func (f *fixture) mustCreate(scope store.Scope, sender string, created time.Time) store.Request {
	f.t.Helper()
	return f.create(f.request(scope, sender, created), 100)
}

func (f *fixture) list(filter store.RequestFilter, now time.Time) []store.Request {
	f.t.Helper()
	rs, err := f.s.ListRequests(f.ctx, filter, now)
	if err != nil {
		f.t.Fatalf("ListRequests(%+v, %v): %v", filter, now, err)
	}
	return rs
}

// checkList compares ListRequests with want, in order.
func (f *fixture) checkList(filter store.RequestFilter, now time.Time, want ...store.Request) {
	f.t.Helper()
	if diff := cmp.Diff(want, f.list(filter, now), cmpopts.EquateEmpty()); diff != "" {
		f.t.Errorf("ListRequests(%+v, %s) (-want +got):\n%s", filter, now.Format(time.RFC3339Nano), diff)
	}
}

func (f *fixture) allowed(filter store.RequestFilter, includeRevoked bool) []store.AllowEntry {
	f.t.Helper()
	es, err := f.s.ListAllowed(f.ctx, filter, includeRevoked)
	if err != nil {
		f.t.Fatalf("ListAllowed(%+v, %v): %v", filter, includeRevoked, err)
	}
	return es
}

func (f *fixture) checkAllowed(filter store.RequestFilter, includeRevoked bool, want ...store.AllowEntry) {
	f.t.Helper()
	if diff := cmp.Diff(want, f.allowed(filter, includeRevoked), cmpopts.EquateEmpty()); diff != "" {
		f.t.Errorf("ListAllowed(%+v, includeRevoked=%v) (-want +got):\n%s", filter, includeRevoked, diff)
	}
}

func (f *fixture) approve(p store.ApproveParams) (store.Request, store.AllowEntry) {
	f.t.Helper()
	a, err := f.s.Approve(f.ctx, p)
	if err != nil {
		f.t.Fatalf("Approve(%s, id %q, code %x): %v", p.Scope, p.RequestID, short(p.CodeHash), err)
	}
	// Seq is the approval's own change: a reader of the log applies it
	// without reading it back, so any other position would be trusted.
	cs, err := f.s.Changes(f.ctx, a.Seq-1, 1)
	if err != nil {
		f.t.Fatalf("Changes(%d): %v", a.Seq-1, err)
	}
	if len(cs) != 1 || cs[0].Seq != a.Seq || cs[0].Kind != store.KindApproved || cs[0].Sender != a.Entry.Sender || cs[0].RequestID != a.Request.ID {
		f.t.Errorf("Approve returned Seq %d; the change there is %+v, want the KindApproved of %s", a.Seq, cs, a.Request.ID)
	}
	return a.Request, a.Entry
}

func (f *fixture) allow(scope store.Scope, sender string, actor store.Actor, now time.Time) (store.AllowEntry, bool) {
	f.t.Helper()
	res, err := f.s.Allow(f.ctx, store.AllowParams{Scope: scope, Senders: []store.AllowSender{{Sender: sender, Name: "Name of " + sender}}, Via: store.ViaManual, Actor: actor, Now: now})
	if err != nil {
		f.t.Fatalf("Allow(%s, %s): %v", scope, sender, err)
	}
	if len(res) != 1 {
		f.t.Fatalf("Allow(%s, %s) of one sender returned %d results", scope, sender, len(res))
	}
	return res[0].Entry, res[0].Changed
}

// lastSeq is the Seq of the newest change, or 0 for an empty log.
func (f *fixture) lastSeq() int64 {
	f.t.Helper()
	cs, err := f.s.RecentChanges(f.ctx, store.ChangeQuery{Limit: 1})
	if err != nil {
		f.t.Fatalf("RecentChanges(1): %v", err)
	}
	if len(cs) == 0 {
		return 0
	}
	return cs[0].Seq
}

// since returns every change after seq, paging through Changes, and checks
// that Seq strictly increases.
func (f *fixture) since(seq int64) []store.Change {
	f.t.Helper()
	var all []store.Change
	for {
		cs, err := f.s.Changes(f.ctx, seq, 50)
		if err != nil {
			f.t.Fatalf("Changes(%d, 50): %v", seq, err)
		}
		for _, c := range cs {
			if c.Seq <= seq {
				f.t.Fatalf("Changes: Seq %d after %d: not strictly increasing", c.Seq, seq)
			}
			seq = c.Seq
		}
		all = append(all, cs...)
		if len(cs) < 50 {
			return all
		}
	}
}

// checkChanges compares the changes appended after seq with want. Records of
// one kind made by one call (e.g. several KindExpired) may come in any order.
func (f *fixture) checkChanges(what string, seq int64, want ...rec) {
	f.t.Helper()
	got := recs(f.since(seq))
	if diff := cmp.Diff(sortRuns(want), sortRuns(got), cmpopts.EquateEmpty()); diff != "" {
		f.t.Errorf("%s: change records (-want +got):\n%s", what, diff)
	}
}

// checkChangesAnyOrder is checkChanges for one call whose records the
// contract lists without an order.
func (f *fixture) checkChangesAnyOrder(what string, seq int64, want ...rec) {
	f.t.Helper()
	less := func(a, b rec) bool {
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		return a.RequestID < b.RequestID
	}
	if diff := cmp.Diff(want, recs(f.since(seq)), cmpopts.EquateEmpty(), cmpopts.SortSlices(less)); diff != "" {
		f.t.Errorf("%s: change records, in any order (-want +got):\n%s", what, diff)
	}
}

// rec is the part of a Change the contract pins down.
type rec struct {
	Kind      store.ChangeKind
	Scope     store.Scope
	Sender    string
	RequestID string
	Actor     store.Actor
	At        time.Time
}

// recs projects changes onto rec. KindExpired and KindLockedOut records are
// made without a caller-named actor (ExpireRequests takes none), so their
// actor is not compared.
func recs(cs []store.Change) []rec {
	out := make([]rec, 0, len(cs))
	for _, c := range cs {
		r := rec{Kind: c.Kind, Scope: c.Scope, Sender: c.Sender, RequestID: c.RequestID, Actor: c.Actor, At: c.At}
		if c.Kind == store.KindExpired || c.Kind == store.KindLockedOut {
			r.Actor = store.Actor{}
		}
		out = append(out, r)
	}
	return out
}

// sortRuns sorts each run of consecutive records of one kind by request id
// and sender, so that order within one batch does not matter.
func sortRuns(rs []rec) []rec {
	rs = slices.Clone(rs)
	for i := 0; i < len(rs); {
		j := i + 1
		for j < len(rs) && rs[j].Kind == rs[i].Kind {
			j++
		}
		sort.SliceStable(rs[i:j], func(a, b int) bool {
			x, y := rs[i+a], rs[i+b]
			if x.RequestID != y.RequestID {
				return x.RequestID < y.RequestID
			}
			return x.Sender < y.Sender
		})
		i = j
	}
	return rs
}

func reqRec(kind store.ChangeKind, r store.Request, actor store.Actor, now time.Time) rec {
	return rec{Kind: kind, Scope: r.Scope, Sender: r.Sender, RequestID: r.ID, Actor: actor, At: now}
}

func senderRec(kind store.ChangeKind, scope store.Scope, sender string, actor store.Actor, now time.Time) rec {
	return rec{Kind: kind, Scope: scope, Sender: sender, Actor: actor, At: now}
}

func scopeRec(kind store.ChangeKind, scope store.Scope, actor store.Actor, now time.Time) rec {
	return rec{Kind: kind, Scope: scope, Actor: actor, At: now}
}

// wantErr fails unless err wraps target.
func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: error %v, want one wrapping %q", what, err, target)
	}
}

func ids(rs []store.Request) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.ID
	}
	return out
}

func short(b []byte) []byte {
	if len(b) > 4 {
		return b[:4]
	}
	return b
}

func all() store.RequestFilter { return store.RequestFilter{} }

func in(s store.Scope) store.RequestFilter {
	return store.RequestFilter(s)
}

// waitClosed reports whether ch is closed within d.
func waitClosed(ch <-chan struct{}, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ch:
		return true
	case <-timer.C:
		return false
	}
}

// join is strings.Join for error messages.
func join(ss []string) string { return strings.Join(ss, ", ") }
