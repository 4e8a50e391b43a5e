// Package server is pairgate's HTTP API: the gate for gateways that cannot
// embed Go (POST /v1/admit), the operator's pairing actions, the audit log,
// health checks and Prometheus metrics. Every rule lives in package pairing;
// this package only authenticates, decodes, calls it and encodes.
package server

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pairgate/pairgate/api"
	"github.com/pairgate/pairgate/apitoken"
	"github.com/pairgate/pairgate/command"
	"github.com/pairgate/pairgate/device"
	"github.com/pairgate/pairgate/outbound"
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
	// Tokens authenticates the bearer token of every /v1 call: the admin
	// token and the tokens in the store. The caller keeps it current
	// (Authenticator.Run).
	Tokens *apitoken.Authenticator
	Logger *slog.Logger     // nil means discard
	Now    func() time.Time // nil means time.Now
	// Registry receives the metrics; nil means a new one. Metrics() serves
	// it at /metrics.
	Registry *prometheus.Registry
	// Web serves every path outside /v1/ that is not an API route: the
	// web page (package web). Nil answers them 404.
	Web http.Handler
	// Outbound reads the outbound messages GET /v1/outbound answers
	// with; nil means one over Store, Pairing and Devices.
	Outbound *outbound.Reader
	// Commands runs POST /v1/command; nil means one over Pairing,
	// Devices and Store.
	Commands *command.Service
	// Drained, when set, ends the long-lived requests once it is done, as
	// Drain does (the daemon shares one with the web page's stream).
	Drained context.Context
}

// Server is the HTTP API. Create it with New, start its metrics follower
// with Run, and serve Handler.
type Server struct {
	pairing *pairing.Service
	devices *device.Service
	st      store.Store
	// outboundReader answers GET /v1/outbound.
	outboundReader *outbound.Reader
	commands       *command.Service
	// drained is done once Drain was called.
	drained context.Context
	drain   context.CancelFunc
	log     *slog.Logger
	now     func() time.Time
	tokens  *apitoken.Authenticator
	metrics *metrics
	routes  map[string]route
	web     http.Handler
	handler http.Handler
}

// New makes a Server.
func New(opts Options) (*Server, error) {
	if opts.Pairing == nil || opts.Store == nil || opts.Tokens == nil {
		return nil, errors.New("server: Pairing, Store and Tokens are required")
	}
	s := &Server{pairing: opts.Pairing, devices: opts.Devices, st: opts.Store, tokens: opts.Tokens, log: opts.Logger, now: opts.Now, web: opts.Web}
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
	s.outboundReader = opts.Outbound
	if s.outboundReader == nil {
		var err error
		s.outboundReader, err = outbound.New(outbound.Options{Store: opts.Store, Pairing: opts.Pairing, Devices: opts.Devices,
			Now: s.now, Logger: s.log})
		if err != nil {
			return nil, err
		}
	}
	s.drained, s.drain = context.WithCancel(cmp.Or(opts.Drained, context.Background()))
	s.commands = opts.Commands
	if s.commands == nil {
		var err error
		s.commands, err = command.New(command.Options{Pairing: opts.Pairing, Devices: opts.Devices, Store: opts.Store, Now: s.now, Logger: s.log})
		if err != nil {
			return nil, err
		}
	}
	s.metrics = newMetrics(reg, opts.Store, s.now)
	s.routes = s.routeTable(reg)
	s.handler = s.mux()
	return s, nil
}

// Drain ends the requests that last as long as their client stays (the
// GET /v1/outbound long poll answers what it has, a /v1/events stream
// ends), so that a shutdown's drain is not held up by them; other requests
// are not touched. The daemon calls it as http.Server.Shutdown begins
// (RegisterOnShutdown): Shutdown waits for requests but never cancels them.
func (s *Server) Drain() { s.drain() }

// untilDrain returns r with a context that also ends at Drain.
func (s *Server) untilDrain(r *http.Request) (*http.Request, context.CancelFunc) {
	ctx, cancel := context.WithCancel(r.Context())
	stop := context.AfterFunc(s.drained, cancel)
	return r.WithContext(ctx), func() { stop(); cancel() }
}

// Handler returns the HTTP handler for every route.
func (s *Server) Handler() http.Handler { return s.handler }

// Run counts the changes made anywhere (the CLI included) in the metrics,
// following the change log from its head until ctx ends; it returns nil
// then. It runs store.Follow, so a failed read is retried on a timer and
// never waits for an unrelated later change.
func (s *Server) Run(ctx context.Context) error {
	// Counters start from now: find the newest change, waiting for a
	// store that is down rather than replaying its whole history.
	follow := store.FollowOptions{OnError: func(err error) { s.log.Warn("server: following the change log failed; will retry", "err", err) }}
	seq, err := store.Head(ctx, s.st, follow)
	if err != nil {
		return nil // ctx ended
	}
	follow.After = seq
	// Pruned past the position (the daemon was behind by more than the
	// retention): the counters go on from the head (Follow's default).
	store.Follow(ctx, s.st, follow, func(changes []store.Change) error {
		for _, c := range changes {
			s.metrics.change(c)
		}
		return nil
	})
	return nil
}

// CountDecision counts a decision of the gate answered on another route
// than POST /v1/admit (the NATS service), as that handler counts its own.
func (s *Server) CountDecision(channel string, d api.Decision) { s.metrics.decision(channel, d) }

// CountGC counts a garbage collection run in the metrics.
func (s *Server) CountGC(r store.GCResult, err error) { s.metrics.gc(r, err) }

// Ready reports whether the store answers.
func (s *Server) Ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	return s.st.Ping(ctx)
}
