package companion

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/google/go-cmp/cmp"

	"github.com/pairgate/pairgate/device"
)

// The fake server below is the server side of SPEC section 3, written from
// the SPEC for these tests: it verifies signatures over strings it builds
// itself, checks signed_at, computes check codes, and refuses any field the
// SPEC does not name. It shares no code with the client.

type fakeErr struct{ code, msg string }

func (e *fakeErr) Error() string { return e.code + ": " + e.msg }

// errGone: the connection is already closed (dropped on purpose, or the
// client left); nothing more to send.
var errGone = errors.New("connection gone")

type fakeRequest struct {
	id, deviceID, checkCode string
	pub                     ed25519.PublicKey
	expiresAt               time.Time
	status                  string // pending, approved, rejected, expired
	delivered               bool
	decided                 chan struct{}
	// waiter is closed when a newer connection (a resume) takes over the
	// wait, so the token never goes to a socket the device has left.
	waiter chan struct{}
}

type fakeDevice struct {
	pub       ed25519.PublicKey
	tokenHash [32]byte
	role      string
	scopes    []string
}

type fakeServer struct {
	t      *testing.T
	srv    *httptest.Server
	url    string
	role   string
	scopes []string
	ttl    time.Duration
	now    func() time.Time

	// Knobs, set before the client starts.
	dropAfterPending int    // abruptly drop this many sockets right after pending
	tamper           bool   // announce a wrong check code
	newCodeOnResume  bool   // on resume, announce the code of the new nonce (wrong: the SPEC repeats the original)
	silent           bool   // never send expired on its own
	beforeResume     func() // called when a resume arrives, before it is handled

	created     chan string // request ids, as requests are created
	pendingSent chan string // the check code of every pending sent

	mu       sync.Mutex
	tokens   map[string]bool // setup token → used
	requests map[string]*fakeRequest
	devices  map[string]*fakeDevice
	nonces   []string
	received []string // message types, in order
}

func newFake(t *testing.T) *fakeServer {
	f := &fakeServer{
		t: t, role: "node", scopes: []string{"node.invoke", "node.events"}, ttl: 10 * time.Minute, now: time.Now,
		created:     make(chan string, 16),
		pendingSent: make(chan string, 16),
		tokens:      map[string]bool{},
		requests:    map[string]*fakeRequest{},
		devices:     map[string]*fakeDevice{},
	}
	f.srv = httptest.NewServer(f)
	t.Cleanup(f.srv.Close)
	f.url = "ws://" + f.srv.Listener.Addr().String() + "/pair"
	return f
}

// setupCode issues a setup token and wraps it as the SPEC's setup code.
func (f *fakeServer) setupCode() string {
	var r [16]byte
	rand.Read(r[:])
	token := "setup-" + hex.EncodeToString(r[:])
	f.mu.Lock()
	f.tokens[token] = false
	f.mu.Unlock()
	j, _ := json.Marshal(map[string]any{"v": 1, "url": f.url, "token": token, "expires_at": f.now().Add(10 * time.Minute).UTC().Format(time.RFC3339)})
	return base64.RawURLEncoding.EncodeToString(j)
}

func (f *fakeServer) decide(id, status string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.requests[id]
	if r == nil || r.status != "pending" {
		f.t.Errorf("fake: decide %s: no pending request", id)
		return
	}
	r.status = status
	close(r.decided)
}

func (f *fakeServer) seen() (nonces, received []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.nonces...), append([]string(nil), f.received...)
}

func (f *fakeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/pair" {
		http.NotFound(w, r)
		return
	}
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	err = f.session(ctx, c)
	var fe *fakeErr
	switch {
	case errors.As(err, &fe):
		wsjson.Write(ctx, c, map[string]string{"type": "error", "code": fe.code, "message": fe.msg})
		c.Close(websocket.StatusPolicyViolation, fe.code)
	case err != nil: // gone, or a dead socket: nothing to tell the client
	default:
		c.Close(websocket.StatusNormalClosure, "")
	}
}

// decodeStrict decodes one JSON object into v, refusing unknown fields.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &fakeErr{"bad_request", err.Error()}
	}
	if dec.More() {
		return &fakeErr{"bad_request", "trailing data"}
	}
	return nil
}

func fakeB64(s string, n int) ([]byte, bool) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	return b, err == nil && len(b) == n && base64.RawURLEncoding.EncodeToString(b) == s
}

func (f *fakeServer) checkSkew(signedAt int64) error {
	d := time.Duration(f.now().UnixMilli()-signedAt) * time.Millisecond
	if d > 2*time.Minute || d < -2*time.Minute {
		return &fakeErr{"clock_skew", "signed_at is " + d.String() + " off"}
	}
	return nil
}

func (f *fakeServer) session(ctx context.Context, c *websocket.Conn) error {
	var raw [32]byte
	rand.Read(raw[:])
	nonce := base64.RawURLEncoding.EncodeToString(raw[:])
	f.mu.Lock()
	f.nonces = append(f.nonces, nonce)
	f.mu.Unlock()
	if err := wsjson.Write(ctx, c, map[string]any{"type": "challenge", "nonce": nonce, "server_time": f.now().UnixMilli()}); err != nil {
		return err
	}
	typ, data, err := c.Read(ctx)
	if err != nil {
		return err
	}
	if typ != websocket.MessageText {
		return &fakeErr{"bad_request", "binary frame"}
	}
	var head struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return &fakeErr{"bad_request", err.Error()}
	}
	f.mu.Lock()
	f.received = append(f.received, head.Type)
	f.mu.Unlock()
	switch head.Type {
	case "pair":
		return f.pair(ctx, c, nonce, data)
	case "resume":
		return f.resume(ctx, c, nonce, data)
	case "auth":
		return f.auth(ctx, c, nonce, data)
	}
	return &fakeErr{"bad_request", "unknown type " + head.Type}
}

func (f *fakeServer) pair(ctx context.Context, c *websocket.Conn, nonce string, data []byte) error {
	var m struct {
		Type   string `json:"type"`
		Token  string `json:"token"`
		Device struct {
			PublicKey string `json:"public_key"`
			Name      string `json:"name"`
			Platform  string `json:"platform"`
		} `json:"device"`
		SignedAt  int64  `json:"signed_at"`
		Signature string `json:"signature"`
	}
	if err := decodeStrict(data, &m); err != nil {
		return err
	}
	pub, ok := fakeB64(m.Device.PublicKey, 32)
	if !ok || m.Token == "" || m.Device.Name == "" || m.Device.Platform == "" {
		return &fakeErr{"bad_request", "pair needs token, device.public_key (32 bytes), name and platform"}
	}
	if err := f.checkSkew(m.SignedAt); err != nil {
		return err
	}
	h := sha256.Sum256(pub)
	deviceID := hex.EncodeToString(h[:])
	th := sha256.Sum256([]byte(m.Token))
	signed := fmt.Sprintf("pairgate/v1/pair\n%s\n%s\n%d\n%x", nonce, deviceID, m.SignedAt, th)
	sig, ok := fakeB64(m.Signature, 64)
	if !ok || !ed25519.Verify(pub, []byte(signed), sig) {
		return &fakeErr{"bad_signature", "pair signature does not verify"}
	}

	f.mu.Lock()
	used, known := f.tokens[m.Token]
	switch {
	case !known:
		f.mu.Unlock()
		return &fakeErr{"invalid_token", "unknown setup token"}
	case used:
		f.mu.Unlock()
		return &fakeErr{"token_used", "this setup code was used already"}
	}
	f.tokens[m.Token] = true
	var idb [8]byte
	rand.Read(idb[:])
	cc := sha256.Sum256([]byte("pairgate/v1/check\n" + nonce + "\n" + deviceID))
	req := &fakeRequest{
		id: "dreq_" + hex.EncodeToString(idb[:]), deviceID: deviceID, pub: pub,
		checkCode: fmt.Sprintf("%06d", binary.BigEndian.Uint32(cc[:4])%1000000),
		expiresAt: f.now().Add(f.ttl), status: "pending", decided: make(chan struct{}),
	}
	f.requests[req.id] = req
	f.mu.Unlock()
	f.created <- req.id
	return f.await(ctx, c, req, req.checkCode)
}

func (f *fakeServer) await(ctx context.Context, c *websocket.Conn, req *fakeRequest, code string) error {
	if f.tamper {
		n, _ := strconv.Atoi(code)
		code = fmt.Sprintf("%06d", (n+1)%1000000)
	}
	f.mu.Lock()
	if req.waiter != nil {
		close(req.waiter)
	}
	waiter := make(chan struct{})
	req.waiter = waiter
	f.mu.Unlock()
	if err := wsjson.Write(ctx, c, map[string]string{"type": "pending", "request_id": req.id, "device_id": req.deviceID,
		"check_code": code, "expires_at": req.expiresAt.UTC().Format(time.RFC3339)}); err != nil {
		return err
	}
	f.pendingSent <- code
	f.mu.Lock()
	drop := f.dropAfterPending > 0
	if drop {
		f.dropAfterPending--
	}
	f.mu.Unlock()
	if drop {
		c.CloseNow() // no close frame: like a network that went away
		return errGone
	}
	cctx := c.CloseRead(ctx)
	var expiry <-chan time.Time
	if !f.silent {
		t := time.NewTimer(time.Until(req.expiresAt))
		defer t.Stop()
		expiry = t.C
	}
	select {
	case <-req.decided:
	case <-waiter:
		return errGone // superseded by a resume
	case <-expiry:
		f.mu.Lock()
		if req.status == "pending" {
			req.status = "expired"
			close(req.decided)
		}
		f.mu.Unlock()
	case <-cctx.Done():
		return errGone // the client left; it may resume
	}
	return f.settle(ctx, c, req)
}

func (f *fakeServer) settle(ctx context.Context, c *websocket.Conn, req *fakeRequest) error {
	f.mu.Lock()
	var msg map[string]any
	switch {
	case req.status == "approved" && req.delivered:
		f.mu.Unlock()
		return &fakeErr{"unknown_request", "the token was delivered already"}
	case req.status == "approved":
		var tok [32]byte
		rand.Read(tok[:])
		text := base64.RawURLEncoding.EncodeToString(tok[:])
		f.devices[req.deviceID] = &fakeDevice{pub: req.pub, tokenHash: sha256.Sum256([]byte(text)), role: f.role, scopes: f.scopes}
		req.delivered = true
		msg = map[string]any{"type": "approved", "device_id": req.deviceID, "device_token": text, "role": f.role, "scopes": f.scopes}
	default: // rejected, expired
		msg = map[string]any{"type": req.status}
	}
	f.mu.Unlock()
	return wsjson.Write(ctx, c, msg)
}

func (f *fakeServer) resume(ctx context.Context, c *websocket.Conn, nonce string, data []byte) error {
	if f.beforeResume != nil {
		f.beforeResume()
	}
	var m struct {
		Type      string `json:"type"`
		RequestID string `json:"request_id"`
		DeviceID  string `json:"device_id"`
		SignedAt  int64  `json:"signed_at"`
		Signature string `json:"signature"`
	}
	if err := decodeStrict(data, &m); err != nil {
		return err
	}
	f.mu.Lock()
	req := f.requests[m.RequestID]
	f.mu.Unlock()
	if req == nil || req.deviceID != m.DeviceID {
		return &fakeErr{"unknown_request", "no such request for this device"}
	}
	if err := f.checkSkew(m.SignedAt); err != nil {
		return err
	}
	signed := fmt.Sprintf("pairgate/v1/resume\n%s\n%s\n%s\n%d", nonce, req.id, req.deviceID, m.SignedAt)
	sig, ok := fakeB64(m.Signature, 64)
	if !ok || !ed25519.Verify(req.pub, []byte(signed), sig) {
		return &fakeErr{"bad_signature", "resume signature does not verify"}
	}
	f.mu.Lock()
	pending := req.status == "pending"
	f.mu.Unlock()
	if pending {
		code := req.checkCode
		if f.newCodeOnResume {
			cc := sha256.Sum256([]byte("pairgate/v1/check\n" + nonce + "\n" + req.deviceID))
			code = fmt.Sprintf("%06d", binary.BigEndian.Uint32(cc[:4])%1000000)
		}
		return f.await(ctx, c, req, code)
	}
	return f.settle(ctx, c, req)
}

func (f *fakeServer) auth(ctx context.Context, c *websocket.Conn, nonce string, data []byte) error {
	var m struct {
		Type        string `json:"type"`
		DeviceID    string `json:"device_id"`
		DeviceToken string `json:"device_token"`
		SignedAt    int64  `json:"signed_at"`
		Signature   string `json:"signature"`
	}
	if err := decodeStrict(data, &m); err != nil {
		return err
	}
	f.mu.Lock()
	d := f.devices[m.DeviceID]
	f.mu.Unlock()
	if d == nil {
		return &fakeErr{"not_paired", "unknown device"}
	}
	if err := f.checkSkew(m.SignedAt); err != nil {
		return err
	}
	signed := fmt.Sprintf("pairgate/v1/auth\n%s\n%s\n%d", nonce, m.DeviceID, m.SignedAt)
	sig, ok := fakeB64(m.Signature, 64)
	if !ok || !ed25519.Verify(d.pub, []byte(signed), sig) {
		return &fakeErr{"bad_signature", "auth signature does not verify"}
	}
	got := sha256.Sum256([]byte(m.DeviceToken))
	if subtle.ConstantTimeCompare(got[:], d.tokenHash[:]) != 1 {
		return &fakeErr{"not_paired", "wrong device token"}
	}
	if err := wsjson.Write(ctx, c, map[string]any{"type": "authenticated", "device_id": m.DeviceID, "role": d.role, "scopes": d.scopes}); err != nil {
		return err
	}
	<-c.CloseRead(ctx).Done() // the session lasts until the client leaves
	return errGone
}

// Client side helpers.

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func testOptions(t *testing.T, code string) (Options, *syncBuffer) {
	dir := t.TempDir()
	out := &syncBuffer{}
	return Options{
		SetupCode:        code,
		Name:             "test phone",
		Platform:         "android",
		KeyFile:          filepath.Join(dir, "device.key"),
		TokenFile:        filepath.Join(dir, "device.token"),
		Out:              out,
		ReconnectBackoff: 10 * time.Millisecond,
	}, out
}

type pairResult struct {
	res Result
	err error
}

func startPair(t *testing.T, o Options) <-chan pairResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	ch := make(chan pairResult, 1)
	go func() {
		defer cancel()
		r, err := Pair(ctx, o)
		ch <- pairResult{r, err}
	}()
	return ch
}

func waitRequest(t *testing.T, f *fakeServer) string {
	t.Helper()
	select {
	case id := <-f.created:
		return id
	case <-time.After(10 * time.Second):
		t.Fatal("no pairing request reached the fake server")
		return ""
	}
}

func waitPending(t *testing.T, f *fakeServer) string {
	t.Helper()
	select {
	case code := <-f.pendingSent:
		return code
	case <-time.After(10 * time.Second):
		t.Fatal("the fake server sent no pending")
		return ""
	}
}

func waitResult(t *testing.T, ch <-chan pairResult) pairResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(30 * time.Second):
		t.Fatal("Pair did not return")
		return pairResult{}
	}
}

func checkMode(t *testing.T, path string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("%s has mode %04o, want 0600", filepath.Base(path), got)
	}
}

func TestPairApprovedOnSameSocket(t *testing.T) {
	f := newFake(t)
	o, out := testOptions(t, f.setupCode())
	done := startPair(t, o)
	id := waitRequest(t, f)
	f.decide(id, "approved")
	r := waitResult(t, done)
	if r.err != nil {
		t.Fatalf("Pair: %v\noutput:\n%s", r.err, out)
	}

	key, err := LoadKey(o.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	want := Result{DeviceID: DeviceID(key.Public().(ed25519.PublicKey)), Role: "node", Scopes: []string{"node.invoke", "node.events"}, TokenFile: o.TokenFile}
	if diff := cmp.Diff(want, r.res); diff != "" {
		t.Errorf("Result (-want +got):\n%s", diff)
	}
	f.mu.Lock()
	req := f.requests[id]
	f.mu.Unlock()
	if want := "Check code: " + req.checkCode + " — make sure the operator sees the same code\n"; !strings.Contains(out.String(), want) {
		t.Errorf("output lacks %q:\n%s", want, out)
	}
	if !strings.Contains(out.String(), "Waiting for approval…") {
		t.Errorf("output lacks the waiting line:\n%s", out)
	}
	nonces, received := f.seen()
	if diff := cmp.Diff([]string{"pair", "auth"}, received); diff != "" {
		t.Errorf("messages (-want +got):\n%s", diff)
	}
	if len(nonces) != 2 || nonces[0] == nonces[1] {
		t.Errorf("nonces %q: want two distinct", nonces)
	}

	// Both files are the owner's only, and no temporary file is left.
	checkMode(t, o.KeyFile)
	checkMode(t, o.TokenFile)
	entries, _ := os.ReadDir(filepath.Dir(o.KeyFile))
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if diff := cmp.Diff([]string{"device.key", "device.token"}, names); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
	creds, err := ReadCredentials(o.TokenFile)
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	dev := f.devices[want.DeviceID]
	f.mu.Unlock()
	if got := sha256.Sum256([]byte(creds.DeviceToken)); got != dev.tokenHash {
		t.Error("the saved device token is not the one the server delivered")
	}
	if creds.URL != f.url || creds.DeviceID != want.DeviceID || creds.Role != "node" {
		t.Errorf("credentials %+v", creds)
	}
}

func TestPairResumesAfterDrop(t *testing.T) {
	f := newFake(t)
	f.dropAfterPending = 1
	resumed := make(chan struct{}, 4)
	f.beforeResume = func() { resumed <- struct{}{} }
	o, out := testOptions(t, f.setupCode())
	done := startPair(t, o)
	id := waitRequest(t, f)
	select {
	case <-resumed:
	case <-time.After(10 * time.Second):
		t.Fatalf("the client did not resume\noutput:\n%s", out)
	}
	// The resumed socket gets pending again, with the original check code;
	// the client checks it and waits on. Approve then.
	first, second := waitPending(t, f), waitPending(t, f)
	if first != second {
		t.Fatalf("the fake announced %s, then %s", first, second)
	}
	f.decide(id, "approved")
	r := waitResult(t, done)
	if r.err != nil {
		t.Fatalf("Pair: %v\noutput:\n%s", r.err, out)
	}
	nonces, received := f.seen()
	if diff := cmp.Diff([]string{"pair", "resume", "auth"}, received); diff != "" {
		t.Errorf("messages (-want +got):\n%s", diff)
	}
	if len(nonces) != 3 || nonces[0] == nonces[1] || nonces[1] == nonces[2] {
		t.Errorf("nonces %q: want three distinct (each connection signs its own)", nonces)
	}
	if !strings.Contains(out.String(), "Reconnecting…") {
		t.Errorf("output lacks Reconnecting…:\n%s", out)
	}
	checkMode(t, o.TokenFile)
}

func TestPairApprovedWhileDisconnected(t *testing.T) {
	f := newFake(t)
	f.dropAfterPending = 1
	o, out := testOptions(t, f.setupCode())
	var once sync.Once
	var id string
	idReady := make(chan struct{})
	// The operator approves while the device is away: the token comes on
	// the first resume.
	f.beforeResume = func() { once.Do(func() { <-idReady; f.decide(id, "approved") }) }
	done := startPair(t, o)
	id = waitRequest(t, f)
	close(idReady)
	r := waitResult(t, done)
	if r.err != nil {
		t.Fatalf("Pair: %v\noutput:\n%s", r.err, out)
	}
	if _, received := f.seen(); !cmp.Equal([]string{"pair", "resume", "auth"}, received) {
		t.Errorf("messages %q", received)
	}
}

func TestPairOutcomes(t *testing.T) {
	for _, tc := range []struct {
		decision string
		want     error
	}{
		{"rejected", ErrRejected},
		{"expired", ErrExpired},
	} {
		t.Run(tc.decision, func(t *testing.T) {
			f := newFake(t)
			o, out := testOptions(t, f.setupCode())
			done := startPair(t, o)
			f.decide(waitRequest(t, f), tc.decision)
			r := waitResult(t, done)
			if !errors.Is(r.err, tc.want) {
				t.Fatalf("Pair: %v, want %v\noutput:\n%s", r.err, tc.want, out)
			}
			if _, err := os.Stat(o.TokenFile); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("token file after %s: %v", tc.decision, err)
			}
		})
	}
}

func TestPairServerExpiresRequest(t *testing.T) {
	f := newFake(t)
	f.ttl = 1500 * time.Millisecond
	o, out := testOptions(t, f.setupCode())
	done := startPair(t, o)
	waitRequest(t, f)
	if r := waitResult(t, done); !errors.Is(r.err, ErrExpired) {
		t.Fatalf("Pair: %v, want ErrExpired\noutput:\n%s", r.err, out)
	}
}

func TestPairWaitBoundedByExpiry(t *testing.T) {
	old := expiryGrace
	expiryGrace = 200 * time.Millisecond
	t.Cleanup(func() { expiryGrace = old })
	f := newFake(t)
	f.silent = true // a server that never says "expired"
	f.ttl = 2 * time.Second
	o, out := testOptions(t, f.setupCode())
	start := time.Now()
	done := startPair(t, o)
	waitRequest(t, f)
	r := waitResult(t, done)
	if !errors.Is(r.err, ErrExpired) {
		t.Fatalf("Pair: %v, want ErrExpired\noutput:\n%s", r.err, out)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("gave up after %s; want about 2 s", d)
	}
}

func TestPairTokenUsed(t *testing.T) {
	f := newFake(t)
	code := f.setupCode()
	o, _ := testOptions(t, code)
	done := startPair(t, o)
	f.decide(waitRequest(t, f), "approved")
	if r := waitResult(t, done); r.err != nil {
		t.Fatal(r.err)
	}

	// The same code again, from another device: refused, single use.
	o2, out := testOptions(t, code)
	r := waitResult(t, startPair(t, o2))
	var pe *ProtocolError
	if !errors.As(r.err, &pe) || pe.Code != "token_used" {
		t.Fatalf("Pair: %v, want a token_used ProtocolError\noutput:\n%s", r.err, out)
	}
	if !strings.HasPrefix(r.err.Error(), "token_used: ") {
		t.Errorf("error %q does not start with the code", r.err)
	}
	if strings.Contains(out.String(), "Check code") {
		t.Errorf("a check code was shown for a refused pairing:\n%s", out)
	}
}

func TestPairTamperedCheckCode(t *testing.T) {
	f := newFake(t)
	f.tamper = true
	o, out := testOptions(t, f.setupCode())
	r := waitResult(t, startPair(t, o))
	if !errors.Is(r.err, ErrCheckCodeMismatch) {
		t.Fatalf("Pair: %v, want ErrCheckCodeMismatch", r.err)
	}
	if strings.Contains(out.String(), "Check code") || strings.Contains(out.String(), "Waiting") {
		t.Errorf("the client went on after a wrong check code:\n%s", out)
	}
	if _, err := os.Stat(o.TokenFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("token file: %v", err)
	}
}

// A server that answers resume with the check code of the new connection's
// nonce breaks the SPEC (the operator saw the original one): abort.
func TestPairResumeWithNewCheckCode(t *testing.T) {
	f := newFake(t)
	f.dropAfterPending = 1
	f.newCodeOnResume = true
	o, out := testOptions(t, f.setupCode())
	r := waitResult(t, startPair(t, o))
	if !errors.Is(r.err, ErrCheckCodeMismatch) {
		t.Fatalf("Pair: %v, want ErrCheckCodeMismatch\noutput:\n%s", r.err, out)
	}
}

// freezableConn stands for a network that goes silent without closing
// (a phone changing networks): once frozen, writes vanish and nothing
// arrives, until Close.
type freezableConn struct {
	net.Conn
	frozen atomic.Bool
}

func (c *freezableConn) Read(p []byte) (int, error) {
	for {
		n, err := c.Conn.Read(p)
		if err != nil || !c.frozen.Load() {
			return n, err
		}
	}
}

func (c *freezableConn) Write(p []byte) (int, error) {
	if c.frozen.Load() {
		return len(p), nil
	}
	return c.Conn.Write(p)
}

func TestPairHalfOpenSocketResumed(t *testing.T) {
	oldInterval, oldTimeout := pingInterval, pingTimeout
	pingInterval, pingTimeout = 50*time.Millisecond, 100*time.Millisecond
	t.Cleanup(func() { pingInterval, pingTimeout = oldInterval, oldTimeout })

	f := newFake(t)
	o, out := testOptions(t, f.setupCode())
	var mu sync.Mutex
	var conns []*freezableConn
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		fc := &freezableConn{Conn: nc}
		mu.Lock()
		conns = append(conns, fc)
		mu.Unlock()
		return fc, nil
	}}}
	o.Dialer = func(ctx context.Context, url string) (*websocket.Conn, error) {
		c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: client})
		return c, err
	}
	resumed := make(chan struct{}, 4)
	f.beforeResume = func() { resumed <- struct{}{} }
	done := startPair(t, o)
	id := waitRequest(t, f)
	waitPending(t, f)
	// Freeze once the client has read pending and is waiting.
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(out.String(), "Waiting for approval"); {
		if time.Now().After(deadline) {
			t.Fatalf("the client did not start waiting\noutput:\n%s", out)
		}
		time.Sleep(5 * time.Millisecond)
	}
	mu.Lock()
	conns[0].frozen.Store(true)
	mu.Unlock()
	select {
	case <-resumed:
	case <-time.After(10 * time.Second):
		t.Fatalf("the client did not notice the dead socket\noutput:\n%s", out)
	}
	waitPending(t, f)
	f.decide(id, "approved")
	if r := waitResult(t, done); r.err != nil {
		t.Fatalf("Pair: %v\noutput:\n%s", r.err, out)
	}
	if _, received := f.seen(); !cmp.Equal([]string{"pair", "resume", "auth"}, received) {
		t.Errorf("messages %q", received)
	}
}

func TestPairResumeUnknownRequest(t *testing.T) {
	f := newFake(t)
	f.dropAfterPending = 1
	f.beforeResume = func() {
		f.mu.Lock()
		clear(f.requests)
		f.mu.Unlock()
	}
	o, out := testOptions(t, f.setupCode())
	r := waitResult(t, startPair(t, o))
	var pe *ProtocolError
	if !errors.As(r.err, &pe) || pe.Code != "unknown_request" {
		t.Fatalf("Pair: %v, want unknown_request\noutput:\n%s", r.err, out)
	}
}

func TestPairClockSkew(t *testing.T) {
	f := newFake(t)
	o, out := testOptions(t, f.setupCode())
	o.Now = func() time.Time { return time.Now().Add(-5 * time.Minute) }
	r := waitResult(t, startPair(t, o))
	var pe *ProtocolError
	if !errors.As(r.err, &pe) || pe.Code != "clock_skew" {
		t.Fatalf("Pair: %v, want clock_skew", r.err)
	}
	if !strings.Contains(out.String(), "clock is 5m0s behind") {
		t.Errorf("no clock warning:\n%s", out)
	}
}

func TestAuthAfterPairing(t *testing.T) {
	f := newFake(t)
	o, _ := testOptions(t, f.setupCode())
	done := startPair(t, o)
	f.decide(waitRequest(t, f), "approved")
	if r := waitResult(t, done); r.err != nil {
		t.Fatal(r.err)
	}
	key, err := LoadKey(o.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	creds, err := ReadCredentials(o.TokenFile)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	role, scopes, err := Auth(ctx, creds.URL, key, creds.DeviceID, creds.DeviceToken)
	if err != nil {
		t.Fatal(err)
	}
	if role != "node" || !cmp.Equal(scopes, []string{"node.invoke", "node.events"}) {
		t.Errorf("Auth = %q %q", role, scopes)
	}

	// A wrong token is the server's refusal, as a ProtocolError.
	_, _, err = Auth(ctx, creds.URL, key, "", base64.RawURLEncoding.EncodeToString(make([]byte, 32)))
	var pe *ProtocolError
	if !errors.As(err, &pe) || pe.Code != "not_paired" {
		t.Errorf("Auth with a wrong token: %v, want not_paired", err)
	}
	// A device_id that is not the key's is caught before connecting.
	if _, _, err := Auth(ctx, creds.URL, key, strings.Repeat("0", 64), creds.DeviceToken); err == nil {
		t.Error("Auth with another device's id: no error")
	}
	// Another key with this device's id and token: the signature fails.
	_, other, _ := ed25519.GenerateKey(nil)
	_, _, err = authenticate(ctx, creds.URL, other, "", creds.DeviceToken, defaultDialer, time.Now)
	if !errors.As(err, &pe) || pe.Code != "not_paired" {
		t.Errorf("Auth with another key: %v, want not_paired (unknown device)", err)
	}
}

func TestInsecureKeyFileRefused(t *testing.T) {
	f := newFake(t)
	o, _ := testOptions(t, f.setupCode())
	seed := make([]byte, 32)
	if err := os.WriteFile(o.KeyFile, []byte(base64.RawURLEncoding.EncodeToString(seed)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(o.KeyFile, 0o644); err != nil {
		t.Fatal(err)
	}
	r := waitResult(t, startPair(t, o))
	if !errors.Is(r.err, ErrInsecureFile) || !strings.Contains(r.err.Error(), "device key "+o.KeyFile+" has mode 0644") ||
		!strings.Contains(r.err.Error(), "chmod 600 "+o.KeyFile) {
		t.Fatalf("Pair: %v, want a refusal naming the device key and chmod 600", r.err)
	}
	if nonces, _ := f.seen(); len(nonces) != 0 {
		t.Error("the client connected (and could spend the setup token) with an insecure key")
	}
	if _, err := LoadKey(o.KeyFile); !errors.Is(err, ErrInsecureFile) {
		t.Errorf("LoadKey: %v", err)
	}
}

func TestKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "device.key")
	k1, created, err := LoadOrCreateKey(path)
	if err != nil || !created {
		t.Fatalf("LoadOrCreateKey: %v created=%v", err, created)
	}
	checkMode(t, path)
	k2, created, err := LoadOrCreateKey(path)
	if err != nil || created || !k1.Equal(k2) {
		t.Fatalf("second LoadOrCreateKey: %v created=%v equal=%v", err, created, k1.Equal(k2))
	}
	data, _ := os.ReadFile(path)
	if want := base64.RawURLEncoding.EncodeToString(k1.Seed()) + "\n"; string(data) != want {
		t.Errorf("key file %q, want %q", data, want)
	}
	fi, _ := os.Stat(filepath.Dir(path))
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("key directory mode %04o, want 0700", fi.Mode().Perm())
	}
	os.WriteFile(path, []byte("not a key\n"), 0o600)
	if _, err := LoadKey(path); err == nil {
		t.Error("LoadKey of a damaged file: no error")
	}
}

func TestTransientDialFailuresRetried(t *testing.T) {
	f := newFake(t)
	o, out := testOptions(t, f.setupCode())
	var mu sync.Mutex
	fails := 2
	o.Dialer = func(ctx context.Context, url string) (*websocket.Conn, error) {
		mu.Lock()
		defer mu.Unlock()
		if fails > 0 {
			fails--
			return nil, errors.New("connection refused")
		}
		c, _, err := websocket.Dial(ctx, url, nil)
		return c, err
	}
	done := startPair(t, o)
	f.decide(waitRequest(t, f), "approved")
	if r := waitResult(t, done); r.err != nil {
		t.Fatalf("Pair: %v\noutput:\n%s", r.err, out)
	}
}

func TestExpiredSetupCodeRefusedLocally(t *testing.T) {
	f := newFake(t)
	o, _ := testOptions(t, f.setupCode())
	o.Now = func() time.Time { return time.Now().Add(time.Hour) }
	r := waitResult(t, startPair(t, o))
	if r.err == nil || !strings.Contains(r.err.Error(), "expired") {
		t.Fatalf("Pair: %v, want an expiry refusal", r.err)
	}
	if nonces, _ := f.seen(); len(nonces) != 0 {
		t.Error("the client connected with an expired setup code")
	}
}

// The worked example the README quotes: fixed seed, nonce, token and
// signed_at give these exact strings, signatures and check code.
func TestWorkedExample(t *testing.T) {
	seed := make([]byte, 32)
	for i := range seed {
		seed[i] = byte(i) // 00 01 02 … 1f
	}
	nonceRaw := make([]byte, 32)
	for i := range nonceRaw {
		nonceRaw[i] = byte(0x20 + i) // 20 21 … 3f
	}
	const (
		token     = "example.setup.token"
		requestID = "dreq_example"
		signedAt  = int64(1767225600000) // 2026-01-01T00:00:00Z
	)
	key := ed25519.NewKeyFromSeed(seed)
	pub := key.Public().(ed25519.PublicKey)
	nonce := base64.RawURLEncoding.EncodeToString(nonceRaw)
	id := DeviceID(pub)

	got := map[string]string{
		"seed":             base64.RawURLEncoding.EncodeToString(seed),
		"public_key":       base64.RawURLEncoding.EncodeToString(pub),
		"device_id":        id,
		"nonce":            nonce,
		"pair string":      pairString(nonce, id, signedAt, token),
		"pair signature":   sign(key, pairString(nonce, id, signedAt, token)),
		"resume string":    resumeString(nonce, requestID, id, signedAt),
		"resume signature": sign(key, resumeString(nonce, requestID, id, signedAt)),
		"auth string":      authString(nonce, id, signedAt),
		"auth signature":   sign(key, authString(nonce, id, signedAt)),
		"check code":       checkCode(nonce, id),
	}
	const (
		wantID    = "56475aa75463474c0285df5dbf2bcab73da651358839e9b77481b2eab107708c"
		wantNonce = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8"
	)
	want := map[string]string{
		"seed":       "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",
		"public_key": "A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg",
		"device_id":  wantID,
		"nonce":      wantNonce,
		// The last field is SHA-256("example.setup.token") in hex.
		"pair string":      "pairgate/v1/pair\n" + wantNonce + "\n" + wantID + "\n1767225600000\n4d4dba6fa5cb4f561c1b74202a0ffc5a0904d00b3debe81a77f49c900922fc4c",
		"pair signature":   "F2aPPZkRojUkqynTGKGtknZ7sfx5rhecTriX3d3DmlMT9hFUMRtEwwScAoVo5QUuxcA9WQPhjVoBkK2W4OneAw",
		"resume string":    "pairgate/v1/resume\n" + wantNonce + "\ndreq_example\n" + wantID + "\n1767225600000",
		"resume signature": "8djjME8RPPRhU4hUAbsGRBolljs8XA9Sc_4F_84D4Aa4qzBqDSIRoMUfN8nNZQXX_cvMZNOB6eT08K11osU-BA",
		"auth string":      "pairgate/v1/auth\n" + wantNonce + "\n" + wantID + "\n1767225600000",
		"auth signature":   "VRsYybViGut0HJHE88BXC8SXX-WFexJLblCh0kbkmlrX6PZLSUCBvPq9Q3mQQURPC-xfLPG0GngRj4YalIEIAQ",
		"check code":       "643636",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("worked example (-want +got):\n%s", diff)
	}
	// The server package reads the SPEC the same way.
	if d := device.DeviceID(pub); d != id {
		t.Errorf("device.DeviceID = %s, companion %s", d, id)
	}
	if c := device.CheckCode(nonce, id); c != got["check code"] {
		t.Errorf("device.CheckCode = %s, companion %s", c, got["check code"])
	}
}

func TestProtocolErrorText(t *testing.T) {
	if got := (&ProtocolError{Code: "token_used", Message: "used already"}).Error(); got != "token_used: used already" {
		t.Errorf("Error() = %q", got)
	}
	if got := (&ProtocolError{Code: "revoked"}).Error(); got != "revoked" {
		t.Errorf("Error() = %q", got)
	}
}
