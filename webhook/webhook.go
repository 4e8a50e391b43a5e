// Package webhook tells the owner of every new pending request (a sender's
// DM request, a device's) by an HMAC-signed HTTP POST to one URL
// (notify.webhook_url). It follows the store's change log from its cursor,
// so a request made by any process (the daemon, the CLI, another replica)
// is announced, and none is lost across restarts; one replica at a time
// posts, the holder of the lease LeaseName.
//
// Notices go out one at a time, in seq order. A 2xx answer is success;
// anything else (another status, a redirect, a timeout, no connection) is
// retried with exponential backoff and full jitter for at least a day,
// after which the notice is logged as given up and the next one goes. The
// cursor passes a notice once it succeeded or was given up, so each is
// delivered as success at most once, except when pairgate stops (or loses
// the lease, or crashes) after the receiver answered and before the cursor
// was written: then the next publisher posts it again with the same
// Idempotency-Key (the seq), by which the receiver drops it.
package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/pairgate/pairgate/internal/buildinfo"
	"github.com/pairgate/pairgate/store"
)

// CursorName is the publisher's position in the change log, and LeaseName
// the lease under which one replica at a time posts.
const (
	CursorName = "webhook"
	LeaseName  = "webhook"
)

// Defaults of Options.
const (
	DefaultTimeout    = 10 * time.Second
	DefaultFirstRetry = time.Second
	DefaultMaxRetry   = 10 * time.Minute
	DefaultRetryFor   = 24 * time.Hour
)

// cursorTimeout bounds a cursor write once the publisher's context ended.
const cursorTimeout = 5 * time.Second

// warnEvery: of the failed attempts of one notice, the first and every
// warnEvery-th are logged at Warn, the others at Debug.
const warnEvery = 10

// Options configure a Publisher.
type Options struct {
	// Store is followed for new requests and keeps the cursor.
	Store store.ChangeLog
	// URL receives the POSTs: http or https, with a host.
	URL string
	// Key signs the bodies: Key(the pairing secret).
	Key []byte
	// Logger: nil means discard.
	Logger *slog.Logger
	// Client sends the POSTs (default: a plain client). Redirects are never
	// followed, whatever the client says: a 3xx answer is a failure.
	Client *http.Client
	// Timeout bounds each POST, answer included. Default 10s.
	Timeout time.Duration
	// FirstRetry is the backoff's first ceiling: the first retry comes
	// within it (full jitter), and the ceiling doubles with every failed
	// attempt up to MaxRetry. Defaults 1s and 10min.
	FirstRetry, MaxRetry time.Duration
	// RetryFor is how long a notice is retried from its first attempt
	// before it is given up. Default 24h.
	RetryFor time.Duration
	// Now is the clock (default time.Now): signatures' timestamps, the
	// retry budget, the cursor's time.
	Now func() time.Time
}

// Publisher posts the notices. Build it with New; run Run under the lease.
type Publisher struct {
	opts      Options
	log       *slog.Logger
	client    *http.Client
	target    string // the URL without its path, query and credentials, for the log
	userAgent string
}

// New checks o and fills in its defaults.
func New(o Options) (*Publisher, error) {
	if o.Store == nil {
		return nil, errors.New("webhook: Store is required")
	}
	if len(o.Key) == 0 {
		return nil, errors.New("webhook: Key is required")
	}
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("webhook: URL must be http:// or https:// with a host, got %q", redact(o.URL))
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.FirstRetry <= 0 {
		o.FirstRetry = DefaultFirstRetry
	}
	if o.MaxRetry <= 0 {
		o.MaxRetry = DefaultMaxRetry
	}
	o.MaxRetry = max(o.MaxRetry, o.FirstRetry)
	if o.RetryFor <= 0 {
		o.RetryFor = DefaultRetryFor
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	p := &Publisher{opts: o, log: o.Logger, target: redact(o.URL)}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	client := http.Client{}
	if o.Client != nil {
		client = *o.Client
	}
	// A redirect to another host would hand the signed notice to whoever
	// the receiver points at: the operator fixes the URL instead.
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	p.client = &client
	version := strings.Trim(buildinfo.Read().Version, "()")
	p.userAgent = "pairgate/" + version
	return p, nil
}

// redact is the URL as the log shows it: scheme and host, since the path
// or query of a webhook URL often is its secret (and the user info is).
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(not a URL)"
	}
	s := u.Scheme + "://" + u.Host
	if u.Path != "" || u.RawQuery != "" {
		s += "/…"
	}
	return s
}

// Run posts the notices of every change after the cursor, in order, until
// ctx ends (the lease is lost or the daemon stops). The first run on a
// store (no cursor yet) starts at the log's head: the owner is told of
// what happens from then on, not of the retained history.
func (p *Publisher) Run(ctx context.Context) {
	st := p.opts.Store
	follow := store.FollowOptions{OnError: func(err error) { p.log.Warn("webhook: following the change log failed; will retry", "err", err) }}
	seq, err := store.StartCursor(ctx, st, CursorName, follow)
	if err != nil {
		return // ctx ended
	}
	p.log.Info("webhook: posting notices of new requests", "url", p.target, "after", seq)
	// done is the last change handled: Follow hands a batch on again after
	// a failed cursor write, and what was posted is not posted again.
	done := seq
	follow.After = seq
	store.Follow(ctx, st, follow, func(changes []store.Change) error {
		for _, c := range changes {
			if c.Seq <= done {
				continue
			}
			n, ok := NoticeOf(c)
			if !ok {
				done = c.Seq
				continue
			}
			if err := p.deliver(ctx, n, c.At); err != nil {
				return err
			}
			done = c.Seq
			if err := p.setCursor(ctx, c.Seq); err != nil {
				return err
			}
		}
		return p.setCursor(ctx, changes[len(changes)-1].Seq)
	})
}

// setCursor records that the notices up to seq are done. It is written
// even when ctx has just ended (a stop, a lost lease), so that a notice
// delivered a moment before is not posted again by the next publisher; a
// cursor never moves back, so a late write cannot undo another's.
func (p *Publisher) setCursor(ctx context.Context, seq int64) error {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cursorTimeout)
	defer cancel()
	if err := p.opts.Store.SetCursor(wctx, CursorName, seq, p.opts.Now()); err != nil {
		return fmt.Errorf("webhook cursor at %d: %w", seq, err)
	}
	return nil
}

// deliver posts n until it succeeds or its retry budget, counted from
// since (the change's time, so a new lease holder does not start the
// budget again), is spent; it logs either. It returns an error only when
// ctx ended.
func (p *Publisher) deliver(ctx context.Context, n Notice, since time.Time) error {
	body, err := json.Marshal(n)
	if err != nil {
		return fmt.Errorf("webhook notice %d: %w", n.Seq, err)
	}
	first := since
	for attempt := 1; ; attempt++ {
		status, err := p.post(ctx, n.Seq, body)
		if err == nil {
			level := slog.LevelDebug
			if attempt > 1 {
				level = slog.LevelInfo
			}
			p.log.Log(ctx, level, "webhook: notice delivered", "seq", n.Seq, "kind", n.Kind, "status", status, "attempts", attempt)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if p.opts.Now().Sub(first) >= p.opts.RetryFor {
			p.log.Error("webhook: gave up on a notice; going on with the next", "seq", n.Seq, "kind", n.Kind, "request_id", n.RequestID,
				"attempts", attempt, "since", first, "status", status, "err", err)
			return nil
		}
		wait := p.backoff(attempt)
		level := slog.LevelDebug
		if attempt == 1 || attempt%warnEvery == 0 {
			level = slog.LevelWarn
		}
		p.log.Log(ctx, level, "webhook: delivery failed; will retry", "seq", n.Seq, "kind", n.Kind, "attempt", attempt,
			"status", status, "err", err, "retry_in", wait)
		if !sleep(ctx, wait) {
			return ctx.Err()
		}
	}
}

// backoff is the wait after failed attempt number attempt (1 for the
// first): full jitter, uniform in [0, ceiling], where the ceiling starts
// at FirstRetry and doubles per attempt up to MaxRetry.
func (p *Publisher) backoff(attempt int) time.Duration {
	ceiling := p.opts.FirstRetry
	for i := 1; i < attempt && ceiling < p.opts.MaxRetry; i++ {
		ceiling *= 2
	}
	ceiling = min(ceiling, p.opts.MaxRetry)
	return rand.N(ceiling + 1)
}

// post sends body once, signed now, and returns the answer's status (0
// when there was none) and, unless it was 2xx, why it failed.
func (p *Publisher) post(ctx context.Context, seq int64, body []byte) (int, error) {
	rctx, cancel := context.WithTimeout(ctx, p.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, p.opts.URL, bytes.NewReader(body))
	if err != nil {
		return 0, errors.New("cannot make the request") // the URL was checked by New
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", p.userAgent)
	req.Header.Set(IdempotencyHeader, strconv.FormatInt(seq, 10))
	req.Header.Set(SignatureHeader, Sign(p.opts.Key, p.opts.Now(), body))
	resp, err := p.client.Do(req)
	if err != nil {
		// A *url.Error names the URL, which may hold a secret.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			err = fmt.Errorf("no answer within %v", p.opts.Timeout)
		}
		return 0, err
	}
	defer resp.Body.Close()
	// Read a little of the answer, so that the connection can be reused.
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode <= 299:
		return resp.StatusCode, nil
	case resp.StatusCode >= 300 && resp.StatusCode <= 399:
		return resp.StatusCode, fmt.Errorf("answered %d %s: redirects are not followed; set notify.webhook_url to where it points",
			resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	// The status's number and its standard text, not the receiver's own
	// words: text from outside stays out of the log.
	return resp.StatusCode, fmt.Errorf("answered %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
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
