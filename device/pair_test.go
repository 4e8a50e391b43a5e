package device

// Tests of the /pair protocol over a real WebSocket on loopback, with a
// minimal client written here from SPEC section 3.

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/pairgate/pairgate/secret"
	"github.com/pairgate/pairgate/store"
	"github.com/pairgate/pairgate/store/sqlite"
)

type pairEnv struct {
	t    testing.TB
	svc  *Service
	st   *sqlite.Store
	path string // the database file
	url  string // ws://127.0.0.1:port/pair
	now  func() time.Time
	mu   sync.Mutex
	off  time.Duration // clock offset, moved by tests
}

func newPairEnv(t testing.TB, mutate func(*Options)) *pairEnv {
	t.Helper()
	path := filepath.Join(t.TempDir(), "pairgate.db")
	st, err := sqlite.Open(context.Background(), sqlite.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := &pairEnv{t: t, st: st, path: path}
	e.now = func() time.Time { e.mu.Lock(); defer e.mu.Unlock(); return time.Now().Add(e.off) }
	hs := httptest.NewUnstartedServer(nil)
	e.url = "ws://" + hs.Listener.Addr().String() + "/pair"
	opts := Options{Store: st, Secret: testSecret, Now: e.now,
		URL: func() (string, URLSource, error) { return e.url, URLSourceConfig, nil }}
	if mutate != nil {
		mutate(&opts)
	}
	if e.svc, err = New(opts); err != nil {
		t.Fatal(err)
	}
	runCtx, stopRun := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { e.svc.Run(runCtx); close(ran) }()
	t.Cleanup(func() { stopRun(); <-ran })
	hs.Config.Handler = e.svc
	hs.Start()
	t.Cleanup(hs.Close)
	return e
}

func (e *pairEnv) advance(d time.Duration) { e.mu.Lock(); e.off += d; e.mu.Unlock() }

func (e *pairEnv) setupToken(ttl time.Duration) string {
	e.t.Helper()
	s, err := e.svc.IssueSetupCode(context.Background(), SetupParams{TTL: ttl}, store.Actor{Name: "test"})
	if err != nil {
		e.t.Fatal(err)
	}
	c, err := DecodeSetupCode(s.SetupCode)
	if err != nil {
		e.t.Fatal(err)
	}
	return c.Token
}

// tokenFor issues a setup token through another Service on e's store and
// secret, as a second gateway sharing them would, for url.
func (e *pairEnv) tokenFor(url string) string {
	e.t.Helper()
	other, err := New(Options{Store: e.st, Secret: testSecret, Now: e.now,
		URL: func() (string, URLSource, error) { return url, URLSourceConfig, nil }})
	if err != nil {
		e.t.Fatal(err)
	}
	s, err := other.IssueSetupCode(context.Background(), SetupParams{}, store.Actor{Name: "test"})
	if err != nil {
		e.t.Fatal(err)
	}
	c, _ := DecodeSetupCode(s.SetupCode)
	return c.Token
}

// otherHomeToken is a setup token issued for url by another pairgate home:
// its own store and pairing secret, so the same key number with another
// key.
func otherHomeToken(t testing.TB, url string) string {
	t.Helper()
	st, err := sqlite.Open(context.Background(), sqlite.Options{Path: filepath.Join(t.TempDir(), "other.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sec, _ := secret.FromBytes(bytes.Repeat([]byte{6}, secret.Size))
	svc, err := New(Options{Store: st, Secret: sec, URL: func() (string, URLSource, error) { return url, URLSourceFlag, nil }})
	if err != nil {
		t.Fatal(err)
	}
	s, err := svc.IssueSetupCode(context.Background(), SetupParams{}, store.Actor{Name: "other home"})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := DecodeSetupCode(s.SetupCode)
	return c.Token
}

// flipBit flips the lowest bit of the 6 that character i of a token
// carries; the last character holds the tag's last bits.
func flipBit(t testing.TB, tok string, i int) string {
	t.Helper()
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	v := strings.IndexByte(alphabet, tok[i])
	if v < 0 {
		t.Fatalf("character %d of the token is not base64url", i)
	}
	return tok[:i] + string(alphabet[v^1]) + tok[i+1:]
}

// client is one connection of a test device.
type client struct {
	t     testing.TB
	c     *websocket.Conn
	nonce string
	key   ed25519.PrivateKey
	id    string
}

func (e *pairEnv) dial(key ed25519.PrivateKey) *client {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, e.url, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.CloseNow() })
	cl := &client{t: e.t, c: c, key: key, id: DeviceID(key.Public().(ed25519.PublicKey))}
	m := cl.recv()
	if m["type"] != "challenge" || len(m["nonce"].(string)) != 43 {
		e.t.Fatalf("first message: %v", m)
	}
	cl.nonce = m["nonce"].(string)
	return cl
}

func (cl *client) send(v any) {
	cl.t.Helper()
	b, _ := json.Marshal(v)
	if err := cl.c.Write(context.Background(), websocket.MessageText, b); err != nil {
		cl.t.Fatal(err)
	}
}

func (cl *client) recv() map[string]any {
	cl.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, data, err := cl.c.Read(ctx)
	if err != nil {
		cl.t.Fatalf("read: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		cl.t.Fatalf("not JSON: %q", data)
	}
	return m
}

// expectError reads an error message with code, then a 1008 close.
func (cl *client) expectError(code string) {
	cl.t.Helper()
	m := cl.recv()
	if m["type"] != "error" || m["code"] != code || m["message"] == "" {
		cl.t.Fatalf("got %v, want error %s", m, code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _, err := cl.c.Read(ctx)
	if websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
		cl.t.Fatalf("after error %s: %v, want close 1008", code, err)
	}
}

func (cl *client) sign(s string) string {
	return b64url.EncodeToString(ed25519.Sign(cl.key, []byte(s)))
}

func (cl *client) pair(token string, signedAt int64) {
	cl.send(cl.pairMessage(token, signedAt))
}

func (cl *client) pairMessage(token string, signedAt int64) map[string]any {
	return map[string]any{"type": "pair", "token": token,
		"device":    map[string]string{"public_key": b64url.EncodeToString(cl.key.Public().(ed25519.PublicKey)), "name": "Pixel 9", "platform": "android"},
		"signed_at": signedAt, "signature": cl.sign(pairString(cl.nonce, cl.id, signedAt, token))}
}

func (cl *client) resume(requestID string, signedAt int64) {
	cl.send(map[string]any{"type": "resume", "request_id": requestID, "device_id": cl.id, "signed_at": signedAt,
		"signature": cl.sign(resumeString(cl.nonce, requestID, cl.id, signedAt))})
}

func (cl *client) auth(token string, signedAt int64) {
	cl.send(map[string]any{"type": "auth", "device_id": cl.id, "device_token": token, "signed_at": signedAt,
		"signature": cl.sign(authString(cl.nonce, cl.id, signedAt))})
}

func deviceKey(name string) ed25519.PrivateKey {
	s := sha256.Sum256([]byte(name))
	return ed25519.NewKeyFromSeed(s[:])
}

var operator = store.Actor{Name: "cli:test", Source: "test"}

func TestPairApproveAuthRotateRevoke(t *testing.T) {
	e := newPairEnv(t, nil)
	ctx := context.Background()
	cl := e.dial(deviceKey("a"))
	cl.pair(e.setupToken(0), e.now().UnixMilli())
	p := cl.recv()
	if p["type"] != "pending" || p["device_id"] != cl.id || p["check_code"] != CheckCode(cl.nonce, cl.id) || !strings.HasPrefix(p["request_id"].(string), "dreq_") {
		t.Fatalf("pending: %v", p)
	}
	l, _ := e.svc.List(ctx)
	if len(l.Requests) != 1 || l.Requests[0].CheckCode != p["check_code"] {
		t.Fatalf("the operator sees %+v", l)
	}
	if _, err := e.svc.Decide(ctx, "latest", true, operator); err != nil {
		t.Fatal(err)
	}
	a := cl.recv()
	if a["type"] != "approved" || a["device_id"] != cl.id || a["role"] != RoleNode || len(a["device_token"].(string)) != 43 {
		t.Fatalf("approved: %v", a)
	}
	token := a["device_token"].(string)
	d, _ := e.st.GetDevice(ctx, cl.id)
	if h := sha256.Sum256([]byte(token)); string(d.TokenHash) != string(h[:]) || strings.Contains(string(d.TokenHash), token) {
		t.Fatal("the device token must be stored as its hash only")
	}

	s := e.dial(deviceKey("a"))
	s.auth(token, e.now().UnixMilli())
	if m := s.recv(); m["type"] != "authenticated" || m["device_id"] != cl.id {
		t.Fatalf("auth: %v", m)
	}
	rot, err := e.svc.Rotate(ctx, cl.id, operator)
	if err != nil {
		t.Fatal(err)
	}
	s.expectError(CodeNotPaired) // the open session ends at rotation
	old := e.dial(deviceKey("a"))
	old.auth(token, e.now().UnixMilli())
	old.expectError(CodeNotPaired)
	fresh := e.dial(deviceKey("a"))
	fresh.auth(rot.DeviceToken, e.now().UnixMilli())
	if m := fresh.recv(); m["type"] != "authenticated" {
		t.Fatalf("auth with the rotated token: %v", m)
	}
	if _, err := e.svc.Revoke(ctx, cl.id, operator); err != nil {
		t.Fatal(err)
	}
	fresh.expectError(CodeRevoked) // revoke closes the open session
	again := e.dial(deviceKey("a"))
	again.auth(rot.DeviceToken, e.now().UnixMilli())
	again.expectError(CodeRevoked)
}

func TestResumeAfterDrop(t *testing.T) {
	e := newPairEnv(t, nil)
	cl := e.dial(deviceKey("b"))
	cl.pair(e.setupToken(0), e.now().UnixMilli())
	p := cl.recv()
	cl.c.Close(websocket.StatusGoingAway, "")
	if _, err := e.svc.Decide(context.Background(), p["request_id"].(string), true, operator); err != nil {
		t.Fatal(err)
	}
	r := e.dial(deviceKey("b"))
	r.resume(p["request_id"].(string), e.now().UnixMilli())
	if m := r.recv(); m["type"] != "approved" || m["device_token"] == "" {
		t.Fatalf("resume after approval: %v", m)
	}
	// Delivered once: a second resume gets no token.
	r2 := e.dial(deviceKey("b"))
	r2.resume(p["request_id"].(string), e.now().UnixMilli())
	r2.expectError(CodeUnknownRequest)
	// Another key cannot resume someone else's request.
	thief := e.dial(deviceKey("thief"))
	thief.send(map[string]any{"type": "resume", "request_id": p["request_id"], "device_id": cl.id, "signed_at": e.now().UnixMilli(),
		"signature": thief.sign(resumeString(thief.nonce, p["request_id"].(string), cl.id, e.now().UnixMilli()))})
	thief.expectError(CodeBadSignature)
}

func TestRejectedAndExpired(t *testing.T) {
	e := newPairEnv(t, nil)
	cl := e.dial(deviceKey("c"))
	cl.pair(e.setupToken(0), e.now().UnixMilli())
	p := cl.recv()
	if _, err := e.svc.Decide(context.Background(), p["request_id"].(string), false, operator); err != nil {
		t.Fatal(err)
	}
	if m := cl.recv(); m["type"] != "rejected" {
		t.Fatalf("got %v", m)
	}
	x := e.dial(deviceKey("d"))
	x.pair(e.setupToken(0), e.now().UnixMilli())
	px := x.recv()
	x.c.Close(websocket.StatusGoingAway, "")
	e.advance(RequestTTL + time.Second)
	r := e.dial(deviceKey("d"))
	r.resume(px["request_id"].(string), e.now().UnixMilli())
	if m := r.recv(); m["type"] != "expired" {
		t.Fatalf("resume after expiry: %v", m)
	}
	if _, err := e.svc.Decide(context.Background(), px["request_id"].(string), true, operator); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("approving an expired request: %v", err)
	}
}

func TestPairRefusals(t *testing.T) {
	e := newPairEnv(t, func(o *Options) { o.IdleTimeout = 300 * time.Millisecond })
	used := e.setupToken(0)
	first := e.dial(deviceKey("e"))
	first.pair(used, e.now().UnixMilli())
	first.recv()

	expired := e.setupToken(time.Minute)
	e.advance(2 * time.Minute)
	otherURL := e.tokenFor("wss://elsewhere.example.com/pair")
	forged := otherHomeToken(t, e.url)
	valid := e.setupToken(0)
	truncated := valid[:len(valid)-1]
	retagged := flipBit(t, valid, len(valid)-1)
	// Tagged with this gateway's key 1, so only the stored row can refuse
	// them: one never stored, one stored with a lifetime of two hours.
	var id TokenID
	id[0] = 0xee
	exp := e.now().Add(10 * time.Minute).Truncate(time.Second)
	unstored := e.svc.keys.encode(Token{KID: 1, ExpiresAt: exp, ID: id})
	id[0] = 0xef
	longLived := e.svc.keys.encode(Token{KID: 1, ExpiresAt: exp, ID: id})
	if err := e.st.CreateSetupToken(context.Background(), store.SetupToken{ID: id.String(), KID: 1, Role: RoleNode, URL: e.url,
		CreatedAt: exp.Add(-2 * time.Hour), ExpiresAt: exp}, exp.Add(-3*time.Hour), operator); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		do   func(cl *client)
		code string
	}{
		{"second device with the same code", func(cl *client) { cl.pair(used, e.now().UnixMilli()) }, CodeTokenUsed},
		{"expired token", func(cl *client) { cl.pair(expired, e.now().UnixMilli()) }, CodeTokenExpired},
		{"token for another gateway URL", func(cl *client) { cl.pair(otherURL, e.now().UnixMilli()) }, CodeInvalidToken},
		{"token of another home's secret", func(cl *client) { cl.pair(forged, e.now().UnixMilli()) }, CodeInvalidToken},
		{"truncated token", func(cl *client) { cl.pair(truncated, e.now().UnixMilli()) }, CodeInvalidToken},
		{"retagged token", func(cl *client) { cl.pair(retagged, e.now().UnixMilli()) }, CodeInvalidToken},
		{"token signed here but never stored", func(cl *client) { cl.pair(unstored, e.now().UnixMilli()) }, CodeInvalidToken},
		{"token stored with a lifetime over the maximum", func(cl *client) { cl.pair(longLived, e.now().UnixMilli()) }, CodeInvalidToken},
		{"clock skew", func(cl *client) { cl.pair(e.setupToken(0), e.now().Add(3*time.Minute).UnixMilli()) }, CodeClockSkew},
		{"wrong signature", func(cl *client) {
			tok := e.setupToken(0)
			now := e.now().UnixMilli()
			cl.send(map[string]any{"type": "pair", "token": tok,
				"device":    map[string]string{"public_key": b64url.EncodeToString(cl.key.Public().(ed25519.PublicKey)), "name": "x", "platform": "y"},
				"signed_at": now, "signature": cl.sign(pairString("another-nonce", cl.id, now, tok))})
		}, CodeBadSignature},
		{"auth of an unknown device", func(cl *client) { cl.auth("x", e.now().UnixMilli()) }, CodeNotPaired},
		{"resume of an unknown request", func(cl *client) { cl.resume("dreq_nope", e.now().UnixMilli()) }, CodeUnknownRequest},
		{"unknown type", func(cl *client) { cl.send(map[string]any{"type": "hello"}) }, CodeBadRequest},
		{"unknown field", func(cl *client) { cl.send(map[string]any{"type": "auth", "extra": 1}) }, CodeBadRequest},
		{"not JSON", func(cl *client) { cl.c.Write(context.Background(), websocket.MessageText, []byte("hello")) }, CodeBadRequest},
		{"binary frame", func(cl *client) { cl.c.Write(context.Background(), websocket.MessageBinary, []byte("{}")) }, CodeBadRequest},
		{"frame over 16 KiB", func(cl *client) {
			cl.c.Write(context.Background(), websocket.MessageText, []byte(`{"type":"pair","token":"`+strings.Repeat("a", MaxFrame)+`"}`))
		}, CodeBadRequest},
		{"silent client", func(cl *client) {}, CodeBadRequest},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl := e.dial(deviceKey("refused" + string(rune('a'+i))))
			cl.t = t
			tt.do(cl)
			cl.expectError(tt.code)
		})
	}
}

// TestPairRace: eight devices present one setup code at the same moment,
// each on its own connection: exactly one gets pending, the other seven
// token_used (OpenClaw #78276 revived a consumed token through a race), and
// the operator sees one request.
func TestPairRace(t *testing.T) {
	e := newPairEnv(t, func(o *Options) { o.AttemptsPerMinute = 1000 })
	for trial := range 3 {
		tok := e.setupToken(0)
		var frames [8][]byte
		clients := make([]*client, len(frames))
		for i := range clients {
			clients[i] = e.dial(deviceKey(fmt.Sprint("racer ", trial, i)))
			frames[i], _ = json.Marshal(clients[i].pairMessage(tok, e.now().UnixMilli()))
		}
		answers := make([]map[string]any, len(clients))
		errs := make([]error, len(clients))
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i, cl := range clients {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				<-start
				if errs[i] = cl.c.Write(ctx, websocket.MessageText, frames[i]); errs[i] != nil {
					return
				}
				var data []byte
				if _, data, errs[i] = cl.c.Read(ctx); errs[i] == nil {
					errs[i] = json.Unmarshal(data, &answers[i])
				}
			})
		}
		close(start)
		wg.Wait()
		var pending, used []string
		for i, a := range answers {
			switch {
			case errs[i] != nil:
				t.Errorf("trial %d, device %d: %v", trial, i, errs[i])
			case a["type"] == "pending":
				pending = append(pending, clients[i].id)
			case a["type"] == "error" && a["code"] == CodeTokenUsed:
				used = append(used, clients[i].id)
			default:
				t.Errorf("trial %d, device %d got %v", trial, i, a)
			}
		}
		if len(pending) != 1 || len(used) != 7 {
			t.Fatalf("trial %d: %d pending and %d token_used of 8 devices with one code; want 1 and 7", trial, len(pending), len(used))
		}
		l, err := e.svc.List(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(l.Requests) != trial+1 || l.Requests[trial].DeviceID != pending[0] {
			t.Fatalf("trial %d: the operator sees %+v; want one new request, from device %s", trial, l.Requests, pending[0])
		}
	}
}

// countingReads counts the store reads and writes a pair attempt can make.
type countingReads struct {
	store.Store
	n atomic.Int64
}

func (s *countingReads) SigningKeys(ctx context.Context) ([]store.SigningKey, error) {
	s.n.Add(1)
	return s.Store.SigningKeys(ctx)
}

func (s *countingReads) GetSetupToken(ctx context.Context, id string) (store.SetupToken, error) {
	s.n.Add(1)
	return s.Store.GetSetupToken(ctx, id)
}

func (s *countingReads) CreateDeviceRequest(ctx context.Context, r store.DeviceRequest, tokenID string, actor store.Actor, out ...store.OutboundMessage) error {
	s.n.Add(1)
	return s.Store.CreateDeviceRequest(ctx, r, tokenID, actor, out...)
}

func (s *countingReads) GetDeviceRequest(ctx context.Context, id string) (store.DeviceRequest, error) {
	s.n.Add(1)
	return s.Store.GetDeviceRequest(ctx, id)
}

func (s *countingReads) GetDevice(ctx context.Context, id string) (store.Device, error) {
	s.n.Add(1)
	return s.Store.GetDevice(ctx, id)
}

// A token that was not issued here is refused by its tag, and an expired
// one by its exp, before the store is read at all: refusing a flood of
// forgeries costs no I/O.
func TestForgedTokenReadsNoStorage(t *testing.T) {
	var cs *countingReads
	e := newPairEnv(t, func(o *Options) { cs = &countingReads{Store: o.Store}; o.Store = cs })
	valid := e.setupToken(0)
	expired := e.setupToken(time.Minute)
	raw, _ := b64url.DecodeString(strings.TrimPrefix(valid, "pg2_"))
	raw[0] = 7 // another key number; the tag no longer fits
	tests := []struct{ name, token, code string }{
		{"another home's secret", otherHomeToken(t, e.url), CodeInvalidToken},
		{"retagged", flipBit(t, valid, len(valid)-1), CodeInvalidToken},
		{"truncated", valid[:len(valid)-1], CodeInvalidToken},
		{"another key number", "pg2_" + b64url.EncodeToString(raw), CodeInvalidToken},
		{"not a pairgate token", "eyJhbGciOiJub25lIn0.e30.", CodeInvalidToken},
		{"expired", expired, CodeTokenExpired},
	}
	e.advance(2 * time.Minute)
	for i, tt := range tests {
		cl := e.dial(deviceKey(fmt.Sprint("forger", i)))
		before := cs.n.Load()
		cl.pair(tt.token, e.now().UnixMilli())
		cl.expectError(tt.code)
		if n := cs.n.Load() - before; n != 0 {
			t.Errorf("%s: refused with %s after %d store calls; want none", tt.name, tt.code, n)
		}
	}
	// The control: the counter sees what a real pair reads.
	cl := e.dial(deviceKey("honest"))
	before := cs.n.Load()
	cl.pair(valid, e.now().UnixMilli())
	if m := cl.recv(); m["type"] != "pending" {
		t.Fatalf("pair with the valid code: %v", m)
	}
	if n := cs.n.Load() - before; n < 2 {
		t.Errorf("a pair that succeeded made %d store calls; the counter misses them", n)
	}
}

func TestRateLimitPerAddress(t *testing.T) {
	e := newPairEnv(t, func(o *Options) { o.AttemptsPerMinute = 3 })
	for i := 0; i < 3; i++ {
		cl := e.dial(deviceKey("r"))
		cl.auth("x", e.now().UnixMilli())
		cl.expectError(CodeNotPaired)
	}
	cl := e.dial(deviceKey("r"))
	cl.auth("x", e.now().UnixMilli())
	cl.expectError(CodeRateLimited)
	e.advance(time.Minute)
	cl = e.dial(deviceKey("r"))
	cl.auth("x", e.now().UnixMilli())
	cl.expectError(CodeNotPaired)
}

// BenchmarkAuthRoundTrip measures what a paired device waits for over
// loopback: connect, receive the challenge, send auth, receive
// authenticated. It reports p50 and p99.
func BenchmarkAuthRoundTrip(b *testing.B) {
	e := newPairEnv(b, func(o *Options) { o.AttemptsPerMinute = 1 << 30 })
	ctx := context.Background()
	key := deviceKey("bench")
	cl := e.dial(key)
	cl.pair(e.setupToken(0), e.now().UnixMilli())
	p := cl.recv()
	if _, err := e.svc.Decide(ctx, p["request_id"].(string), true, operator); err != nil {
		b.Fatal(err)
	}
	token := cl.recv()["device_token"].(string)
	lat := make([]time.Duration, 0, b.N)
	for b.Loop() {
		start := time.Now()
		s := e.dial(key)
		s.auth(token, e.now().UnixMilli())
		if m := s.recv(); m["type"] != "authenticated" {
			b.Fatal(m)
		}
		lat = append(lat, time.Since(start))
		s.c.Close(websocket.StatusNormalClosure, "")
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// TestResumeTakesOverFromAHalfOpenSocket: the first socket is still open
// (as a half-open connection would look to the server) when the device
// resumes on a second one; the token must go to the second.
func TestResumeTakesOverFromAHalfOpenSocket(t *testing.T) {
	e := newPairEnv(t, nil)
	first := e.dial(deviceKey("h"))
	first.pair(e.setupToken(0), e.now().UnixMilli())
	p := first.recv()
	second := e.dial(deviceKey("h"))
	second.resume(p["request_id"].(string), e.now().UnixMilli())
	if m := second.recv(); m["type"] != "pending" || m["check_code"] != p["check_code"] {
		t.Fatalf("resume while pending: %v", m)
	}
	if _, err := e.svc.Decide(context.Background(), p["request_id"].(string), true, operator); err != nil {
		t.Fatal(err)
	}
	if m := second.recv(); m["type"] != "approved" || m["device_token"] == "" {
		t.Fatalf("the resumed socket: %v", m)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, data, err := first.c.Read(ctx); err == nil && strings.Contains(string(data), "device_token") {
		t.Fatalf("the superseded socket got the token: %s", data)
	}
}

func FuzzParseFrame(f *testing.F) {
	for _, s := range []string{
		`{"type":"pair","token":"t","device":{"public_key":"AA","name":"n","platform":"p"},"signed_at":1,"signature":"s"}`,
		`{"type":"auth","device_id":"x","device_token":"y","signed_at":1,"signature":"z"}`,
		`{"type":"resume"}`, `{}`, `[]`, `null`, `{"type":1}`, `{"extra":true}`, `{"type":"auth"}}`, "",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := parseFrame(data)
		if err != nil {
			var pe *protoError
			if !errors.As(err, &pe) || pe.code != CodeBadRequest {
				t.Fatalf("parseFrame error is not a bad_request protocol error: %v", err)
			}
			return
		}
		// Whatever parses re-encodes to something that parses the same.
		again, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if m2, err := parseFrame(again); err != nil || !reflect.DeepEqual(m, m2) {
			t.Fatalf("round trip: %+v → %s → %+v, %v", m, again, m2, err)
		}
	})
}
