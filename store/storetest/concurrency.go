package storetest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pairgate/pairgate/store"
)

// checkWinners asserts what racing creators into one scope must leave
// behind: exactly maxPending created requests (the attempts outnumber the
// cap), every one of them stored (hermes handed out codes it never saved)
// and approvable by its code hash, and nothing stored that its creator was
// told had been refused.
func checkWinners(f *fixture, scope store.Scope, maxPending int, created map[string]store.Request, now time.Time) {
	f.t.Helper()
	if len(created) > maxPending {
		f.t.Errorf("cap exceeded: %d requests created with MaxPending %d", len(created), maxPending)
	} else if len(created) != maxPending {
		f.t.Errorf("%d requests created with MaxPending %d and more senders than that; want exactly %d", len(created), maxPending, maxPending)
	}
	listed := map[string]bool{}
	for _, r := range f.list(in(scope), now) {
		listed[r.ID] = true
		if _, ok := created[r.ID]; !ok {
			f.t.Errorf("request %s is stored, but its creator was told it was refused", r.ID)
		}
	}
	wins := make([]string, 0, len(created))
	for id := range created {
		wins = append(wins, id)
	}
	slices.Sort(wins)
	for _, id := range wins {
		if !listed[id] {
			f.t.Errorf("request %s was reported created, but ListRequests does not show it (a code handed out but never saved)", id)
		}
		r := created[id]
		got, err := f.s.Approve(f.ctx, store.ApproveParams{Scope: scope, CodeHash: r.CodeHash, Actor: alice, Now: now})
		if err != nil {
			f.t.Errorf("Approve by the code of created request %s: %v", id, err)
		} else if got.Request.ID != id {
			f.t.Errorf("Approve by the code of created request %s approved %s", id, got.Request.ID)
		}
	}
	f.checkList(in(scope), now)
}

func testCapGoroutines(t *testing.T, b Backend) {
	// One store shared by all goroutines, then several stores on one
	// database (as a daemon and CLIs in one process would be).
	for _, handles := range []int{1, 4} {
		t.Run(fmt.Sprintf("Stores%d", handles), func(t *testing.T) {
			f := newFixture(t, b)
			stores := []store.Store{f.s}
			for len(stores) < handles {
				stores = append(stores, f.open())
			}
			const workers, per, maxPending = 8, 4, 3
			reqs := make([][]store.Request, workers)
			for w := range workers {
				for i := range per {
					reqs[w] = append(reqs[w], f.request(tg, fmt.Sprint(1000*(w+1)+i), at(0)))
				}
			}
			var (
				wg      sync.WaitGroup
				mu      sync.Mutex
				created = map[string]store.Request{}
			)
			start := make(chan struct{})
			for w := range workers {
				s := stores[w%len(stores)]
				wg.Go(func() {
					<-start
					for _, r := range reqs[w] {
						got, err := s.CreateRequest(f.ctx, store.CreateRequestParams{Request: r, MaxPending: maxPending, Actor: gate,
							Outbound: []store.OutboundMessage{challengeMsg(r)}})
						mu.Lock()
						switch {
						case err == nil:
							created[r.ID] = stored(r)
							if got.ID != r.ID {
								t.Errorf("CreateRequest(%s) returned request %q", r.ID, got.ID)
							}
						case errors.Is(err, store.ErrCapReached), errors.Is(err, store.ErrPending):
						default:
							t.Errorf("CreateRequest(%s) racing: %v; want success or ErrCapReached", r.ID, err)
						}
						mu.Unlock()
					}
				})
			}
			close(start)
			wg.Wait()
			checkWinners(f, tg, maxPending, created, at(minute))
			checkChallenges(f, created)
		})
	}
}

// Child processes: the suite re-executes the test binary; ChildMain, called
// first thing in the backend test's TestMain, recognises the job in the
// environment and runs it instead of the tests.
const (
	childEnv     = "PAIRGATE_STORETEST_CHILD"
	childReady   = "storetest-child: ready"
	childResult  = "storetest-child: result "
	childTimeout = 60 * time.Second
)

// childJob is what a child does: open the database, say it is ready, wait
// for the start signal (its stdin closing), then redeem a sign-in link if
// Redeem is set and create Requests in order.
type childJob struct {
	Locator    string
	MaxPending int
	Requests   []store.Request
	Redeem     *redeemJob `json:",omitempty"`
}

// childOutcome is the result of one CreateRequest or RedeemWebLink in a
// child.
type childOutcome struct {
	ID      string
	Outcome string // created, cap_reached, pending, redeemed, not_found or error
	Error   string `json:",omitempty"`
}

// ChildMain must be called first thing in the TestMain of a backend's test
// package. In a child process started by the suite it runs the child's
// workload, prints its results and exits; otherwise it returns at once.
func ChildMain(b Backend) {
	raw, ok := os.LookupEnv(childEnv)
	if !ok {
		return
	}
	os.Exit(runChild(b, raw))
}

func runChild(b Backend, raw string) int {
	var job childJob
	if err := json.Unmarshal([]byte(raw), &job); err != nil {
		fmt.Fprintf(os.Stderr, "storetest child: bad job in $%s: %v\n", childEnv, err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), childTimeout)
	defer cancel()
	s, err := b.Open(ctx, job.Locator)
	if err != nil {
		fmt.Fprintf(os.Stderr, "storetest child: Open(%q): %v\n", job.Locator, err)
		return 3
	}
	fmt.Println(childReady)
	// The start barrier: the parent closes every child's stdin at once.
	if _, err := io.Copy(io.Discard, os.Stdin); err != nil {
		fmt.Fprintf(os.Stderr, "storetest child: waiting for start: %v\n", err)
		return 4
	}
	out := make([]childOutcome, 0, len(job.Requests)+1)
	if job.Redeem != nil {
		out = append(out, job.Redeem.run(ctx, s))
	}
	for _, r := range job.Requests {
		// Each request brings its challenge: the messages must match the
		// requests created, one each, numbered without gaps.
		_, err := s.CreateRequest(ctx, store.CreateRequestParams{Request: r, MaxPending: job.MaxPending, Actor: gate,
			Outbound: []store.OutboundMessage{challengeMsg(r)}})
		o := childOutcome{ID: r.ID, Outcome: "created"}
		switch {
		case err == nil:
		case errors.Is(err, store.ErrCapReached):
			o.Outcome = "cap_reached"
		case errors.Is(err, store.ErrPending):
			o.Outcome = "pending"
		default:
			o.Outcome, o.Error = "error", err.Error()
		}
		out = append(out, o)
	}
	enc, err := json.Marshal(out)
	if err != nil {
		fmt.Fprintf(os.Stderr, "storetest child: %v\n", err)
		return 5
	}
	fmt.Println(childResult + string(enc))
	if err := s.Close(); err != nil {
		fmt.Fprintf(os.Stderr, "storetest child: Close: %v\n", err)
		return 6
	}
	return 0
}

// child is the parent's handle on one child process.
type child struct {
	job    childJob
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr bytes.Buffer
	ready  chan struct{} // closed when the child said it is ready
	done   chan struct{} // closed when its stdout is drained

	// Set by read before done is closed.
	result    []childOutcome
	gotResult bool
	parseErr  error
	other     []string
}

func startChild(ctx context.Context, job childJob) (*child, error) {
	raw, err := json.Marshal(job)
	if err != nil {
		return nil, err
	}
	// -test.run=^$ keeps a child from running the tests again should the
	// backend's TestMain not call ChildMain; the parent then reports that.
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+string(raw))
	cmd.WaitDelay = 5 * time.Second
	c := &child{job: job, cmd: cmd, ready: make(chan struct{}), done: make(chan struct{})}
	cmd.Stderr = &c.stderr
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go c.read(stdout)
	return c, nil
}

func (c *child) read(r io.Reader) {
	defer close(c.done)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	ready := false
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == childReady && !ready:
			ready = true
			close(c.ready)
		case strings.HasPrefix(line, childResult):
			c.gotResult = true
			c.parseErr = json.Unmarshal([]byte(strings.TrimPrefix(line, childResult)), &c.result)
		default:
			c.other = append(c.other, line)
		}
	}
}

func testCapProcesses(t *testing.T, b Backend) {
	trials := []struct{ children, per, maxPending int }{
		{8, 1, 3},
		{8, 2, 3},
		{8, 3, 3},
		{8, 5, 20},
		{8, 5, 20},
	}
	if testing.Short() {
		trials = trials[1:2]
	}
	for i, tr := range trials {
		name := fmt.Sprintf("Trial%d_%dx%d_max%d", i+1, tr.children, tr.per, tr.maxPending)
		t.Run(name, func(t *testing.T) { capTrial(t, b, tr.children, tr.per, tr.maxPending) })
	}
}

// capTrial starts children processes that each create per requests for
// distinct senders in one scope, all released at once, and checks the cap
// and that every created request was saved.
func capTrial(t *testing.T, b Backend, children, per, maxPending int) {
	f := newFixture(t, b)
	ctx, cancel := context.WithTimeout(f.ctx, childTimeout)
	defer cancel()
	begin := time.Now()

	byID := map[string]store.Request{}
	var procs []*child
	for c := range children {
		job := childJob{Locator: f.locator, MaxPending: maxPending}
		for i := range per {
			r := f.request(tg, fmt.Sprint(1000*(c+1)+i), at(time.Duration(c*per+i)*ms))
			job.Requests = append(job.Requests, r)
			byID[r.ID] = r
		}
		p, err := startChild(ctx, job)
		if err != nil {
			t.Errorf("starting child %d: %v", c, err)
			break
		}
		procs = append(procs, p)
	}
	for _, p := range procs {
		select {
		case <-p.ready:
		case <-p.done: // exited early; reported below
		case <-ctx.Done():
		}
	}
	started := time.Since(begin)
	for _, p := range procs {
		_ = p.stdin.Close()
	}

	created := map[string]store.Request{}
	for c, p := range procs {
		<-p.done
		err := p.cmd.Wait()
		switch {
		case err != nil:
			t.Errorf("child %d: %v (ctx: %v)\nstdout:\n%s\nstderr:\n%s", c, err, ctx.Err(), strings.Join(p.other, "\n"), p.stderr.String())
			continue
		case !p.gotResult:
			t.Errorf("child %d printed no result: does the backend test's TestMain call storetest.ChildMain first?\nstdout:\n%s\nstderr:\n%s", c, strings.Join(p.other, "\n"), p.stderr.String())
			continue
		case p.parseErr != nil:
			t.Errorf("child %d: bad result: %v", c, p.parseErr)
			continue
		case len(p.result) != len(p.job.Requests):
			t.Errorf("child %d: %d results for %d requests", c, len(p.result), len(p.job.Requests))
		}
		for _, o := range p.result {
			switch o.Outcome {
			case "created":
				created[o.ID] = stored(byID[o.ID])
			case "cap_reached", "pending":
			default:
				t.Errorf("child %d: CreateRequest(%s): %s; want success or ErrCapReached", c, o.ID, o.Error)
			}
		}
	}
	if t.Failed() && len(procs) < children {
		return
	}
	checkWinners(f, tg, maxPending, created, at(minute))
	checkChallenges(f, created)
	t.Logf("%d children ready after %v, done after %v", len(procs), started.Round(time.Millisecond), time.Since(begin).Round(time.Millisecond))
}

// checkChallenges checks that the outbound log holds one challenge per
// request created, and nothing else, numbered from 1 without gaps, after
// a race of writers.
func checkChallenges(f *fixture, created map[string]store.Request) {
	f.t.Helper()
	refs := map[string]bool{}
	for i, m := range f.outbound(0) {
		if m.Seq != int64(i+1) {
			f.t.Errorf("outbound message %d has seq %d: numbers across writers must have no gaps", i+1, m.Seq)
		}
		if _, ok := created[m.Ref]; !ok || refs[m.Ref] {
			f.t.Errorf("outbound message %d is for %s, which was not created or has a message already", m.Seq, m.Ref)
		}
		refs[m.Ref] = true
	}
	if len(refs) != len(created) {
		f.t.Errorf("%d challenges recorded for %d requests created", len(refs), len(created))
	}
}

// testFirstReadsAtOnce: many listings at once on a fresh store, more than
// its pool has connections, each reading in a transaction statements not
// seen before, all finish. (A read transaction that waited for a second
// connection while holding its own, to prepare a statement, deadlocked
// once every connection was held so.)
func testFirstReadsAtOnce(t *testing.T, b Backend) {
	f := newFixture(t, b)
	f.mustCreate(tg, "1", at(0))
	ctx, cancel := context.WithTimeout(f.ctx, 20*time.Second)
	defer cancel()
	start := make(chan struct{})
	errs := make(chan error, 64)
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Go(func() {
			<-start
			var err error
			switch i % 4 {
			case 0:
				_, err = f.s.Changes(ctx, 0, 10)
			case 1:
				_, err = f.s.ListRequests(ctx, store.RequestFilter{}, at(minute))
			case 2:
				_, err = f.s.ListAllowed(ctx, store.RequestFilter{}, true)
			case 3:
				_, err = f.s.Lockouts(ctx, store.RequestFilter{}, at(minute))
			}
			errs <- err
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("64 first reads at once: %v (a read waited 20 s: deadlocked?)", err)
		}
	}
}
