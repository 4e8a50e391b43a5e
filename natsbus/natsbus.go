// Package natsbus puts the gate on a NATS bus: a NATS micro service named
// pairgate whose admit endpoint (subject pairgate.admit) takes the body of
// POST /v1/admit and answers the same decision, for gateways that already
// speak NATS (nexo) and would rather not hold an HTTP token.
//
// The service is an addition to the HTTP API, never a dependency of it: the
// gate decides without NATS, a NATS outage only silences this route, and
// Run keeps connecting and reconnecting for as long as it runs. Every
// replica of the daemon may run it: the endpoint subscribes in micro's
// default queue group, so the server hands each request to one of them.
//
// Beside admit, the service answers owner commands on pairgate.command,
// and publishes from the store on the same connection: the change log's
// events (pairgate.events.<kind>) and the outbound messages
// (plugin.outbound.<channel>[.<account>]), each on one replica at a time.
package natsbus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/pairgate/pairgate/api"
	"github.com/pairgate/pairgate/command"
	"github.com/pairgate/pairgate/internal/buildinfo"
	"github.com/pairgate/pairgate/outbound"
	"github.com/pairgate/pairgate/pairing"
	"github.com/pairgate/pairgate/server"
	"github.com/pairgate/pairgate/store"
)

// The service as NATS clients see it.
const (
	// ServiceName is the micro service's name: $SRV.PING.pairgate,
	// $SRV.INFO.pairgate and $SRV.STATS.pairgate reach every instance.
	ServiceName = "pairgate"
	// AdmitSubject takes an api.AdmitRequest and answers an api.Decision.
	AdmitSubject = "pairgate.admit"
	// CommandSubject takes an api.CommandRequest and answers an
	// api.CommandResult.
	CommandSubject = "pairgate.command"
	// DevVersion is the service's version when the build's own is not
	// SemVer (a source build says "(devel)"): micro wants SemVer, and a
	// prerelease of 0.0.0 sorts below every release.
	DevVersion = "0.0.0-dev"
)

const (
	description = "pairgate: the DM pairing gate for AI-agent gateways"
	// defaultRetryWait is the pause between attempts to reach a server,
	// at start and after a connection is lost.
	defaultRetryWait = 2 * time.Second
	// logEvery bounds how often a failure to connect is logged while the
	// server stays unreachable: one line per attempt would flood the log
	// of a daemon whose NATS is down for hours.
	logEvery = 5 * time.Second
	// requestTimeout bounds one decision. A requester has long given up
	// by then (NATS clients default to a few seconds), and a stuck store
	// must not hold a decision slot (maxDeciding) for longer.
	requestTimeout = 5 * time.Second
	// drainTimeout bounds the drain at shutdown: requests already
	// received are answered first, but the daemon's exit is not held up
	// by a server that stopped answering.
	drainTimeout = 10 * time.Second
	// maxDeciding bounds the decisions one instance makes at once.
	maxDeciding = 64
	// pingInterval makes a connection that died silently (no reset, a
	// dropped route) noticed within about a minute instead of nats.go's
	// default of several.
	pingInterval = 20 * time.Second
)

// Options configure a Bus.
type Options struct {
	// URL is one NATS server URL or several separated by commas
	// (config nats.url). Credentials in it (user:password@ or token@)
	// are used to connect and never logged.
	URL     string
	Pairing *pairing.Service
	Logger  *slog.Logger // nil means discard
	// Name is the connection's name as the NATS server reports it
	// (nats server report connections); "" means "pairgate".
	Name string
	// RetryWait is the pause between connection attempts; 0 means 2 s.
	RetryWait time.Duration
	// OnDecision, when set, is told of every decision the endpoint
	// answers, as the HTTP API counts its own (server.CountDecision), so
	// the gate's metrics cover both routes.
	OnDecision func(channel string, d api.Decision)
	// Store, when set, is followed for the change log's events, published
	// on pairgate.events.<kind> by one replica at a time: the holder of
	// the lease EventsLease, named Holder (unique per process).
	Store  store.Store
	Holder string
	// Commands, when set, answers pairgate.command.
	Commands *command.Service
	// Outbound, when set with Store, is published on the outbound
	// subjects (OutboundSubject) by the holder of OutboundLease.
	Outbound *outbound.Reader
}

// Bus is the gate's presence on NATS: build it with New, then Run it.
type Bus struct {
	opts    Options
	log     *slog.Logger
	servers string   // opts.URL without credentials, for the log
	secrets []string // the credentials in opts.URL, scrubbed from logged errors
	version string
	meta    map[string]string
	// deciding holds a slot per decision in progress: micro hands an
	// endpoint's requests over one at a time, so decisions run aside, or
	// an allowed sender (answered from memory) would wait behind another
	// sender's challenge (a durable write). A full set of slots holds
	// the next request back, so a flood queues in NATS, not in memory.
	deciding chan struct{}
	decided  sync.WaitGroup
}

// New checks o and builds a Bus. Nothing connects until Run.
func New(o Options) (*Bus, error) {
	if strings.TrimSpace(o.URL) == "" {
		return nil, errors.New("natsbus: URL is required")
	}
	if o.Pairing == nil {
		return nil, errors.New("natsbus: Pairing is required")
	}
	if o.Name == "" {
		o.Name = ServiceName
	}
	if o.RetryWait <= 0 {
		o.RetryWait = defaultRetryWait
	}
	b := &Bus{opts: o, log: o.Logger, servers: Redact(o.URL), secrets: credentials(o.URL), deciding: make(chan struct{}, maxDeciding)}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	info := buildinfo.Read()
	b.version = ServiceVersion(info.Version)
	// The build's own words, for an operator comparing instances: the
	// SemVer above loses "(devel)" and says nothing of the commit.
	b.meta = map[string]string{"build_version": info.Version, "go": info.Go}
	if info.Commit != "" {
		b.meta["commit"] = info.Commit
	}
	return b, nil
}

// Run connects to NATS, registers the service and answers requests until
// ctx ends; then it stops taking requests, answers those it has received,
// closes the connection and returns nil. A server that is down at start,
// goes away or refuses the connection for good is retried every
// RetryWait for as long as ctx lasts: Run returns an error only for a
// service that cannot be built at all.
func (b *Bus) Run(ctx context.Context) error {
	for {
		nc, closed := b.connect(ctx)
		if nc == nil {
			return nil // ctx ended
		}
		err := b.serve(ctx, nc, closed)
		if err != nil || ctx.Err() != nil {
			return err
		}
		// The connection closed under us (nats.go gives up on a server
		// that refuses the credentials twice); a fresh one may do better
		// once the operator fixes the server.
		b.log.Warn("NATS: the connection closed; connecting again", "servers", b.servers, "retry_ms", b.opts.RetryWait.Milliseconds())
		if !sleep(ctx, b.opts.RetryWait) {
			return nil
		}
	}
}

// connect dials until a server answers or ctx ends (nil). closed is
// closed once the connection is.
func (b *Bus) connect(ctx context.Context) (*nats.Conn, <-chan struct{}) {
	failures := 0
	var lastLogged time.Time
	for {
		closed := make(chan struct{})
		nc, err := b.dial(ctx, closed)
		if ctx.Err() != nil {
			if nc != nil {
				nc.Close() // connected just as ctx ended
			}
			return nil, nil
		}
		if err == nil {
			b.log.Info("NATS: connected", "server", Redact(nc.ConnectedUrl()), "failed_attempts", failures)
			return nc, closed
		}
		failures++
		if time.Since(lastLogged) >= logEvery {
			lastLogged = time.Now()
			b.log.Warn("NATS: cannot connect; retrying", "servers", b.servers, "err", b.scrub(err), "failed_attempts", failures,
				"retry_ms", b.opts.RetryWait.Milliseconds())
		}
		if !sleep(ctx, b.opts.RetryWait) {
			return nil, nil
		}
	}
}

// dial makes one attempt. nats.Connect knows no context and may take its
// dial timeout per server, so it runs aside: an attempt still under way
// when ctx ends is left to finish and closed, rather than holding up the
// daemon's shutdown.
func (b *Bus) dial(ctx context.Context, closed chan struct{}) (*nats.Conn, error) {
	type result struct {
		nc  *nats.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		nc, err := nats.Connect(b.opts.URL, b.natsOptions(closed)...)
		done <- result{nc, err}
	}()
	select {
	case r := <-done:
		return r.nc, r.err
	case <-ctx.Done():
		go func() {
			if r := <-done; r.nc != nil {
				r.nc.Close()
			}
		}()
		return nil, ctx.Err()
	}
}

func (b *Bus) natsOptions(closed chan struct{}) []nats.Option {
	closeOnce := sync.OnceFunc(func() { close(closed) })
	return []nats.Option{
		nats.Name(b.opts.Name),
		// Once connected, never give up: a NATS restart or a network cut
		// is waited out, with the subscriptions restored on reconnect.
		nats.MaxReconnects(-1),
		nats.ReconnectWait(b.opts.RetryWait),
		nats.PingInterval(pingInterval),
		// No buffer of publishes while reconnecting: a publish then fails
		// and is retried from the store once connected, rather than
		// buffered and sent again beside the retry.
		nats.ReconnectBufSize(-1),
		nats.DrainTimeout(drainTimeout),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if nc.IsClosed() {
				return // our own Close or Drain, or nats.go giving up: ClosedHandler says so
			}
			b.log.Warn("NATS: disconnected; reconnecting", "servers", b.servers, "err", b.scrub(err))
		}),
		nats.ReconnectErrHandler(func(_ *nats.Conn, err error) {
			b.log.Debug("NATS: reconnect attempt failed", "err", b.scrub(err))
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			b.log.Info("NATS: reconnected", "server", Redact(nc.ConnectedUrl()))
		}),
		// micro chains these two: they must be set before the service is
		// added (micro.AddService).
		nats.ClosedHandler(func(*nats.Conn) { closeOnce() }),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			b.log.Warn("NATS: asynchronous error", "subject", subject, "err", b.scrub(err))
		}),
	}
}

// serve registers the service on nc and waits for ctx to end (then drains
// and returns nil) or for nc to close on its own (returns nil with ctx
// alive). An error means the service cannot be built.
func (b *Bus) serve(ctx context.Context, nc *nats.Conn, closed <-chan struct{}) error {
	svc, err := b.addService(ctx, nc)
	if err != nil {
		nc.Close()
		if errors.Is(err, micro.ErrConfigValidation) {
			return fmt.Errorf("natsbus: %w", err)
		}
		// The connection failed while subscribing: try again afresh.
		b.log.Warn("NATS: registering the service failed", "err", b.scrub(err))
		<-closed
		return nil
	}
	var subjects []string
	for _, e := range b.endpoints() {
		subjects = append(subjects, e.subject)
	}
	b.log.Info("NATS: serving", "service", ServiceName, "version", b.version, "subjects", strings.Join(subjects, ","), "queue_group", micro.DefaultQueueGroup)
	// The publishers run on this connection, each on one replica at a
	// time, and stop before the connection is drained.
	pubCtx, stopPub := context.WithCancel(ctx)
	pubDone := make(chan struct{})
	go func() {
		defer close(pubDone)
		var wg sync.WaitGroup
		for _, p := range b.publishers() {
			wg.Go(func() {
				store.RunLeased(pubCtx, b.opts.Store, store.LeaseOptions{Name: p.lease, Holder: b.opts.Holder,
					OnError: func(err error) {
						b.log.Warn("NATS: a publisher's lease cannot be renewed", "lease", p.lease, "err", err)
					}},
					func(ctx context.Context) { p.run(ctx, nc) })
			})
		}
		wg.Wait()
	}()
	select {
	case <-closed:
		stopPub()
		<-pubDone
		svc.Stop()
		b.decided.Wait()
		return nil
	case <-ctx.Done():
	}
	stopPub()
	<-pubDone
	// Stop unsubscribes the endpoints (requests received are still
	// answered); Drain then waits for those answers to be sent before it
	// closes the connection, so the store outlives every decision.
	if err := svc.Stop(); err != nil {
		b.log.Debug("NATS: stopping the service", "err", b.scrub(err))
	}
	b.decided.Wait() // each bounded by requestTimeout
	if err := nc.Drain(); err != nil {
		nc.Close() // not connected: nothing to drain
	}
	select {
	case <-closed:
	case <-time.After(drainTimeout + time.Second):
		nc.Close()
	}
	b.log.Info("NATS: stopped")
	return nil
}

// endpoint is one request/reply subject of the service.
type endpoint struct {
	name, subject string
	handle        func(ctx context.Context, req micro.Request)
}

// endpoints are the service's endpoints.
func (b *Bus) endpoints() []endpoint {
	e := []endpoint{{name: "admit", subject: AdmitSubject, handle: b.admit}}
	if b.opts.Commands != nil {
		e = append(e, endpoint{name: "command", subject: CommandSubject, handle: b.command})
	}
	return e
}

// publisher is a job run on the connection under a lease.
type publisher struct {
	lease string
	run   func(ctx context.Context, nc *nats.Conn)
}

// publishers are the jobs that publish from the store: the change log's
// events, and the outbound messages.
func (b *Bus) publishers() []publisher {
	if b.opts.Store == nil {
		return nil
	}
	p := []publisher{{lease: EventsLease, run: b.publishEvents}}
	if b.opts.Outbound != nil {
		p = append(p, publisher{lease: OutboundLease, run: b.publishOutbound})
	}
	return p
}

// command answers one pairgate.command request as POST /v1/command
// would. Commands are few and answered by a write: they run in the
// handler, one at a time per instance.
func (b *Bus) command(ctx context.Context, req micro.Request) {
	in, err := server.ReadCommand(req.Data())
	var res api.CommandResult
	if err == nil {
		ctx, cancel := context.WithTimeout(ctx, requestTimeout)
		res, err = b.opts.Commands.Handle(ctx, in)
		cancel()
	}
	if err != nil {
		b.refuse(req, "command", err)
		return
	}
	if err := req.RespondJSON(res); err != nil {
		b.log.Warn("NATS: the command reply could not be sent", "err", b.scrub(err))
	}
}

func (b *Bus) addService(ctx context.Context, nc *nats.Conn) (micro.Service, error) {
	svc, err := micro.AddService(nc, micro.Config{
		Name:        ServiceName,
		Version:     b.version,
		Description: description,
		Metadata:    b.meta,
		// No ErrorHandler: micro passes the connection's asynchronous
		// errors (a slow consumer) on to the nats.ErrorHandler, which logs
		// them; a second handler would log each twice.
	})
	if err != nil {
		return nil, err
	}
	// Decisions outlive ctx by a little: those received before the stop
	// are answered during the drain, not failed as cancelled.
	hctx := context.WithoutCancel(ctx)
	for _, e := range b.endpoints() {
		// No queue group option: micro's default ("q") is what lets
		// replicas share the requests.
		if err := svc.AddEndpoint(e.name, micro.ContextHandler(hctx, e.handle), micro.WithEndpointSubject(e.subject)); err != nil {
			svc.Stop()
			return nil, err
		}
	}
	return svc, nil
}

// admit answers one pairgate.admit request: the decision of POST /v1/admit
// for the same body, or a micro error with the same JSON error body the
// HTTP API sends. Neither the body nor the decision is logged: a decision
// carries the pairing code.
func (b *Bus) admit(ctx context.Context, req micro.Request) {
	// The body is read by the HTTP API's rules (server.ReadAdmit), so a
	// body is refused on both routes or on neither, with the same error.
	in, err := server.ReadAdmit(req.Data())
	if err != nil {
		b.refuse(req, "admit", err)
		return
	}
	// A refused body is answered above, in the handler, where micro
	// counts it as an error; the decision runs aside (see deciding).
	b.deciding <- struct{}{}
	b.decided.Add(1)
	go func() {
		defer func() { <-b.deciding; b.decided.Done() }()
		ctx, cancel := context.WithTimeout(ctx, requestTimeout)
		defer cancel()
		d := b.opts.Pairing.Admit(ctx, server.Inbound(in, api.ReplyByOutbound))
		if b.opts.OnDecision != nil {
			b.opts.OnDecision(in.Channel, d)
		}
		if err := req.RespondJSON(d); err != nil {
			// The pending request stands: the sender gets the code
			// again from the next message, after the rate window.
			b.log.Warn("NATS: the admit reply could not be sent", "err", b.scrub(err))
		}
	}()
}

// refuse answers req with the micro error for err: the HTTP status the
// API would answer as the code, and the API's JSON error body.
func (b *Bus) refuse(req micro.Request, endpoint string, err error) {
	status, refusal := server.Refusal(err, time.Now())
	b.log.Debug("NATS: request refused", "endpoint", endpoint, "code", refusal.Error.Code, "message", refusal.Error.Message)
	body, _ := json.Marshal(refusal)
	if err := req.Error(strconv.Itoa(status), refusal.Error.Message, body); err != nil {
		b.log.Warn("NATS: the error reply could not be sent", "err", b.scrub(err))
	}
}

// semVer is semver.org's suggested pattern, the one micro checks with.
var semVer = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$`)

// ServiceVersion is the micro version for a build version
// (buildinfo.Info.Version): a Go module version without its "v" (v1.2.0
// is 1.2.0; a pseudo-version is a SemVer prerelease), else DevVersion.
func ServiceVersion(build string) string {
	if v := strings.TrimPrefix(build, "v"); semVer.MatchString(v) {
		return v
	}
	return DevVersion
}

// Redact returns a nats.url with the credentials of each server replaced
// by "***": nats://alice:pw@host:4222 and nats://s3cret@host:4222 (a
// token) both become nats://***@host:4222. nats.go's own redaction keeps a
// token, which is the whole secret.
func Redact(urls string) string {
	parts := strings.Split(urls, ",")
	for i, u := range parts {
		if cred := credential(u); cred != "" {
			parts[i] = strings.Replace(u, cred+"@", "***@", 1)
		}
	}
	return strings.Join(parts, ",")
}

// credentials lists the credentials of each server of a nats.url.
func credentials(urls string) []string {
	var out []string
	for u := range strings.SplitSeq(urls, ",") {
		if cred := credential(u); cred != "" {
			out = append(out, cred)
		}
	}
	return out
}

// credential is the userinfo of one server URL, with or without a scheme:
// what comes before the last "@" of the authority.
func credential(u string) string {
	u = strings.TrimSpace(u)
	if _, rest, ok := strings.Cut(u, "://"); ok {
		u = rest
	}
	if i := strings.IndexAny(u, "/?#"); i >= 0 {
		u = u[:i]
	}
	at := strings.LastIndex(u, "@")
	if at <= 0 {
		return ""
	}
	return u[:at]
}

// scrub renders err for the log with the URL's credentials removed: a
// parse error from nats.go quotes the URL it was given.
func (b *Bus) scrub(err error) string {
	if err == nil {
		return ""
	}
	s := err.Error()
	for _, c := range b.secrets {
		s = strings.ReplaceAll(s, c, "***")
	}
	return s
}

// sleep waits d or until ctx ends, and says whether ctx is still alive.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
