package device

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pairgate/pairgate/store"
	"github.com/pairgate/pairgate/store/sqlite"
)

// countingStore counts the reads sessions make and, while failing is set,
// fails them and every read of the change log.
type countingStore struct {
	store.Store
	failing    atomic.Bool
	failed     atomic.Int64
	getDevice  atomic.Int64
	getRequest atomic.Int64
}

func (s *countingStore) refuse() error {
	s.failed.Add(1)
	return fmt.Errorf("%w: injected read failure", store.ErrUnavailable)
}

func (s *countingStore) Changes(ctx context.Context, after int64, limit int) ([]store.Change, error) {
	if s.failing.Load() {
		return nil, s.refuse()
	}
	return s.Store.Changes(ctx, after, limit)
}

func (s *countingStore) GetDevice(ctx context.Context, id string) (store.Device, error) {
	s.getDevice.Add(1)
	if s.failing.Load() {
		return store.Device{}, s.refuse()
	}
	return s.Store.GetDevice(ctx, id)
}

func (s *countingStore) GetDeviceRequest(ctx context.Context, id string) (store.DeviceRequest, error) {
	s.getRequest.Add(1)
	if s.failing.Load() {
		return store.DeviceRequest{}, s.refuse()
	}
	return s.Store.GetDeviceRequest(ctx, id)
}

// pairAndAuth pairs a device through e and opens an authenticated session.
func pairAndAuth(t *testing.T, e *pairEnv, name string) (*client, string) {
	t.Helper()
	cl := e.dial(deviceKey(name))
	cl.pair(e.setupToken(0), e.now().UnixMilli())
	if m := cl.recv(); m["type"] != "pending" {
		t.Fatalf("pair: %v", m)
	}
	if _, err := e.svc.Decide(context.Background(), "latest", true, operator); err != nil {
		t.Fatal(err)
	}
	a := cl.recv()
	if a["type"] != "approved" {
		t.Fatalf("approve: %v", a)
	}
	s := e.dial(deviceKey(name))
	s.auth(a["device_token"].(string), e.now().UnixMilli())
	if m := s.recv(); m["type"] != "authenticated" {
		t.Fatalf("auth: %v", m)
	}
	return s, cl.id
}

// A revocation made by another process while this one cannot read the
// store still ends the open session, about a second after reads work again,
// with no later change to wake anyone.
func TestSessionSeesRevocationAfterFailedReads(t *testing.T) {
	var cs *countingStore
	e := newPairEnv(t, func(o *Options) { cs = &countingStore{Store: o.Store}; o.Store = cs })
	s, id := pairAndAuth(t, e, "blink")

	other, err := sqlite.Open(context.Background(), sqlite.Options{Path: e.path})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	cs.failing.Store(true)
	if _, err := other.RevokeDevice(context.Background(), id, operator, e.now()); err != nil {
		t.Fatal(err)
	}
	// The other process's commit is noticed by the poller (100 ms) while
	// every read fails.
	time.Sleep(400 * time.Millisecond)
	if cs.failed.Load() == 0 {
		t.Fatal("nothing tried to read while reads failed: the test proves nothing")
	}
	cs.failing.Store(false)
	start := time.Now()
	s.expectError(CodeRevoked)
	if took := time.Since(start); took > 1500*time.Millisecond {
		t.Errorf("the session ended %v after reads worked again; want about a second at most", took)
	}
}

// Open sessions read the store for changes that concern them, not for every
// change anywhere.
func TestSessionsIgnoreUnrelatedChanges(t *testing.T) {
	var cs *countingStore
	e := newPairEnv(t, func(o *Options) { cs = &countingStore{Store: o.Store}; o.Store = cs })
	var sessions []*client
	for i := range 5 {
		s, _ := pairAndAuth(t, e, fmt.Sprint("quiet", i))
		sessions = append(sessions, s)
	}
	waiting := e.dial(deviceKey("waiting"))
	waiting.pair(e.setupToken(0), e.now().UnixMilli())
	if m := waiting.recv(); m["type"] != "pending" {
		t.Fatalf("pair: %v", m)
	}
	time.Sleep(100 * time.Millisecond) // let every session reach its wait
	devReads, reqReads := cs.getDevice.Load(), cs.getRequest.Load()
	for range 50 {
		if _, err := e.svc.IssueSetupCode(context.Background(), SetupParams{}, operator); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(300 * time.Millisecond) // the follower has seen them all
	if d, r := cs.getDevice.Load()-devReads, cs.getRequest.Load()-reqReads; d != 0 || r != 0 {
		t.Errorf("50 unrelated changes made 6 open sessions read the store %d+%d times; want 0", d, r)
	}
	// A change that concerns one session still reaches it at once.
	if _, err := e.svc.Revoke(context.Background(), sessions[2].id, operator); err != nil {
		t.Fatal(err)
	}
	sessions[2].expectError(CodeRevoked)
}
