package device

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"filippo.io/edwards25519"
	"github.com/coder/websocket"

	"github.com/pairgate/pairgate/internal/termtext"
	"github.com/pairgate/pairgate/notice"
	"github.com/pairgate/pairgate/store"
)

// Protocol error codes (SPEC section 3).
const (
	CodeBadRequest     = "bad_request"
	CodeInvalidToken   = "invalid_token"
	CodeTokenExpired   = "token_expired"
	CodeTokenUsed      = "token_used"
	CodeBadSignature   = "bad_signature"
	CodeClockSkew      = "clock_skew"
	CodeUnknownRequest = "unknown_request"
	CodeNotPaired      = "not_paired"
	CodeRevoked        = "revoked"
	CodeRateLimited    = "rate_limited"
)

// Limits, in bytes, on the text a device gives about itself in pair and on a
// setup code's label. The text is only ever shown to the operator, beside
// the check code they compare, so it is cleaned rather than refused
// (termtext.Clean): control and bidi characters dropped, invalid UTF-8
// replaced, then cut on a rune boundary. A name with nothing left is
// accepted and shown as "-": refusing it would protect nothing.
const (
	MaxNameLen     = 64 // device.name
	MaxPlatformLen = 32 // device.platform
	MaxLabelLen    = 64 // SetupParams.Label
)

// protoError is sent as {"type":"error"} and closes the socket with 1008.
type protoError struct{ code, msg string }

func (e *protoError) Error() string { return e.code + ": " + e.msg }

func perr(code, format string, args ...any) *protoError {
	return &protoError{code: code, msg: fmt.Sprintf(format, args...)}
}

// inbound is every client message; which fields apply depends on Type.
type inbound struct {
	Type        string      `json:"type"`
	Token       string      `json:"token,omitempty"`
	Device      *deviceInfo `json:"device,omitempty"`
	SignedAt    int64       `json:"signed_at,omitempty"`
	Signature   string      `json:"signature,omitempty"`
	RequestID   string      `json:"request_id,omitempty"`
	DeviceID    string      `json:"device_id,omitempty"`
	DeviceToken string      `json:"device_token,omitempty"`
}

type deviceInfo struct {
	PublicKey string `json:"public_key"`
	Name      string `json:"name"`
	Platform  string `json:"platform"`
}

var b64url = base64.RawURLEncoding

// ServeHTTP is GET /pair: the device-pairing WebSocket.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Companion apps are not browsers; refusing cross-origin browser
	// requests (the library's default) stops a web page from pairing.
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	c.SetReadLimit(4 * MaxFrame) // a backstop; frames over MaxFrame get a protocol error first
	ctx := r.Context()
	addr := remoteHost(r.RemoteAddr)
	err = s.session(ctx, c, addr, s.audiences(r))
	var pe *protoError
	switch {
	case errors.As(err, &pe):
		s.log.Info("device: refused", "code", pe.code, "remote", addr)
		wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		writeJSON(wctx, c, map[string]string{"type": "error", "code": pe.code, "message": pe.msg})
		c.Close(websocket.StatusPolicyViolation, pe.code)
	case err != nil:
		s.log.Debug("device: connection ended", "remote", addr, "err", err)
	default:
		c.Close(websocket.StatusNormalClosure, "")
	}
}

// audiences are the URLs a setup token may have been issued for to be good
// here: the configured public URL, and the URL this request arrived at (so a
// code made with --public-url works when the device connects through that
// URL).
func (s *Service) audiences(r *http.Request) []string {
	var out []string
	if u, _, err := s.url(); err == nil {
		out = append(out, u)
	}
	scheme := "ws"
	if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		scheme = "wss"
	}
	return append(out, scheme+"://"+strings.ToLower(r.Host)+r.URL.Path)
}

func remoteHost(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

func writeJSON(ctx context.Context, c *websocket.Conn, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return c.Write(ctx, websocket.MessageText, b)
}

// errIdle means the idle timer already told the client and closed the
// socket.
var errIdle = errors.New("idle client closed")

// read reads one client message: a text frame of at most MaxFrame bytes
// holding one JSON object with known fields, within idle. A read cut short
// by a context would close the socket without a word, so a timer sends the
// protocol error and closes instead.
func read(ctx context.Context, c *websocket.Conn, idle time.Duration) (inbound, error) {
	var fired atomic.Bool
	timer := time.AfterFunc(idle, func() {
		fired.Store(true)
		wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		writeJSON(wctx, c, map[string]string{"type": "error", "code": CodeBadRequest, "message": "nothing received for " + idle.String()})
		c.Close(websocket.StatusPolicyViolation, CodeBadRequest)
	})
	defer timer.Stop()
	typ, rd, err := c.Reader(ctx)
	if err != nil {
		if fired.Load() {
			return inbound{}, errIdle
		}
		return inbound{}, err
	}
	timer.Stop()
	if typ != websocket.MessageText {
		return inbound{}, perr(CodeBadRequest, "send JSON text frames, not binary")
	}
	data, err := io.ReadAll(io.LimitReader(rd, MaxFrame+1))
	if err != nil {
		return inbound{}, err
	}
	return parseFrame(data)
}

// parseFrame decodes one client frame: at most MaxFrame bytes of one JSON
// object whose fields all belong to the protocol, and nothing after it.
func parseFrame(data []byte) (inbound, error) {
	if len(data) > MaxFrame {
		return inbound{}, perr(CodeBadRequest, "frame over %d bytes", MaxFrame)
	}
	var m inbound
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return inbound{}, perr(CodeBadRequest, "not a JSON object of this protocol: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return inbound{}, perr(CodeBadRequest, "trailing data after the JSON object")
	}
	return m, nil
}

// session runs one connection: challenge, then one of pair, resume or auth.
func (s *Service) session(ctx context.Context, c *websocket.Conn, addr string, audiences []string) error {
	var raw [32]byte
	rand.Read(raw[:])
	nonce := b64url.EncodeToString(raw[:])
	if err := writeJSON(ctx, c, map[string]any{"type": "challenge", "nonce": nonce, "server_time": s.now().UnixMilli()}); err != nil {
		return err
	}
	m, err := read(ctx, c, s.idle)
	if err != nil {
		return err
	}
	switch m.Type {
	case "pair", "resume", "auth":
	default:
		return perr(CodeBadRequest, "unknown message type %q: want pair, resume or auth", m.Type)
	}
	if !s.limiter.allow(addr, s.now()) {
		return perr(CodeRateLimited, "too many attempts from this address; wait a minute")
	}
	if d := time.Duration(s.now().UnixMilli()-m.SignedAt) * time.Millisecond; d > MaxSkew || d < -MaxSkew {
		return perr(CodeClockSkew, "signed_at is %s away from server time; fix the device's clock", d.Round(time.Second))
	}
	switch m.Type {
	case "pair":
		return s.pair(ctx, c, nonce, audiences, m, addr)
	case "resume":
		return s.resume(ctx, c, nonce, m)
	}
	return s.auth(ctx, c, nonce, m)
}

// usableKey reports whether pub is the canonical encoding of a point whose
// order is not small. Under a small-order key (the identity and the other 7
// points of the torsion subgroup, [8]P = identity) a signature proves
// nothing: with the identity, R = identity and S = 0 verify for every
// message. A non-canonical encoding is refused too: keys made by Ed25519
// key generation are always canonical, and one point must not have several
// device ids.
func usableKey(pub []byte) bool {
	p, err := new(edwards25519.Point).SetBytes(pub)
	if err != nil || !bytes.Equal(p.Bytes(), pub) {
		return false
	}
	return new(edwards25519.Point).MultByCofactor(p).Equal(edwards25519.NewIdentityPoint()) != 1
}

func verify(pub []byte, msg, sig string) error {
	raw, err := b64url.DecodeString(sig)
	if err != nil || len(pub) != ed25519.PublicKeySize || !ed25519.Verify(pub, []byte(msg), raw) {
		return perr(CodeBadSignature, "the signature does not verify")
	}
	return nil
}

func (s *Service) pair(ctx context.Context, c *websocket.Conn, nonce string, audiences []string, m inbound, addr string) error {
	if m.Device == nil || m.Token == "" {
		return perr(CodeBadRequest, `pair needs "token" and "device"`)
	}
	pub, err := b64url.DecodeString(m.Device.PublicKey)
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return perr(CodeBadRequest, "device.public_key must be 32 bytes, base64url without padding")
	}
	if !usableKey(pub) {
		return perr(CodeBadRequest, "device.public_key is not a usable Ed25519 public key (not a canonical point encoding, or of small order)")
	}
	tok, row, err := s.presented(ctx, m.Token, audiences)
	if err != nil {
		return err
	}
	deviceID := DeviceID(pub)
	if err := verify(pub, pairString(nonce, deviceID, m.SignedAt, m.Token), m.Signature); err != nil {
		return err
	}
	now := s.now()
	req := store.DeviceRequest{
		ID: newID("dreq_", 10), DeviceID: deviceID, PublicKey: pub,
		Name: termtext.Clean(m.Device.Name, MaxNameLen), Platform: termtext.Clean(m.Device.Platform, MaxPlatformLen),
		Role: row.Role, Scopes: row.Scopes, Label: row.Label, CheckCode: CheckCode(nonce, deviceID),
		Remote: addr, CreatedAt: now, ExpiresAt: now.Add(RequestTTL), Status: store.DevicePending,
	}
	text := notice.DeviceRequest{RequestID: req.ID, Name: req.Name, Platform: req.Platform, Role: req.Role, Label: req.Label,
		Remote: req.Remote, CheckCode: req.CheckCode}.Text()
	err = s.st.CreateDeviceRequest(ctx, req, row.ID, store.Actor{Name: "device:" + deviceID[:12], Source: "pair"},
		notice.Messages(s.owner(), store.Scope{}, text)...)
	switch {
	case errors.Is(err, store.ErrTokenUsed):
		return perr(CodeTokenUsed, msgTokenUsed)
	case errors.Is(err, store.ErrNotFound) && !now.Before(tok.ExpiresAt):
		return perr(CodeTokenExpired, msgTokenExpired)
	case errors.Is(err, store.ErrNotFound):
		return perr(CodeInvalidToken, msgInvalidToken)
	case err != nil:
		return err
	}
	s.log.Info("device: pairing requested", "request_id", req.ID, "device_id", deviceID, "name", req.Name)
	ctx, release := s.claim(ctx, req.ID)
	defer release()
	return s.await(ctx, c, req)
}

// What a device is told when its setup token is refused.
const (
	msgInvalidToken = "the setup code is not valid for this gateway; ask the operator for a new one"
	msgTokenExpired = "the setup code expired; ask the operator for a new one"
	msgTokenUsed    = "this setup code was used already; ask the operator for a new one"
)

// presented checks a setup token a device presented, in the order of SPEC
// section 3: what the token says by itself (Verify, which reads no storage,
// so a forged, truncated or retagged token costs no read), then the row
// stored under its id when it was issued. It returns the token and the row,
// or the protocol error to answer. The stored UsedAt only answers early: the
// store consumes the token atomically.
func (s *Service) presented(ctx context.Context, token string, audiences []string) (Token, store.SetupToken, error) {
	tok, err := s.keys.Verify(token, s.now())
	switch {
	case errors.Is(err, ErrTokenExpired):
		return Token{}, store.SetupToken{}, perr(CodeTokenExpired, msgTokenExpired)
	case err != nil:
		s.log.Debug("device: setup token refused", "err", err)
		return Token{}, store.SetupToken{}, perr(CodeInvalidToken, msgInvalidToken)
	}
	row, err := s.st.GetSetupToken(ctx, tok.ID.String())
	if errors.Is(err, store.ErrNotFound) {
		// Signed here but not stored: purged, or the store was restored
		// from a backup older than the code.
		s.log.Debug("device: setup token refused", "err", "no row stored for it")
		return Token{}, store.SetupToken{}, perr(CodeInvalidToken, msgInvalidToken)
	}
	if err != nil {
		return Token{}, store.SetupToken{}, err
	}
	if err := checkStored(tok, row, audiences); err != nil {
		s.log.Debug("device: setup token refused", "err", err)
		return Token{}, store.SetupToken{}, perr(CodeInvalidToken, msgInvalidToken)
	}
	if !row.UsedAt.IsZero() {
		return Token{}, store.SetupToken{}, perr(CodeTokenUsed, msgTokenUsed)
	}
	return tok, row, nil
}

// await sends pending and waits for the decision, the expiry, or the
// client leaving.
func (s *Service) await(ctx context.Context, c *websocket.Conn, req store.DeviceRequest) error {
	if err := writeJSON(ctx, c, map[string]any{"type": "pending", "request_id": req.ID, "device_id": req.DeviceID,
		"check_code": req.CheckCode, "expires_at": req.ExpiresAt.UTC().Format(time.RFC3339)}); err != nil {
		return err
	}
	// A closed socket ends the wait; the device may resume later.
	ctx = c.CloseRead(ctx)
	wake, unwatch := s.watchers.watch(req.ID)
	defer unwatch()
	expiry := time.NewTimer(req.ExpiresAt.Sub(s.now()))
	defer expiry.Stop()
	for {
		cur, err := s.st.GetDeviceRequest(ctx, req.ID)
		if err != nil && ctx.Err() != nil {
			return ctx.Err()
		}
		if err == nil {
			done, err := s.settle(ctx, c, cur)
			if done || err != nil {
				return err
			}
		} else {
			s.log.Warn("device: reading a pending request failed; will retry", "request_id", req.ID, "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-expiry.C:
			return writeJSON(ctx, c, map[string]string{"type": "expired"})
		case <-wake:
		case <-time.After(recheckAfter(err)):
		}
	}
}

// recheckAfter is how long a session waits before reading its state again
// when nothing wakes it: soon after a failed read, rarely otherwise.
func recheckAfter(readErr error) time.Duration {
	if readErr != nil {
		return readRetry
	}
	return sessionRecheck
}

// claim makes this connection the only one speaking for a request: an
// older connection (say, half-open after the device lost its network) is
// cancelled, so it can never be the one that takes the device token.
func (s *Service) claim(ctx context.Context, requestID string) (context.Context, func()) {
	ctx, cancel := context.WithCancel(ctx)
	w := &waiter{cancel: cancel}
	s.waitersMu.Lock()
	if older := s.waiters[requestID]; older != nil {
		older.cancel()
	}
	s.waiters[requestID] = w
	s.waitersMu.Unlock()
	return ctx, func() {
		cancel()
		s.waitersMu.Lock()
		if s.waiters[requestID] == w {
			delete(s.waiters, requestID)
		}
		s.waitersMu.Unlock()
	}
}

// settle answers a decided request: the token (once), rejected or expired.
// It reports whether the conversation is over.
func (s *Service) settle(ctx context.Context, c *websocket.Conn, r store.DeviceRequest) (bool, error) {
	switch {
	case r.Status == store.DeviceRejected:
		return true, writeJSON(ctx, c, map[string]string{"type": "rejected"})
	case r.Status == store.DevicePending && !s.now().Before(r.ExpiresAt):
		return true, writeJSON(ctx, c, map[string]string{"type": "expired"})
	case r.Status == store.DeviceApproved && r.Delivered:
		return true, perr(CodeUnknownRequest, "the device token for this request was delivered already; authenticate with auth")
	case r.Status == store.DeviceApproved:
		tok, hash := newDeviceToken()
		d, err := s.st.DeliverDeviceToken(ctx, r.ID, hash, s.now())
		if errors.Is(err, store.ErrNotFound) {
			return true, perr(CodeUnknownRequest, "the device token for this request was delivered already")
		}
		if err != nil {
			return true, err
		}
		s.log.Info("device: paired", "device_id", d.DeviceID, "request_id", r.ID)
		scopes := d.Scopes
		if scopes == nil {
			scopes = []string{}
		}
		return true, writeJSON(ctx, c, map[string]any{"type": "approved", "device_id": d.DeviceID, "device_token": tok,
			"role": d.Role, "scopes": scopes})
	}
	return false, nil
}

func (s *Service) resume(ctx context.Context, c *websocket.Conn, nonce string, m inbound) error {
	r, err := s.st.GetDeviceRequest(ctx, m.RequestID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && r.DeviceID != m.DeviceID) {
		return perr(CodeUnknownRequest, "no such pairing request for this device")
	}
	if err != nil {
		return err
	}
	if err := verify(r.PublicKey, resumeString(nonce, r.ID, r.DeviceID, m.SignedAt), m.Signature); err != nil {
		return err
	}
	ctx, release := s.claim(ctx, r.ID)
	defer release()
	if r, err = s.st.GetDeviceRequest(ctx, r.ID); err != nil {
		return err
	}
	if r.Status == store.DevicePending && s.now().Before(r.ExpiresAt) {
		return s.await(ctx, c, r)
	}
	_, err = s.settle(ctx, c, r)
	return err
}

func (s *Service) auth(ctx context.Context, c *websocket.Conn, nonce string, m inbound) error {
	d, err := s.st.GetDevice(ctx, m.DeviceID)
	if errors.Is(err, store.ErrNotFound) {
		return perr(CodeNotPaired, "this device is not paired")
	}
	if err != nil {
		return err
	}
	if err := verify(d.PublicKey, authString(nonce, d.DeviceID, m.SignedAt), m.Signature); err != nil {
		return err
	}
	if !d.RevokedAt.IsZero() {
		return perr(CodeRevoked, "this device was revoked")
	}
	presented := sha256.Sum256([]byte(m.DeviceToken))
	if subtle.ConstantTimeCompare(presented[:], d.TokenHash) != 1 {
		return perr(CodeNotPaired, "the device token is not valid (it may have been rotated)")
	}
	scopes := d.Scopes
	if scopes == nil {
		scopes = []string{}
	}
	if err := writeJSON(ctx, c, map[string]any{"type": "authenticated", "device_id": d.DeviceID, "role": d.Role, "scopes": scopes}); err != nil {
		return err
	}
	// last_seen_at is bookkeeping to the minute: written after the answer,
	// and at most once a minute, so a chatty device costs no fsync per auth.
	if now := s.now(); now.Sub(d.LastSeenAt) >= time.Minute {
		if err := s.st.TouchDevice(ctx, d.DeviceID, now); err != nil {
			s.log.Warn("device: recording last seen failed", "device_id", d.DeviceID, "err", err)
		}
	}
	// The session lasts until the device leaves, or is revoked or rotated.
	ctx = c.CloseRead(ctx)
	wake, unwatch := s.watchers.watch(d.DeviceID)
	defer unwatch()
	for {
		// The read after registering catches a change made between the
		// first read and the registration.
		cur, err := s.st.GetDevice(ctx, d.DeviceID)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return perr(CodeRevoked, "this device was removed")
		case err != nil && ctx.Err() != nil:
			return nil
		case err != nil:
			s.log.Warn("device: reading a paired device failed; will retry", "device_id", d.DeviceID, "err", err)
		case !cur.RevokedAt.IsZero():
			return perr(CodeRevoked, "this device was revoked")
		case subtle.ConstantTimeCompare(cur.TokenHash, d.TokenHash) != 1:
			return perr(CodeNotPaired, "the device token was rotated; authenticate with the new one")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
		case <-time.After(recheckAfter(err)):
		}
	}
}
