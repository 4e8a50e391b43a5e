// Package companion is pairgate's reference companion device: the client side
// of the /pair WebSocket protocol (SPEC section 3). It pairs a device with a
// setup code, waits for the operator's approval (resuming on a new connection
// when the socket drops), saves the device token, and authenticates with it.
//
// The protocol is written here from the SPEC, independently of the server in
// package device, so each checks the other's reading of it.
//
// Files. The device key (Options.KeyFile) is the 32-byte Ed25519 seed as
// base64url without padding, followed by a newline:
//
//	AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8
//
// It is created with mode 0600 if missing and refused if group or others may
// read it. The credentials file (Options.TokenFile) is one JSON object and a
// newline, mode 0600, replaced atomically:
//
//	{"v":1,"url":"wss://gw.example.com/pair","device_id":"…","device_token":"…","role":"node","scopes":[],"paired_at":"2026-01-01T00:00:00Z"}
package companion

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/pairgate/pairgate/device"
	"github.com/pairgate/pairgate/internal/termtext"
	"github.com/pairgate/pairgate/secret"
)

// Timings. Every wait is bounded: a read by its timeout, the wait for the
// operator by the request's expires_at.
const (
	dialTimeout      = 30 * time.Second
	challengeTimeout = 30 * time.Second // from the upgrade to the server's challenge
	replyTimeout     = 30 * time.Second // from our pair/resume/auth to the server's answer
	writeTimeout     = 10 * time.Second
	maxBackoff       = 30 * time.Second
	dialAttempts     = 3               // before pending: transient dial failures are retried this often
	maxSkew          = 2 * time.Minute // the server's tolerance for signed_at (SPEC)
	readLimit        = 16 << 10        // bytes per server message
)

// Variables so the tests can shorten them.
var (
	// expiryGrace is how long after the request's expires_at the client still
	// waits for the server's "expired" before giving up on its own.
	expiryGrace = 15 * time.Second
	// pingInterval and pingTimeout detect a half-open socket while waiting
	// for the operator, so a dead connection is resumed instead of waited on
	// until the request expires.
	pingInterval = 20 * time.Second
	pingTimeout  = 10 * time.Second
)

// Errors. Protocol refusals are *ProtocolError; these are the other ways a
// pairing ends without a token.
var (
	// ErrRejected: the operator rejected the pairing request.
	ErrRejected = errors.New("the operator rejected this device's pairing request")
	// ErrExpired: the request expired before the operator approved it.
	ErrExpired = errors.New("the pairing request expired before the operator approved it: ask for a new setup code")
	// ErrCheckCodeMismatch: the server announced a check code other than the
	// one this device computed from its own connection, so the operator would
	// be comparing against a code this device never showed. Something between
	// them is relaying or tampering with the connection.
	ErrCheckCodeMismatch = errors.New("check code mismatch")
	// ErrInsecureFile is wrapped when a key or credentials file is readable
	// by group or others. It is secret.ErrInsecure, which secret.ReadPrivate
	// wraps for every private file.
	ErrInsecureFile = secret.ErrInsecure
)

// ProtocolError is a refusal the server sent as {"type":"error"}. Code is one
// of the SPEC's error codes (bad_request, invalid_token, token_expired,
// token_used, bad_signature, clock_skew, unknown_request, not_paired, revoked,
// rate_limited). Code and Message are as the server sent them.
type ProtocolError struct {
	Code, Message string
}

// Error is "code: message" with control and bidi characters escaped: both
// came from the server, and error text ends up on a terminal.
func (e *ProtocolError) Error() string {
	if e.Message == "" {
		return termtext.Escape(e.Code)
	}
	return termtext.Escape(e.Code) + ": " + termtext.Escape(e.Message)
}

// Dialer opens a WebSocket to url. The default is websocket.Dial without
// following redirects (a redirect must not take the setup token elsewhere).
type Dialer func(ctx context.Context, url string) (*websocket.Conn, error)

// Options configure Pair.
type Options struct {
	// SetupCode is the code the operator handed over (pairgate setup-code).
	SetupCode string
	// Name and Platform describe the device to the operator. Defaults: the
	// host name and runtime.GOOS. At most device.MaxNameLen and
	// device.MaxPlatformLen bytes, the most the server keeps.
	Name, Platform string
	// KeyFile holds the device's Ed25519 key (see the package doc). Created
	// with mode 0600 if missing; required.
	KeyFile string
	// TokenFile is where the credentials (with the device token) are saved.
	// Default: KeyFile + ".token".
	TokenFile string
	// CleartextAllow lists hosts that may be reached with ws:// although they
	// are not loopback, private, link-local or .local (the gateway's
	// pairing.ws_cleartext_allow).
	CleartextAllow []string
	// Out receives progress for people (check code, waiting, reconnecting).
	// Default: discarded.
	Out io.Writer
	// Dialer opens connections. Default: see Dialer.
	Dialer Dialer
	// Now is the clock for signed_at and expiry. Default time.Now.
	Now func() time.Time
	// ReconnectBackoff is the first pause before reconnecting; it doubles
	// up to 30 s. Default 1 s.
	ReconnectBackoff time.Duration
}

// Result is a completed pairing.
type Result struct {
	DeviceID  string
	Role      string
	Scopes    []string
	TokenFile string
}

// Credentials are what the credentials file holds: enough to authenticate
// again later.
type Credentials struct {
	Version     int       `json:"v"`
	URL         string    `json:"url"`
	DeviceID    string    `json:"device_id"`
	DeviceToken string    `json:"device_token"`
	Role        string    `json:"role"`
	Scopes      []string  `json:"scopes"`
	PairedAt    time.Time `json:"paired_at"`
}

// Pair pairs this device using o.SetupCode: it sends pair, shows the check
// code, waits for the operator (resuming on a new connection if the socket
// drops, until ctx ends or the request expires), saves the device token to
// o.TokenFile, and proves it with a fresh connection and auth.
//
// A refusal by the server is a *ProtocolError; a rejection or expiry is
// ErrRejected or ErrExpired; a check code that does not match is
// ErrCheckCodeMismatch.
func Pair(ctx context.Context, o Options) (Result, error) {
	o, err := o.withDefaults()
	if err != nil {
		return Result{}, err
	}
	sc, err := device.DecodeSetupCode(o.SetupCode)
	if err != nil {
		return Result{}, err
	}
	url, err := device.NormalizeURL(sc.URL, o.CleartextAllow)
	if err != nil {
		return Result{}, fmt.Errorf("the setup code's gateway URL: %w", err)
	}
	// The server's clock decides; refuse here only what is expired whatever
	// the skew between the clocks.
	if !sc.ExpiresAt.IsZero() && o.Now().After(sc.ExpiresAt.Add(maxSkew)) {
		return Result{}, fmt.Errorf("the setup code expired at %s: ask the operator for a new one (pairgate setup-code)", sc.ExpiresAt.UTC().Format(time.RFC3339))
	}
	key, created, err := LoadOrCreateKey(o.KeyFile)
	if err != nil {
		return Result{}, err
	}
	id := DeviceID(key.Public().(ed25519.PublicKey))
	if created {
		fmt.Fprintf(o.Out, "Created a new device key in %s\n", o.KeyFile)
	}
	// The token is delivered once: make sure it can be saved before the
	// single-use setup token is spent.
	if err := checkWritable(o.TokenFile); err != nil {
		return Result{}, err
	}

	p := &pairing{o: o, url: url, key: key, id: id}
	fmt.Fprintf(o.Out, "Pairing with %s as device %s\n", termtext.Escape(url), id)
	a, err := p.run(ctx, sc.Token)
	if err != nil {
		return Result{}, err
	}
	creds := Credentials{Version: 1, URL: url, DeviceID: id, DeviceToken: a.token, Role: a.role, Scopes: a.scopes, PairedAt: o.Now().UTC().Truncate(time.Second)}
	if err := writeCredentials(o.TokenFile, creds); err != nil {
		return Result{}, fmt.Errorf("paired, but saving the device token failed (it cannot be delivered again; pair again with a new setup code): %w", err)
	}
	fmt.Fprintf(o.Out, "Approved. Device token saved in %s\n", o.TokenFile)

	role, scopes, err := authenticate(ctx, url, key, id, a.token, o.Dialer, o.Now)
	if err != nil {
		return Result{DeviceID: id, Role: a.role, Scopes: a.scopes, TokenFile: o.TokenFile},
			fmt.Errorf("paired and saved the device token in %s, but authenticating with it failed: %w", o.TokenFile, err)
	}
	fmt.Fprintf(o.Out, "Authenticated as %s\n", termtext.Escape(role))
	return Result{DeviceID: id, Role: role, Scopes: scopes, TokenFile: o.TokenFile}, nil
}

func (o Options) withDefaults() (Options, error) {
	if o.SetupCode == "" {
		return o, errors.New("no setup code: pass the code that pairgate setup-code printed")
	}
	if o.KeyFile == "" {
		return o, errors.New("no key file: say where the device key is (or is to be created)")
	}
	if o.TokenFile == "" {
		o.TokenFile = o.KeyFile + ".token"
	}
	if filepath.Clean(o.TokenFile) == filepath.Clean(o.KeyFile) {
		return o, errors.New("the token file and the key file must differ")
	}
	if o.Name == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			h = "companion"
		}
		o.Name = termtext.Clean(h, device.MaxNameLen)
	}
	if o.Platform == "" {
		o.Platform = runtime.GOOS
	}
	if !utf8.ValidString(o.Name) || len(o.Name) > device.MaxNameLen {
		return o, fmt.Errorf("the device name must be valid UTF-8 of at most %d bytes", device.MaxNameLen)
	}
	if !utf8.ValidString(o.Platform) || len(o.Platform) > device.MaxPlatformLen {
		return o, fmt.Errorf("the platform must be valid UTF-8 of at most %d bytes", device.MaxPlatformLen)
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Dialer == nil {
		o.Dialer = defaultDialer
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ReconnectBackoff <= 0 {
		o.ReconnectBackoff = time.Second
	}
	o.ReconnectBackoff = min(o.ReconnectBackoff, maxBackoff)
	return o, nil
}

// Auth authenticates a paired device on a new connection to url (the /pair
// URL saved with the credentials) and returns its role and scopes. The
// session is then closed. deviceID may be empty; if given it must be the
// key's. token is the device_token text as the server delivered it.
func Auth(ctx context.Context, url string, key ed25519.PrivateKey, deviceID, token string, dial ...Dialer) (role string, scopes []string, err error) {
	return AuthAt(ctx, time.Now, url, key, deviceID, token, dial...)
}

// AuthAt is Auth with now as the clock that dates the signed auth message,
// as Options.Now is for Pair.
func AuthAt(ctx context.Context, now func() time.Time, url string, key ed25519.PrivateKey, deviceID, token string, dial ...Dialer) (role string, scopes []string, err error) {
	d := Dialer(defaultDialer)
	if len(dial) > 0 && dial[0] != nil {
		d = dial[0]
	}
	return authenticate(ctx, url, key, deviceID, token, d, now)
}

func authenticate(ctx context.Context, url string, key ed25519.PrivateKey, deviceID, token string, d Dialer, now func() time.Time) (string, []string, error) {
	if len(key) != ed25519.PrivateKeySize {
		return "", nil, errors.New("auth: not an Ed25519 private key")
	}
	id := DeviceID(key.Public().(ed25519.PublicKey))
	if deviceID != "" && deviceID != id {
		return "", nil, fmt.Errorf("auth: device_id %s is not the hash of this key (%s)", deviceID, id)
	}
	if token == "" {
		return "", nil, errors.New("auth: no device token")
	}
	c, ch, err := connect(ctx, d, url, dialAttempts, time.Second, io.Discard)
	if err != nil {
		return "", nil, err
	}
	defer c.CloseNow()
	signedAt := now().UnixMilli()
	msg := authMsg{Type: "auth", DeviceID: id, DeviceToken: token, SignedAt: signedAt,
		Signature: sign(key, authString(ch.Nonce, id, signedAt))}
	if err := write(ctx, c, msg); err != nil {
		return "", nil, fmt.Errorf("sending auth: %w", err)
	}
	m, err := readMsg(ctx, c, replyTimeout)
	if err != nil {
		return "", nil, fmt.Errorf("waiting for the answer to auth: %w", err)
	}
	switch m.Type {
	case "authenticated":
		if m.DeviceID != id {
			return "", nil, fmt.Errorf("the server authenticated device %q, not this one (%s)", m.DeviceID, id)
		}
		if m.Role == "" {
			return "", nil, errors.New(`the server's "authenticated" names no role`)
		}
		c.Close(websocket.StatusNormalClosure, "")
		return m.Role, nonNil(m.Scopes), nil
	case "error":
		return "", nil, m.protocolError()
	}
	return "", nil, unexpected(m, "authenticated")
}

// pairing is one Pair in progress.
type pairing struct {
	o   Options
	url string
	key ed25519.PrivateKey
	id  string

	// From pending (of the pairing connection).
	requestID string
	checkCode string    // computed by this device from the pairing connection's nonce
	expiresAt time.Time // server clock
	offset    time.Duration
}

type approval struct {
	token, role string
	scopes      []string
}

// run pairs on one connection, then waits, resuming as needed.
func (p *pairing) run(ctx context.Context, token string) (approval, error) {
	c, ch, err := connect(ctx, p.o.Dialer, p.url, dialAttempts, p.o.ReconnectBackoff, p.o.Out)
	if err != nil {
		return approval{}, err
	}
	now := p.o.Now()
	p.offset = time.UnixMilli(ch.ServerTime).Sub(now)
	if p.offset > maxSkew || p.offset < -maxSkew {
		rel := "ahead of"
		if p.offset > 0 {
			rel = "behind"
		}
		fmt.Fprintf(p.o.Out, "Warning: this device's clock is %s %s the server's; the server may refuse with clock_skew until it is set right\n",
			p.offset.Abs().Round(time.Second), rel)
	}
	pub := p.key.Public().(ed25519.PublicKey)
	signedAt := now.UnixMilli()
	msg := pairMsg{
		Type:  "pair",
		Token: token,
		Device: deviceInfo{
			PublicKey: b64.EncodeToString(pub),
			Name:      p.o.Name,
			Platform:  p.o.Platform,
		},
		SignedAt:  signedAt,
		Signature: sign(p.key, pairString(ch.Nonce, p.id, signedAt, token)),
	}
	p.checkCode = checkCode(ch.Nonce, p.id)
	if err := write(ctx, c, msg); err != nil {
		c.CloseNow()
		return approval{}, fmt.Errorf("sending pair: %w", err)
	}
	m, err := readMsg(ctx, c, replyTimeout)
	if err != nil {
		c.CloseNow()
		return approval{}, fmt.Errorf("waiting for the answer to pair: %w", err)
	}
	if m.Type != "pending" {
		c.CloseNow()
		return approval{}, p.verdict(m, "pending")
	}
	if err := p.acceptPending(m, true); err != nil {
		c.CloseNow()
		return approval{}, err
	}
	fmt.Fprintf(p.o.Out, "Check code: %s — make sure the operator sees the same code\n", termtext.Escape(p.checkCode))
	fmt.Fprintf(p.o.Out, "Waiting for approval… (request %s, expires %s)\n", termtext.Escape(p.requestID), p.expiresAt.Format(time.RFC3339))
	return p.wait(ctx, c)
}

// acceptPending checks a pending message against what this device knows.
// first marks the pending of the pairing connection, which sets the request.
func (p *pairing) acceptPending(m inbound, first bool) error {
	if m.DeviceID != p.id {
		return fmt.Errorf("the server's pending names device %q, not this one (%s)", m.DeviceID, p.id)
	}
	if m.CheckCode != p.checkCode {
		return fmt.Errorf("%w: this device computed %s but the server announced %q; something between this device and the gateway is relaying or tampering with the connection: do not approve, and pair again with a new setup code over a trusted network",
			ErrCheckCodeMismatch, p.checkCode, m.CheckCode)
	}
	exp, err := time.Parse(time.RFC3339, m.ExpiresAt)
	if err != nil {
		return fmt.Errorf("the server's pending has no valid expires_at (%q)", m.ExpiresAt)
	}
	if first {
		if m.RequestID == "" {
			return errors.New("the server's pending has no request_id")
		}
		p.requestID = m.RequestID
	} else if m.RequestID != p.requestID {
		return fmt.Errorf("the server answered resume with request %q, not %q", m.RequestID, p.requestID)
	}
	p.expiresAt = exp
	return nil
}

// verdict turns a final (non-pending) message into the result of Pair.
func (p *pairing) verdict(m inbound, want string) error {
	switch m.Type {
	case "rejected":
		return ErrRejected
	case "expired":
		return ErrExpired
	case "error":
		return m.protocolError()
	}
	return unexpected(m, want)
}

// remaining is how long until the request expires, by the server's clock.
func (p *pairing) remaining() time.Duration {
	return p.expiresAt.Sub(p.o.Now().Add(p.offset))
}

// wait waits on c for the operator's decision; when c drops it reconnects
// with resume, until the decision, ctx's end or the request's expiry.
func (p *pairing) wait(ctx context.Context, c *websocket.Conn) (approval, error) {
	backoff := p.o.ReconnectBackoff
	var lastErr error
	for {
		if c != nil {
			a, done, err := p.waitOn(ctx, c)
			c.CloseNow()
			c = nil
			if done {
				return a, err
			}
			lastErr = err
		}
		if err := ctx.Err(); err != nil {
			return approval{}, fmt.Errorf("stopped waiting for approval (request %s): %w", p.requestID, err)
		}
		left := p.remaining() + expiryGrace
		if left <= 0 {
			return approval{}, fmt.Errorf("%w (no connection to the gateway since: %v)", ErrExpired, lastErr)
		}
		fmt.Fprintln(p.o.Out, "Reconnecting…")
		t := time.NewTimer(min(backoff, left))
		select {
		case <-ctx.Done():
			t.Stop()
			return approval{}, fmt.Errorf("stopped waiting for approval (request %s): %w", p.requestID, ctx.Err())
		case <-t.C:
		}
		backoff = min(2*backoff, maxBackoff)
		nc, a, done, err := p.resume(ctx)
		if done {
			return a, err
		}
		if err != nil {
			lastErr = err
			continue
		}
		c = nc
		backoff = p.o.ReconnectBackoff
	}
}

// resume opens a new connection and sends resume signed with its nonce. It
// returns the connection to wait on (still pending), or done with the
// outcome, or an error worth retrying.
func (p *pairing) resume(ctx context.Context) (*websocket.Conn, approval, bool, error) {
	c, ch, err := connect(ctx, p.o.Dialer, p.url, 1, 0, io.Discard)
	if err != nil {
		return nil, approval{}, false, err
	}
	signedAt := p.o.Now().UnixMilli()
	msg := resumeMsg{Type: "resume", RequestID: p.requestID, DeviceID: p.id, SignedAt: signedAt,
		Signature: sign(p.key, resumeString(ch.Nonce, p.requestID, p.id, signedAt))}
	if err := write(ctx, c, msg); err != nil {
		c.CloseNow()
		return nil, approval{}, false, fmt.Errorf("sending resume: %w", err)
	}
	m, err := readMsg(ctx, c, replyTimeout)
	if err != nil {
		c.CloseNow()
		return nil, approval{}, false, fmt.Errorf("waiting for the answer to resume: %w", err)
	}
	switch m.Type {
	case "pending":
		// The server repeats the pairing connection's check code, not one
		// of this connection's nonce.
		if err := p.acceptPending(m, false); err != nil {
			c.CloseNow()
			return nil, approval{}, true, err
		}
		return c, approval{}, false, nil
	case "approved":
		a, err := p.acceptApproved(m)
		c.Close(websocket.StatusNormalClosure, "")
		return nil, a, true, err
	case "error":
		c.CloseNow()
		if m.Code == "rate_limited" {
			return nil, approval{}, false, m.protocolError()
		}
		return nil, approval{}, true, m.protocolError()
	}
	c.CloseNow()
	return nil, approval{}, true, p.verdict(m, "pending or approved")
}

// waitOn reads c until the decision (done) or until c drops (not done, with
// the reason). A half-open socket is found by pinging.
func (p *pairing) waitOn(ctx context.Context, c *websocket.Conn) (approval, bool, error) {
	rctx, cancel := context.WithTimeout(ctx, p.remaining()+expiryGrace)
	defer cancel()

	var wg sync.WaitGroup
	stop := make(chan struct{})
	defer wg.Wait()
	defer close(stop)
	wg.Go(func() {
		t := time.NewTicker(pingInterval)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			pctx, pcancel := context.WithTimeout(rctx, pingTimeout)
			err := c.Ping(pctx)
			pcancel()
			if err != nil {
				select {
				case <-stop:
				default:
					c.CloseNow() // unblocks the read below: resume on a new socket
				}
				return
			}
		}
	})

	for {
		m, err := readMsg(rctx, c, 0)
		if err != nil {
			switch {
			case ctx.Err() != nil:
				return approval{}, true, fmt.Errorf("stopped waiting for approval (request %s): %w", p.requestID, ctx.Err())
			case rctx.Err() != nil:
				return approval{}, true, fmt.Errorf("%w (the gateway sent no answer by %s)", ErrExpired, p.expiresAt.Format(time.RFC3339))
			case websocket.CloseStatus(err) == websocket.StatusPolicyViolation:
				return approval{}, true, fmt.Errorf("the gateway closed the connection as a policy violation: %w", err)
			}
			return approval{}, false, err
		}
		switch m.Type {
		case "pending":
			if err := p.acceptPending(m, false); err != nil {
				return approval{}, true, err
			}
			continue
		case "approved":
			a, err := p.acceptApproved(m)
			if err == nil {
				c.Close(websocket.StatusNormalClosure, "")
			}
			return a, true, err
		}
		return approval{}, true, p.verdict(m, "approved, rejected or expired")
	}
}

func (p *pairing) acceptApproved(m inbound) (approval, error) {
	if m.DeviceID != p.id {
		return approval{}, fmt.Errorf("the server approved device %q, not this one (%s)", m.DeviceID, p.id)
	}
	if raw, err := b64.Strict().DecodeString(m.DeviceToken); err != nil || len(raw) != 32 {
		return approval{}, errors.New("the server's approved carries no valid device_token (32 bytes, base64url)")
	}
	if m.Role == "" {
		return approval{}, errors.New("the server's approved names no role")
	}
	return approval{token: m.DeviceToken, role: m.Role, scopes: nonNil(m.Scopes)}, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Messages.

var b64 = base64.RawURLEncoding

type deviceInfo struct {
	PublicKey string `json:"public_key"`
	Name      string `json:"name"`
	Platform  string `json:"platform"`
}

type pairMsg struct {
	Type      string     `json:"type"`
	Token     string     `json:"token"`
	Device    deviceInfo `json:"device"`
	SignedAt  int64      `json:"signed_at"`
	Signature string     `json:"signature"`
}

type resumeMsg struct {
	Type      string `json:"type"`
	RequestID string `json:"request_id"`
	DeviceID  string `json:"device_id"`
	SignedAt  int64  `json:"signed_at"`
	Signature string `json:"signature"`
}

type authMsg struct {
	Type        string `json:"type"`
	DeviceID    string `json:"device_id"`
	DeviceToken string `json:"device_token"`
	SignedAt    int64  `json:"signed_at"`
	Signature   string `json:"signature"`
}

// inbound is every server message; which fields apply depends on Type.
type inbound struct {
	Type        string   `json:"type"`
	Nonce       string   `json:"nonce"`
	ServerTime  int64    `json:"server_time"`
	RequestID   string   `json:"request_id"`
	DeviceID    string   `json:"device_id"`
	CheckCode   string   `json:"check_code"`
	ExpiresAt   string   `json:"expires_at"`
	DeviceToken string   `json:"device_token"`
	Role        string   `json:"role"`
	Scopes      []string `json:"scopes"`
	Code        string   `json:"code"`
	Message     string   `json:"message"`
}

func (m inbound) protocolError() error {
	if m.Code == "" {
		return &ProtocolError{Code: "bad_request", Message: "the server sent an error without a code: " + m.Message}
	}
	return &ProtocolError{Code: m.Code, Message: m.Message}
}

func unexpected(m inbound, want string) error {
	return fmt.Errorf("protocol violation: the server sent %q where %s was expected", m.Type, want)
}

// readMsg reads one server message, within timeout if it is positive.
func readMsg(ctx context.Context, c *websocket.Conn, timeout time.Duration) (inbound, error) {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	var m inbound
	if err := wsjson.Read(ctx, c, &m); err != nil {
		return inbound{}, err
	}
	return m, nil
}

func write(ctx context.Context, c *websocket.Conn, v any) error {
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	return wsjson.Write(ctx, c, v)
}

// connect dials url (retrying transient failures up to attempts times) and
// reads the challenge.
func connect(ctx context.Context, dial Dialer, url string, attempts int, backoff time.Duration, out io.Writer) (*websocket.Conn, inbound, error) {
	var c *websocket.Conn
	var err error
	for i := 1; ; i++ {
		dctx, cancel := context.WithTimeout(ctx, dialTimeout)
		c, err = dial(dctx, url)
		cancel()
		if err == nil {
			break
		}
		var perm *permanentError
		if i >= attempts || ctx.Err() != nil || errors.As(err, &perm) {
			return nil, inbound{}, fmt.Errorf("connecting to %s: %w", url, err)
		}
		fmt.Fprintf(out, "Could not connect (%s); retrying in %s\n", termtext.Escape(err.Error()), backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, inbound{}, fmt.Errorf("connecting to %s: %w", url, ctx.Err())
		case <-t.C:
		}
		backoff = min(2*backoff, maxBackoff)
	}
	c.SetReadLimit(readLimit)
	m, err := readMsg(ctx, c, challengeTimeout)
	if err != nil {
		c.CloseNow()
		return nil, inbound{}, fmt.Errorf("waiting for the challenge from %s: %w", url, err)
	}
	if m.Type == "error" {
		c.CloseNow()
		return nil, inbound{}, m.protocolError()
	}
	if m.Type != "challenge" {
		c.CloseNow()
		return nil, inbound{}, unexpected(m, "challenge")
	}
	if raw, err := b64.Strict().DecodeString(m.Nonce); err != nil || len(raw) != 32 {
		c.CloseNow()
		return nil, inbound{}, errors.New("protocol violation: the challenge's nonce is not 32 bytes in base64url")
	}
	return c, m, nil
}

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

var noRedirects = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

func defaultDialer(ctx context.Context, url string) (*websocket.Conn, error) {
	c, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: noRedirects})
	if err != nil {
		// A 4xx answer (no such endpoint, a redirect) will not change by
		// retrying in a second; a 5xx (a proxy whose backend restarts) may.
		if resp != nil && resp.StatusCode >= 300 && resp.StatusCode < 500 {
			return nil, &permanentError{err}
		}
		return nil, err
	}
	return c, nil
}

// The protocol's derived values (SPEC section 3). Each field is written as
// it travels in JSON: the nonce as its base64url text, signed_at in decimal,
// device_id in lowercase hex; fields joined by "\n", no trailing newline.

// DeviceID is the lowercase hex SHA-256 of the raw 32-byte public key.
func DeviceID(pub ed25519.PublicKey) string {
	h := sha256.Sum256(pub)
	return hex.EncodeToString(h[:])
}

func pairString(nonce, deviceID string, signedAt int64, token string) string {
	th := sha256.Sum256([]byte(token))
	return "pairgate/v1/pair\n" + nonce + "\n" + deviceID + "\n" + strconv.FormatInt(signedAt, 10) + "\n" + hex.EncodeToString(th[:])
}

func resumeString(nonce, requestID, deviceID string, signedAt int64) string {
	return "pairgate/v1/resume\n" + nonce + "\n" + requestID + "\n" + deviceID + "\n" + strconv.FormatInt(signedAt, 10)
}

func authString(nonce, deviceID string, signedAt int64) string {
	return "pairgate/v1/auth\n" + nonce + "\n" + deviceID + "\n" + strconv.FormatInt(signedAt, 10)
}

// checkCode is the six digits shown on the device: the first 4 bytes of
// SHA-256("pairgate/v1/check\n" + nonce + "\n" + device_id), big-endian,
// mod 1,000,000, zero-padded.
func checkCode(nonce, deviceID string) string {
	h := sha256.Sum256([]byte("pairgate/v1/check\n" + nonce + "\n" + deviceID))
	return fmt.Sprintf("%06d", binary.BigEndian.Uint32(h[:4])%1_000_000)
}

func sign(key ed25519.PrivateKey, s string) string {
	return b64.EncodeToString(ed25519.Sign(key, []byte(s)))
}

// Files.

// LoadOrCreateKey reads the device key at path, creating it (mode 0600, its
// directory 0700) if it does not exist. created reports a new key.
func LoadOrCreateKey(path string) (key ed25519.PrivateKey, created bool, err error) {
	key, err = LoadKey(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return key, false, err
	}
	seed := make([]byte, ed25519.SeedSize)
	rand.Read(seed)
	werr := secret.WriteNew(path, []byte(b64.EncodeToString(seed)+"\n"))
	if werr != nil && !errors.Is(werr, fs.ErrExist) {
		return nil, false, fmt.Errorf("create device key %s: %w", path, werr)
	}
	// Whoever won a race to create it, use what is there now.
	key, err = LoadKey(path)
	return key, err == nil && werr == nil, err
}

// LoadKey reads a device key file (see the package doc). A file readable by
// group or others is refused with the chmod that fixes it.
func LoadKey(path string) (ed25519.PrivateKey, error) {
	data, err := secret.ReadPrivate(path, "device key")
	if err != nil {
		return nil, err
	}
	seed, err := b64.Strict().DecodeString(strings.TrimSpace(string(data)))
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("device key %s must hold a %d-byte Ed25519 seed in base64url: it is damaged (deleting it makes a new device that must be paired again)", path, ed25519.SeedSize)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// ReadCredentials reads a credentials file written by Pair.
func ReadCredentials(path string) (Credentials, error) {
	data, err := secret.ReadPrivate(path, "credentials file")
	if err != nil {
		return Credentials{}, err
	}
	var c Credentials
	if err := json.Unmarshal(data, &c); err != nil || c.Version != 1 || c.URL == "" || c.DeviceID == "" || c.DeviceToken == "" {
		return Credentials{}, fmt.Errorf("credentials file %s is damaged or not a pairgate companion's", path)
	}
	return c, nil
}

// checkWritable makes the token file's directory (0700) and checks that a
// file can be created in it.
func checkWritable(path string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("token file: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil && !fi.Mode().IsRegular() {
		return fmt.Errorf("token file %s exists and is not a regular file", path)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("token file: cannot write in %s: %w", dir, err)
	}
	f.Close()
	return os.Remove(f.Name())
}

// writeCredentials replaces path atomically: a temporary file created 0600
// in the same directory, synced, then renamed over path. At no moment is
// the token in a file others may read.
func writeCredentials(path string, c Credentials) error {
	data, err := json.Marshal(c)
	if err != nil {
		return err
	}
	return secret.WriteReplace(path, append(data, '\n'))
}
