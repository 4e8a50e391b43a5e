// Package daemon is the composition root of `pairgate serve`. Given the
// configuration, an open store and the pairing secret, it builds the
// pairing service, the device service, the API tokens, the HTTP server,
// when nats.url is set the NATS service (natsbus) and when
// notify.webhook_url is set the webhook publisher, and runs the HTTP
// listener, every follower of the change log, the config reload, the NATS
// service and any further jobs under one errgroup: whichever of them fails,
// or a signal, stops them all the same way. In-flight requests are drained
// first (up to 10 s), then the followers and jobs stop, then Run returns
// and the caller closes the store.
package daemon

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/pairgate/pairgate/apitoken"
	"github.com/pairgate/pairgate/command"
	"github.com/pairgate/pairgate/config"
	"github.com/pairgate/pairgate/device"
	"github.com/pairgate/pairgate/natsbus"
	"github.com/pairgate/pairgate/outbound"
	"github.com/pairgate/pairgate/pairing"
	"github.com/pairgate/pairgate/secret"
	"github.com/pairgate/pairgate/server"
	"github.com/pairgate/pairgate/store"
	"github.com/pairgate/pairgate/web"
	"github.com/pairgate/pairgate/webhook"
)

// HTTP server limits: a client that dribbles its headers or body, or holds
// an idle connection, is cut off instead of holding a goroutine and a
// socket.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 15 * time.Second
	writeTimeout      = 15 * time.Second
	idleTimeout       = 60 * time.Second
	maxHeaderBytes    = 16 << 10
	// shutdownTimeout bounds how long requests in flight are waited for
	// when the daemon stops.
	shutdownTimeout = 10 * time.Second
)

// Options configure a Daemon.
type Options struct {
	// Config is the configuration the daemon starts with.
	Config *config.Config
	// Store is open; the caller closes it once Run has returned.
	Store  store.Store
	Secret secret.Secret
	// AdminTokenPath is the admin token's file ($PAIRGATE_HOME/admin.token),
	// made on first start.
	AdminTokenPath string
	// PublicURL is where setup codes point, resolved for each code
	// (device.ResolveURL).
	PublicURL device.URLInputs
	// Reload receives a value (SIGHUP) whenever the configuration is to be
	// read again with LoadConfig. Nil means never.
	Reload <-chan os.Signal
	// LoadConfig reads the configuration again; file is where it came from,
	// for the log ("" for none: the defaults).
	LoadConfig func() (cfg *config.Config, file string, err error)
	// Jobs run beside the followers of the change log, each with a context
	// that ends once the HTTP server has drained: periodic work (a ticker
	// calling the store's garbage collection) and integrations that need
	// none of the services New builds plug in here; the NATS service,
	// which needs the gate, is built by New itself. A job that returns an
	// error stops the daemon; one that returns nil is done.
	Jobs   []func(context.Context) error
	Logger *slog.Logger // nil means discard
}

// Daemon is `pairgate serve`: build it with New, then Run it.
type Daemon struct {
	opts    Options
	log     *slog.Logger
	holder  string // this process, as a lease holder: host/pid/random
	pairing *pairing.Service
	devices *device.Service
	tokens  *apitoken.Authenticator
	server  *server.Server
	// drain ends the long-lived requests as a shutdown begins.
	drain context.CancelFunc
	// jobs are the daemon's own jobs, built with the services they use
	// (the NATS service needs the gate), run beside Options.Jobs.
	jobs []func(context.Context) error
}

// New builds the services and the HTTP server over o.Store. The allowlist
// and the API tokens are loaded before it returns, so the first request is
// answered correctly. Nothing runs until Run.
func New(ctx context.Context, o Options) (*Daemon, error) {
	if o.Config == nil || o.Store == nil {
		return nil, errors.New("daemon: Config and Store are required")
	}
	if o.Reload != nil && o.LoadConfig == nil {
		return nil, errors.New("daemon: Reload needs LoadConfig")
	}
	d := &Daemon{opts: o, log: o.Logger, holder: holderName()}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	var err error
	if d.pairing, err = pairing.New(pairing.Options{Store: o.Store, Secret: o.Secret, Config: o.Config, Logger: d.log}); err != nil {
		return nil, err
	}
	if err := d.pairing.Load(ctx); err != nil {
		return nil, err
	}
	admin, err := apitoken.LoadOrCreateAdmin(o.AdminTokenPath)
	if err != nil {
		return nil, err
	}
	urls := o.PublicURL
	d.devices, err = device.New(device.Options{Store: o.Store, Secret: o.Secret, Logger: d.log,
		URL: func() (string, device.URLSource, error) { return device.ResolveURL(urls) },
		// The owner as the config in effect says (SIGHUP reloads it).
		Owner: func() config.Owner { return d.pairing.Config().Owner }})
	if err != nil {
		return nil, err
	}
	if d.tokens, err = apitoken.New(apitoken.Options{Store: o.Store, Logger: d.log}).Authenticator(ctx, admin); err != nil {
		return nil, err
	}
	// Long polls and event streams (the API's and the page's) end as a
	// shutdown's drain begins; they would otherwise hold it for its whole
	// timeout.
	var drained context.Context
	drained, d.drain = context.WithCancel(context.Background())
	page, err := web.New(web.Options{Pairing: d.pairing, Devices: d.devices, Store: o.Store, Tokens: d.tokens, Logger: d.log, Drained: drained})
	if err != nil {
		return nil, err
	}
	// One reader of outbound messages and one runner of owner commands
	// serve both routes, HTTP and NATS.
	out, err := outbound.New(outbound.Options{Store: o.Store, Pairing: d.pairing, Devices: d.devices, Logger: d.log})
	if err != nil {
		return nil, err
	}
	cmds, err := command.New(command.Options{Pairing: d.pairing, Devices: d.devices, Store: o.Store, Logger: d.log})
	if err != nil {
		return nil, err
	}
	d.server, err = server.New(server.Options{Pairing: d.pairing, Devices: d.devices, Store: o.Store, Tokens: d.tokens, Logger: d.log, Web: page,
		Outbound: out, Commands: cmds, Drained: drained})
	if err != nil {
		return nil, err
	}
	if url := o.Config.NATS.URL; url != "" {
		// Every replica serves pairgate.admit: the endpoint is in a queue
		// group, so the requests are shared, not repeated. It is a job
		// like any other: NATS being down never stops the daemon.
		bus, err := natsbus.New(natsbus.Options{URL: url, Pairing: d.pairing, Logger: d.log, Name: "pairgate " + d.holder,
			OnDecision: d.server.CountDecision, Store: o.Store, Holder: d.holder, Commands: cmds, Outbound: out})
		if err != nil {
			return nil, err
		}
		d.jobs = append(d.jobs, bus.Run)
	}
	if url := o.Config.Notify.WebhookURL; url != "" {
		pub, err := webhook.New(webhook.Options{Store: o.Store, URL: url, Key: webhook.Key(o.Secret), Logger: d.log})
		if err != nil {
			return nil, err
		}
		// One replica at a time posts: the holder of the webhook lease.
		d.jobs = append(d.jobs, func(ctx context.Context) error {
			store.RunLeased(ctx, o.Store, store.LeaseOptions{Name: webhook.LeaseName, Holder: d.holder,
				OnError: func(err error) { d.log.Warn("the webhook lease cannot be renewed", "err", err) }}, pub.Run)
			return nil
		})
	}
	return d, nil
}

// Run serves the HTTP API on ln and runs the followers of the change log
// (the gate's allowlist view, the device sessions, the API tokens, the
// metrics), the config reload and the jobs, until ctx ends or one of them
// fails. Either way it stops the same way: it stops accepting, finishes the
// requests in flight (up to 10 s), then stops the followers and jobs and
// returns nil after ctx ended, or the first failure. ln is closed.
func (d *Daemon) Run(ctx context.Context, ln net.Listener) error {
	g, failed := errgroup.WithContext(context.WithoutCancel(ctx))
	// Followers stop after the drain: requests in flight are answered from
	// a view that is still current.
	following, stopFollowing := context.WithCancel(context.WithoutCancel(ctx))
	defer stopFollowing()
	g.Go(func() error {
		defer stopFollowing()
		return d.serve(ctx, failed, ln)
	})
	for _, run := range d.followers() {
		g.Go(func() error { return run(following) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	d.log.Info("stopped cleanly")
	return nil
}

// followers are what runs beside the HTTP server until it has drained.
func (d *Daemon) followers() []func(context.Context) error {
	runs := []func(context.Context) error{d.pairing.Run, d.devices.Run, d.tokens.Run, d.server.Run, d.collectGarbage}
	if d.opts.Reload != nil {
		runs = append(runs, d.reloadOnSignal)
	}
	runs = append(runs, d.jobs...)
	return append(runs, d.opts.Jobs...)
}

// serve runs the HTTP server on ln until stop (the caller's signal) or
// failed (another part failed) ends, or the server itself fails, then
// drains it.
func (d *Daemon) serve(stop, failed context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           d.server.Handler(),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(d.log.Handler(), slog.LevelDebug),
	}
	hs.RegisterOnShutdown(d.drain)
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	d.log.Info("serving", "addr", ln.Addr().String())

	var serveErr error
	select {
	case err := <-served:
		// The listener failed; connections already accepted are still
		// drained below.
		serveErr = fmt.Errorf("serve: %w", err)
		d.log.Error("serving failed: stopping", "err", err)
	case <-stop.Done():
	case <-failed.Done():
	}
	d.log.Info("shutting down: draining requests", "timeout_ms", shutdownTimeout.Milliseconds())
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		hs.Close() // cut off what did not finish in time: the store closes next
		if serveErr == nil {
			serveErr = fmt.Errorf("shutdown: %w", err)
		}
	}
	if serveErr != nil {
		return serveErr
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

// Garbage collection (store.GarbageCollect): what it keeps beyond the
// windows of the configuration.
const (
	// gcEvery is how often serve collects garbage.
	gcEvery = time.Minute
	// deviceRequestKeep: a device request stays this long after it was
	// decided or expired, for the operator's listing and a late resume.
	deviceRequestKeep = 24 * time.Hour
	// outboundKeep: outbound messages are kept this long for gateways
	// (GET /v1/outbound?after=) and publishers that were away.
	outboundKeep = 7 * 24 * time.Hour
	// staleCursor: a consumer of the change log whose position has not
	// moved for this long is taken to be gone and no longer holds the
	// retention back.
	staleCursor = 7 * 24 * time.Hour
)

// collectGarbage runs garbage collection until ctx ends, with the windows
// of the configuration in force (a reload applies at the next run), on one
// replica at a time: the holder of the "gc" lease.
func (d *Daemon) collectGarbage(ctx context.Context) error {
	store.RunLeased(ctx, d.opts.Store, store.LeaseOptions{Name: "gc", Holder: d.holder,
		OnError: func(err error) { d.log.Warn("the garbage collection lease cannot be renewed", "err", err) }},
		d.runGC)
	return nil
}

func (d *Daemon) runGC(ctx context.Context) {
	store.RunGC(ctx, d.opts.Store, gcEvery, d.gcPolicy, time.Now, func(r store.GCResult, err error) {
		d.server.CountGC(r, err)
		if err != nil {
			d.log.Warn("garbage collection failed; will retry", "err", err)
			return
		}
		if r != (store.GCResult{}) {
			d.log.Debug("garbage collected", "requests", r.Requests, "notices", r.Notices, "failures", r.Failures, "declines", r.Declines,
				"approvals", r.Approvals, "lockouts", r.Lockouts, "setup_tokens", r.SetupTokens, "device_requests", r.DeviceRequests,
				"web_sessions", r.WebSessions, "outbound", r.Outbound, "changes", r.Changes)
		}
	})
}

func (d *Daemon) gcPolicy() store.GCPolicy {
	cfg := d.pairing.Config()
	l := cfg.Pairing.Limits
	return store.GCPolicy{
		RateWindow:     l.RateWindow.Std(),
		FailureWindow:  l.FailureWindow.Std(),
		DeclineWindow:  l.DeclineWindow.Std(),
		SetupTokens:    device.MaxTokenTTL,
		DeviceRequests: deviceRequestKeep,
		Outbound:       outboundKeep,
		Retention:      cfg.Pairing.Storage.Retention.Std(),
		StaleCursor:    staleCursor,
	}
}

// holderName names this process among the replicas that may hold a lease.
func holderName() string {
	host, _ := os.Hostname()
	var b [4]byte
	rand.Read(b[:])
	return fmt.Sprintf("%s/%d/%x", host, os.Getpid(), b)
}
