package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pairgate/pairgate/api"
	"github.com/pairgate/pairgate/client"
)

// generator picks the sender of each request.
type generator struct {
	channel, account string
	allowed          uint64
	unknownRatio     float64
	unknownBase      uint64
	unknownNext      atomic.Uint64
}

func newGenerator(cfg config, now time.Time) *generator {
	return &generator{channel: cfg.channel, account: cfg.account, allowed: cfg.allowed,
		unknownRatio: cfg.unknownRatio, unknownBase: unknownBase(now)}
}

// next returns a request from a uniformly chosen allowed sender or, with
// probability unknownRatio, from a sender never used before.
func (g *generator) next(r *rand.Rand) (req api.AdmitRequest, unknown bool) {
	if g.allowed == 0 || r.Float64() < g.unknownRatio {
		return g.unknown(), true
	}
	return g.request(1 + r.Uint64N(g.allowed)), false
}

func (g *generator) unknown() api.AdmitRequest {
	return g.request(g.unknownBase + g.unknownNext.Add(1))
}

func (g *generator) request(i uint64) api.AdmitRequest {
	return api.AdmitRequest{Channel: g.channel, Account: g.account, Sender: senderID(g.channel, i)}
}

// seed puts senders 1..N on the allowlist with c workers, stopping at the
// first error.
func seed(ctx context.Context, admin *client.Client, cfg config, stderr io.Writer) error {
	start := time.Now()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next, done, added atomic.Uint64
	var wg sync.WaitGroup
	for range min(uint64(cfg.conns), cfg.allowed) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := next.Add(1)
				if i > cfg.allowed {
					return
				}
				rctx, rcancel := context.WithTimeout(ctx, cfg.timeout)
				res, err := admin.Allow(rctx, cfg.channel, cfg.account, senderID(cfg.channel, i))
				rcancel()
				if err != nil {
					cancel(fmt.Errorf("sender %s: %w", senderID(cfg.channel, i), err))
					return
				}
				for _, r := range res {
					if r.Changed {
						added.Add(1)
					}
				}
				done.Add(1)
			}
		})
	}
	// A large -allowed takes a while: say how far it got.
	stop := make(chan struct{})
	go func() {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				fmt.Fprintf(stderr, "pairgate-load: seeding: %d of %d\n", done.Load(), cfg.allowed)
			}
		}
	}()
	wg.Wait()
	close(stop)
	if err := context.Cause(ctx); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "pairgate-load: seeded senders 1..%d on %s/%s (%d new) in %s\n",
		cfg.allowed, cfg.channel, accountName(cfg.account), added.Load(), time.Since(start).Round(time.Millisecond))
	return nil
}

// preflight sends one request before the run, so a wrong URL or token
// stops the program with one clear message instead of a run of errors, and
// warns when the allowed senders are not allowed.
func preflight(ctx context.Context, gw *client.Client, cfg config, g *generator, stderr io.Writer) error {
	req := g.request(1)
	if cfg.allowed == 0 {
		req = g.unknown()
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	d, err := gw.Admit(ctx, req)
	switch {
	case client.IsUnauthorized(err):
		return fmt.Errorf("%w (check -token, -token-file or $PAIRGATE_TOKEN)", err)
	case err != nil:
		return err
	case cfg.allowed > 0 && d.Verdict != api.Admit:
		fmt.Fprintf(stderr, "pairgate-load: warning: sender %s got %s (%s), not admit: senders 1..%d are not all on the allowlist of %s/%s; add them with -seed\n",
			req.Sender, d.Verdict, d.Reason, cfg.allowed, cfg.channel, accountName(cfg.account))
	}
	return nil
}

// load runs the workers until the duration or the count is reached, or ctx
// ends.
func load(ctx context.Context, gw *client.Client, cfg config, g *generator) *result {
	runCtx, cancel := context.WithTimeout(ctx, cfg.duration)
	defer cancel()
	st := newStats()
	var issued atomic.Int64
	rngSeed := uint64(time.Now().UnixNano())
	start := time.Now()
	var wg sync.WaitGroup
	for w := range cfg.conns {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(rngSeed, uint64(w)))
			for runCtx.Err() == nil {
				if cfg.requests > 0 && issued.Add(1) > cfg.requests {
					return
				}
				req, unknown := g.next(r)
				// A request in flight when the run ends may finish, within
				// its own timeout: cutting it off would count as an error.
				rctx, rcancel := context.WithTimeout(context.WithoutCancel(runCtx), cfg.timeout)
				t := time.Now()
				d, err := gw.Admit(rctx, req)
				lat := time.Since(t)
				rcancel()
				st.record(lat, unknown, d, err)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	stopped := "duration"
	switch {
	case ctx.Err() != nil:
		stopped = "interrupted"
	case cfg.requests > 0 && issued.Load() >= cfg.requests:
		stopped = "count"
	}
	return st.result(cfg, elapsed, stopped)
}

// stats collects what the workers saw. One mutex is plenty: it is held for
// a few map and array updates per request, tens of thousands of times a
// second at most.
type stats struct {
	mu       sync.Mutex
	hist     histogram
	requests int64
	ok       int64
	unknown  int64
	verdicts map[api.Verdict]int64
	reasons  map[api.Reason]int64
	errs     map[string]*errStat
}

type errStat struct {
	n      int64
	sample string // the first error of the kind, for a clue
}

func newStats() *stats {
	return &stats{verdicts: map[api.Verdict]int64{}, reasons: map[api.Reason]int64{}, errs: map[string]*errStat{}}
}

// record counts one request. Its latency counts whatever the outcome: a
// histogram of successes only would hide timeouts.
func (s *stats) record(lat time.Duration, unknown bool, d api.Decision, err error) {
	var kind string
	if err != nil {
		kind = errorKind(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hist.record(lat)
	s.requests++
	if unknown {
		s.unknown++
	}
	if err != nil {
		e := s.errs[kind]
		if e == nil {
			e = &errStat{sample: err.Error()}
			s.errs[kind] = e
		}
		e.n++
		return
	}
	s.ok++
	s.verdicts[d.Verdict]++
	s.reasons[d.Reason]++
}

// errorKind sorts an error into a few kinds: http_<status> for an answer
// outside 2xx, then what went wrong on the way.
func errorKind(err error) string {
	if e, ok := errors.AsType[*client.APIError](err); ok {
		return "http_" + strconv.Itoa(e.Status)
	}
	if ne, ok := errors.AsType[net.Error](err); (ok && ne.Timeout()) || errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	switch {
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return "no_local_port"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "reset"
	}
	if _, ok := errors.AsType[*url.Error](err); ok {
		return "transport"
	}
	return "bad_response" // a 2xx the client could not use
}
