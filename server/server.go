// Package server is pairgate's HTTP API: the gate for gateways that cannot
// embed Go (POST /v1/admit), the operator's pairing actions, the audit log,
// health checks and Prometheus metrics. Every rule lives in package pairing;
// this package only authenticates, decodes, calls it and encodes.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pairgate/pairgate/device"
	"github.com/pairgate/pairgate/pairing"
	"github.com/pairgate/pairgate/store"
)

// MaxBodyBytes bounds every request body.
const MaxBodyBytes = 64 << 10

// Options configure a Server.
type Options struct {
	Pairing *pairing.Service
	// Devices serves device pairing (/pair and /v1/devices…); nil leaves
	// those routes answering 503.
	Devices *device.Service
	Store   store.Store
	// AdminToken is the token in $PAIRGATE_HOME/admin.token; it may call
	// every API. Gateway and further admin tokens live in the store.
	AdminToken string
	Logger     *slog.Logger     // nil means discard
	Now        func() time.Time // nil means time.Now
	// Registry receives the metrics; nil means a new one. Metrics() serves
	// it at /metrics.
	Registry *prometheus.Registry
}

// Server is the HTTP API. Create it with New, start its followers with Run,
// and serve Handler.
type Server struct {
	pairing *pairing.Service
	devices *device.Service
	st      store.Store
	log     *slog.Logger
	now     func() time.Time
	tokens  *tokenSet
	metrics *metrics
	routes  map[string]route
	handler http.Handler
}

// New makes a Server. It loads the API tokens so the first request is
// answered correctly.
func New(ctx context.Context, opts Options) (*Server, error) {
	if opts.Pairing == nil || opts.Store == nil {
		return nil, errors.New("server: Pairing and Store are required")
	}
	if len(opts.AdminToken) < 32 {
		return nil, errors.New("server: the admin token is missing or too short")
	}
	s := &Server{pairing: opts.Pairing, devices: opts.Devices, st: opts.Store, log: opts.Logger, now: opts.Now}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	reg := opts.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	s.metrics = newMetrics(reg, opts.Store, s.now)
	s.tokens = newTokenSet(opts.AdminToken, opts.Store, s.now)
	if err := s.tokens.reload(ctx); err != nil {
		return nil, err
	}
	s.routes = s.routeTable(reg)
	s.handler = s.mux()
	return s, nil
}

// Handler returns the HTTP handler for every route.
func (s *Server) Handler() http.Handler { return s.handler }

// Run follows the change log until ctx ends: the gate's allowlist view,
// device sessions waiting on a decision or a revocation, API tokens minted
// or revoked with the CLI, and the metrics that count changes made anywhere
// (CLI included). Every follower runs store.Follow, so a failed read is
// retried on a timer and never waits for an unrelated later change.
func (s *Server) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { s.pairing.Run(ctx) })
	if s.devices != nil {
		wg.Go(func() { s.devices.Run(ctx) })
	}
	defer wg.Wait()
	// Counters start from now: find the newest change, waiting for a
	// store that is down rather than replaying its whole history.
	follow := store.FollowOptions{OnError: func(err error) { s.log.Warn("server: following the change log failed; will retry", "err", err) }}
	seq, err := store.Head(ctx, s.st, follow)
	if err != nil {
		return nil // ctx ended
	}
	// Tokens minted or revoked between New and now are before seq: load
	// them again so the follower misses nothing.
	s.reloadTokens(ctx)
	reload, counted := false, seq
	follow.After = seq
	// Pruned past (the daemon was behind by more than the retention): the
	// token list is read again; the counters go on from the head.
	follow.OnCompacted = func(ctx context.Context) (int64, error) {
		head, err := store.Head(ctx, s.st, store.FollowOptions{OnError: follow.OnError})
		if err == nil {
			err = s.tokens.reload(ctx)
		}
		return head, err
	}
	store.Follow(ctx, s.st, follow, func(changes []store.Change) error {
		for _, c := range changes {
			// A batch whose token reload failed comes again: count
			// each change once.
			if c.Seq > counted {
				s.metrics.change(c)
				counted = c.Seq
			}
			if c.Kind == store.KindTokenCreated || c.Kind == store.KindTokenRevoked {
				reload = true
			}
		}
		if !reload {
			return nil
		}
		if err := s.tokens.reload(ctx); err != nil {
			return fmt.Errorf("reload API tokens: %w", err)
		}
		reload = false
		return nil
	})
	return nil
}

// reloadTokens retries until the token set is current or ctx ends; until
// then the previous set stays in force.
func (s *Server) reloadTokens(ctx context.Context) {
	for {
		err := s.tokens.reload(ctx)
		if err == nil || ctx.Err() != nil {
			return
		}
		s.log.Warn("server: reloading API tokens failed; retrying", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// Ready reports whether the store answers.
func (s *Server) Ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	return s.st.Ping(ctx)
}
