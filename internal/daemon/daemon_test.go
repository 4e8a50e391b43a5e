package daemon_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pairgate/pairgate/api"
	"github.com/pairgate/pairgate/apitoken"
	"github.com/pairgate/pairgate/command"
	"github.com/pairgate/pairgate/config"
	"github.com/pairgate/pairgate/internal/daemon"
	"github.com/pairgate/pairgate/secret"
	"github.com/pairgate/pairgate/store"
	"github.com/pairgate/pairgate/store/sqlite"
)

// watched is the daemon's store, seen from the test: it counts reads of the
// change log (every follower makes them) and can hold GET
// /v1/pairing/requests in flight.
type watched struct {
	store.Store
	changes atomic.Int64
	// hold, when set, makes ListRequests tell entered and wait for it to
	// be closed.
	hold    atomic.Pointer[chan struct{}]
	entered chan struct{}
}

func (w *watched) Changes(ctx context.Context, after int64, limit int) ([]store.Change, error) {
	w.changes.Add(1)
	return w.Store.Changes(ctx, after, limit)
}

func (w *watched) ListRequests(ctx context.Context, f store.RequestFilter, now time.Time) ([]store.Request, error) {
	if h := w.hold.Load(); h != nil {
		w.entered <- struct{}{}
		<-*h
	}
	return w.Store.ListRequests(ctx, f, now)
}

// env is a daemon running over a SQLite store, and a second connection to
// the same database, as the CLI would have.
type env struct {
	t     *testing.T
	st    *watched
	other *sqlite.Store
	admin string
	url   string
	ran   chan error // what Run returned
}

// options are the daemon's options over a fresh home; change them before
// start.
func options(t *testing.T) (daemon.Options, *watched, *sqlite.Store) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "pairgate.db")
	sq, err := sqlite.Open(t.Context(), sqlite.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sq.Close() })
	other, err := sqlite.Open(t.Context(), sqlite.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	sec, err := secret.FromBytes(bytes.Repeat([]byte{5}, secret.Size))
	if err != nil {
		t.Fatal(err)
	}
	w := &watched{Store: sq, entered: make(chan struct{})}
	return daemon.Options{Config: config.Default(), Store: w, Secret: sec, AdminTokenPath: filepath.Join(dir, "admin.token")}, w, other
}

// start builds the daemon and runs it on ln (a new loopback listener when
// nil) until ctx ends.
func start(ctx context.Context, t *testing.T, o daemon.Options, w *watched, other *sqlite.Store, ln net.Listener) *env {
	t.Helper()
	d, err := daemon.New(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := apitoken.LoadOrCreateAdmin(o.AdminTokenPath)
	if err != nil {
		t.Fatal(err)
	}
	if ln == nil {
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
	e := &env{t: t, st: w, other: other, admin: admin, url: "http://" + ln.Addr().String(), ran: make(chan error, 1)}
	go func() { e.ran <- d.Run(ctx, ln) }()
	t.Cleanup(func() {
		if h := w.hold.Swap(nil); h != nil {
			close(*h)
		}
	})
	return e
}

// get sends GET path with the admin token on a connection of its own.
func (e *env) get(path string) (int, string, error) {
	req, err := http.NewRequest(http.MethodGet, e.url+path, nil)
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Authorization", "Bearer "+e.admin)
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// change makes a change from the other connection, as the CLI would.
func (e *env) change() {
	e.t.Helper()
	if _, err := apitoken.New(apitoken.Options{Store: e.other}).Create(context.Background(), store.ScopeGateway, "", store.Actor{Name: "cli:test"}); err != nil {
		e.t.Fatal(err)
	}
}

// wantFollowing makes a change and waits for the daemon's followers to read
// it.
func (e *env) wantFollowing(when string) {
	e.t.Helper()
	before := e.st.changes.Load()
	e.change()
	for start := time.Now(); e.st.changes.Load() == before; time.Sleep(5 * time.Millisecond) {
		if time.Since(start) > 3*time.Second {
			e.t.Fatalf("%s: no follower read the change log within 3 s", when)
		}
	}
}

// wantStopped checks that nothing follows the change log any more: a
// change made now is never read (the store polls every 100 ms).
func (e *env) wantStopped(when string) {
	e.t.Helper()
	before := e.st.changes.Load()
	e.change()
	time.Sleep(400 * time.Millisecond)
	if n := e.st.changes.Load() - before; n != 0 {
		e.t.Errorf("%s: the change log was read %d times after Run returned: a follower outlived the daemon", when, n)
	}
}

// wantRun waits for Run to return.
func (e *env) wantRun(within time.Duration) error {
	e.t.Helper()
	select {
	case err := <-e.ran:
		return err
	case <-time.After(within):
		e.t.Fatalf("Run did not return within %v", within)
		return nil
	}
}

// SIGTERM (the end of Run's context) stops accepting at once, finishes the
// request in flight while the followers still run, then stops the
// followers and returns nil, so the store can be closed.
func TestStopDrainsThenStopsFollowers(t *testing.T) {
	o, w, other := options(t)
	ctx, sigterm := context.WithCancel(t.Context())
	e := start(ctx, t, o, w, other, nil)
	e.wantFollowing("running")

	hold := make(chan struct{})
	w.hold.Store(&hold)
	type answer struct {
		status int
		body   string
		err    error
	}
	inFlight := make(chan answer, 1)
	go func() {
		status, body, err := e.get("/v1/pairing/requests")
		inFlight <- answer{status, body, err}
	}()
	<-w.entered
	w.hold.Store(nil)
	sigterm()

	for start := time.Now(); ; time.Sleep(10 * time.Millisecond) {
		if _, _, err := e.get("/healthz"); err != nil {
			break // no longer accepting
		}
		if time.Since(start) > 2*time.Second {
			t.Fatal("the daemon still accepts connections 2 s after SIGTERM")
		}
	}
	e.wantFollowing("draining")
	select {
	case err := <-e.ran:
		t.Fatalf("Run returned %v with a request in flight", err)
	default:
	}

	close(hold)
	a := <-inFlight
	if a.err != nil || a.status != http.StatusOK || !strings.Contains(a.body, `"pending":[]`) {
		t.Errorf("the request in flight at SIGTERM: %d %q %v, want 200 and its answer", a.status, a.body, a.err)
	}
	if err := e.wantRun(5 * time.Second); err != nil {
		t.Errorf("Run after SIGTERM: %v, want nil", err)
	}
	e.wantStopped("after SIGTERM")
	if err := w.Close(); err != nil {
		t.Errorf("closing the store after Run: %v", err)
	}
}

// brokenListener fails Accept once broken, as a listener whose socket went
// away does.
type brokenListener struct {
	net.Listener
	broken atomic.Bool
}

var errBroken = errors.New("injected listener failure")

func (l *brokenListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if l.broken.Load() {
		if c != nil {
			c.Close()
		}
		return nil, errBroken
	}
	return c, err
}

// A listener that fails stops the whole daemon: Run returns the failure and
// every follower has stopped.
func TestListenerFailureStopsEverything(t *testing.T) {
	o, w, other := options(t)
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &brokenListener{Listener: inner}
	e := start(t.Context(), t, o, w, other, ln)
	if status, _, err := e.get("/healthz"); err != nil || status != http.StatusOK {
		t.Fatalf("healthz before the failure: %d %v", status, err)
	}
	e.wantFollowing("running")

	ln.broken.Store(true)
	e.get("/healthz") // wakes Accept, which now fails
	err = e.wantRun(5 * time.Second)
	if !errors.Is(err, errBroken) || !strings.HasPrefix(err.Error(), "serve: ") {
		t.Errorf("Run after the listener failed: %v, want serve: %v", err, errBroken)
	}
	e.wantStopped("after the listener failed")
}

// A job that fails stops the daemon the same way, and the other jobs are
// stopped with the followers.
func TestFailingJobStopsEverything(t *testing.T) {
	o, w, other := options(t)
	fail := make(chan struct{})
	var otherStopped atomic.Bool
	o.Jobs = []func(context.Context) error{
		func(ctx context.Context) error {
			select {
			case <-fail:
				return errors.New("garbage collection failed")
			case <-ctx.Done():
				return nil
			}
		},
		func(ctx context.Context) error {
			<-ctx.Done()
			otherStopped.Store(true)
			return nil
		},
	}
	e := start(t.Context(), t, o, w, other, nil)
	e.wantFollowing("running")

	close(fail)
	err := e.wantRun(5 * time.Second)
	if err == nil || err.Error() != "garbage collection failed" {
		t.Errorf("Run after a job failed: %v, want the job's error", err)
	}
	if !otherStopped.Load() {
		t.Error("Run returned while another job was still running")
	}
	if _, _, err := e.get("/healthz"); err == nil {
		t.Error("the HTTP API still answers after Run returned")
	}
	e.wantStopped("after a job failed")
}

// A reload puts a new policy into effect at once; one that fails to load
// leaves the running configuration in place.
func TestReload(t *testing.T) {
	o, w, other := options(t)
	reload := make(chan os.Signal, 1)
	var next atomic.Pointer[config.Config]
	o.Reload = reload
	o.LoadConfig = func() (*config.Config, string, error) {
		if c := next.Load(); c != nil {
			return c, "pairgate.yaml", nil
		}
		return nil, "pairgate.yaml", fmt.Errorf("pairgate.yaml:1:1: broken: %w", config.ErrInvalid)
	}
	e := start(t.Context(), t, o, w, other, nil)
	gw, err := apitoken.New(apitoken.Options{Store: other}).Create(t.Context(), store.ScopeGateway, "", store.Actor{Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	admit := func() string {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, e.url+"/v1/admit", strings.NewReader(`{"channel":"telegram","sender":"1"}`))
		req.Header.Set("Authorization", "Bearer "+gw.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if got := admit(); !strings.Contains(got, `"reason":"challenged"`) {
		t.Fatalf("admit before the reload: %s", got)
	}

	reload <- syscall.SIGHUP // a file that does not load
	disabled := *config.Default()
	disabled.Pairing.Channels = map[string]config.Channel{"telegram": {Policy: config.PolicyDisabled}}
	next.Store(&disabled)
	reload <- syscall.SIGHUP
	for start := time.Now(); !strings.Contains(admit(), `"reason":"disabled"`); time.Sleep(10 * time.Millisecond) {
		if time.Since(start) > 2*time.Second {
			t.Fatal("the reloaded policy is not in effect 2 s after SIGHUP")
		}
	}

	// Owners take effect on a reload too: the owner check of a command
	// reads the configuration in effect.
	lastReply := func() string {
		t.Helper()
		post := func(method, path, body string, out any) {
			req, _ := http.NewRequest(method, e.url+path, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+gw.Token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
				t.Fatal(err)
			}
		}
		var res api.CommandResult
		post(http.MethodPost, "/v1/command", `{"channel":"telegram","sender":"42","text":"/pending"}`, &res)
		var b api.OutboundBatch
		post(http.MethodGet, "/v1/outbound", "", &b)
		if len(b.Messages) == 0 {
			t.Fatalf("/pending was not answered: %+v", res)
		}
		return b.Messages[len(b.Messages)-1].Text
	}
	if got := lastReply(); got != command.Refusal {
		t.Fatalf("/pending from 42 before 42 is an owner: %q", got)
	}
	owned := disabled
	owned.Owner.Senders = map[string][]string{"telegram": {"42"}}
	next.Store(&owned)
	reload <- syscall.SIGHUP
	for start := time.Now(); lastReply() == command.Refusal; time.Sleep(10 * time.Millisecond) {
		if time.Since(start) > 2*time.Second {
			t.Fatal("the reloaded owner is not in effect 2 s after SIGHUP")
		}
	}
}
