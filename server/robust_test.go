package server_test

// Robustness tests for the HTTP API: hostile and malformed input, wrong
// methods and credentials, slow and numerous clients, and a store that goes
// away. Every test runs a real server.Server over a real SQLite store and
// talks to it over TCP on 127.0.0.1 only.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pairgate/pairgate/api"
	"github.com/pairgate/pairgate/apitoken"
	"github.com/pairgate/pairgate/config"
	"github.com/pairgate/pairgate/pairing"
	"github.com/pairgate/pairgate/secret"
	"github.com/pairgate/pairgate/server"
	"github.com/pairgate/pairgate/store"
	"github.com/pairgate/pairgate/store/sqlite"
)

// The timeouts of internal/daemon (unexported there), which the
// production daemon runs with.
const (
	robustReadHeaderTimeout = 5 * time.Second
	robustReadTimeout       = 15 * time.Second
	robustWriteTimeout      = 15 * time.Second
	robustIdleTimeout       = 60 * time.Second
	robustMaxHeaderBytes    = 16 << 10
)

const robustAdmin = "pga_robust-admin-token-0123456789abcdefghijklmnopq"

// robustOptions vary the test server.
type robustOptions struct {
	// wrap, when set, puts a test type between the services and the store.
	wrap func(*sqlite.Store) store.Store
	// readHeaderTimeout replaces the daemon's 5 s ReadHeaderTimeout.
	readHeaderTimeout time.Duration
	// connState, when set, observes the http.Server's connections.
	connState func(net.Conn, http.ConnState)
	// dir, when set, holds the database instead of t.TempDir().
	dir string
	// storeOptions, when set, adjusts how the SQLite store is opened.
	storeOptions func(*sqlite.Options)
}

type robustEnv struct {
	t         *testing.T
	path      string // the database file
	url       string
	addr      string
	sqlite    *sqlite.Store
	svc       *pairing.Service
	gateway   string // an active gateway token
	gatewayID string
	client    *http.Client
}

// newRobustEnv builds a pairing.Service and a server.Server over a SQLite
// store in t.TempDir(), runs the followers the daemon runs (follow), and
// serves the handler from a real http.Server on 127.0.0.1:0 configured like
// `pairgate serve`.
func newRobustEnv(t *testing.T, o robustOptions) *robustEnv {
	t.Helper()
	ctx := context.Background()
	dir := o.dir
	if dir == "" {
		dir = t.TempDir()
	}
	so := sqlite.Options{Path: filepath.Join(dir, "pairgate.db")}
	if o.storeOptions != nil {
		o.storeOptions(&so)
	}
	sq, err := sqlite.Open(ctx, so)
	if err != nil {
		t.Fatal(err)
	}
	var st store.Store = sq
	if o.wrap != nil {
		st = o.wrap(sq)
	}
	sec, err := secret.FromBytes(bytes.Repeat([]byte{7}, secret.Size))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := pairing.New(pairing.Options{Store: st, Secret: sec, Config: config.Default()})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Load(ctx); err != nil {
		t.Fatal(err)
	}
	// Minted before the Authenticator is made, so it loads it: the first
	// request is answered with it.
	gw, err := apitoken.New(apitoken.Options{Store: sq}).Create(ctx, store.ScopeGateway, "robust-gateway", store.Actor{Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := apitoken.New(apitoken.Options{Store: st}).Authenticator(ctx, robustAdmin)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Options{Pairing: svc, Store: st, Tokens: tokens})
	if err != nil {
		t.Fatal(err)
	}
	rht := robustReadHeaderTimeout
	if o.readHeaderTimeout > 0 {
		rht = o.readHeaderTimeout
	}
	hs := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: rht,
		ReadTimeout:       robustReadTimeout,
		WriteTimeout:      robustWriteTimeout,
		IdleTimeout:       robustIdleTimeout,
		MaxHeaderBytes:    robustMaxHeaderBytes,
		ErrorLog:          log.New(io.Discard, "", 0),
		ConnState:         o.connState,
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stopRun := context.WithCancel(ctx)
	ran := make(chan struct{})
	go func() { follow(runCtx, svc, tokens, srv); close(ran) }()
	served := make(chan struct{})
	go func() { hs.Serve(ln); close(served) }()
	tr := &http.Transport{MaxIdleConnsPerHost: 8}
	e := &robustEnv{
		t: t, path: so.Path, url: "http://" + ln.Addr().String(), addr: ln.Addr().String(), sqlite: sq, svc: svc,
		gateway: gw.Token, gatewayID: gw.ID,
		client: &http.Client{Transport: tr, Timeout: 10 * time.Second},
	}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := hs.Shutdown(sctx); err != nil {
			hs.Close()
		}
		<-served
		stopRun()
		<-ran
		sq.Close()
	})
	return e
}

// call sends one request and returns the whole response. A transport error
// (which is what a handler panic looks like to a client) fails the test.
func (e *robustEnv) call(method, path, token string, body []byte) (int, http.Header, []byte) {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: no response: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("%s %s: %d with a torn body: %v", method, path, resp.StatusCode, err)
	}
	return resp.StatusCode, resp.Header, data
}

// robustAPIError is the error shape of SPEC section 4.
type robustAPIError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// wantError checks a response is status with {"error":{"code","message"}},
// the message holding every one of mentions.
func wantError(t *testing.T, what string, status int, hdr http.Header, data []byte, wantStatus int, wantCode string, mentions ...string) robustAPIError {
	t.Helper()
	var body robustAPIError
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		t.Errorf("%s: status %d, body is not {\"error\":{...}}: %v: %q", what, status, err, data)
		return body
	}
	if status != wantStatus || body.Error.Code != wantCode {
		t.Errorf("%s: got %d %q (%q), want %d %q", what, status, body.Error.Code, body.Error.Message, wantStatus, wantCode)
	}
	if body.Error.Message == "" {
		t.Errorf("%s: empty error message", what)
	}
	for _, m := range mentions {
		if !strings.Contains(body.Error.Message, m) {
			t.Errorf("%s: message %q does not mention %q", what, body.Error.Message, m)
		}
	}
	if ct := hdr.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s: Content-Type %q, want application/json", what, ct)
	}
	return body
}

func (e *robustEnv) wantHealthy(after string) {
	e.t.Helper()
	if status, _, data := e.call("GET", "/healthz", "", nil); status != http.StatusOK {
		e.t.Fatalf("after %s: /healthz %d %q", after, status, data)
	}
}

// admit posts to /v1/admit with the gateway token and decodes the decision.
func (e *robustEnv) admit(sender string) (int, api.Decision) {
	e.t.Helper()
	body := fmt.Sprintf(`{"channel":"telegram","sender":%q}`, sender)
	status, _, data := e.call("POST", "/v1/admit", e.gateway, []byte(body))
	var d api.Decision
	if status == http.StatusOK {
		if err := json.Unmarshal(data, &d); err != nil {
			e.t.Fatalf("admit %s: not a decision: %q", sender, data)
		}
	}
	return status, d
}

// padTo fills a JSON object with whitespace before its closing brace so the
// body is exactly n bytes: still one valid object.
func padTo(obj string, n int) []byte {
	if !strings.HasSuffix(obj, "}") || len(obj) > n {
		panic("padTo: " + obj)
	}
	return []byte(obj[:len(obj)-1] + strings.Repeat(" ", n-len(obj)) + "}")
}

// TestRobustBadBodies: every malformed body on the two JSON routes a
// gateway and an operator call most gets a 4xx naming the problem, never a
// 5xx or a dropped connection; 64 KiB is the limit, inclusive.
func TestRobustBadBodies(t *testing.T) {
	e := newRobustEnv(t, robustOptions{})
	// A live request for the at-limit approval.
	_, d := e.admit("9001")
	if d.Verdict != api.Challenge {
		t.Fatalf("setup: %+v", d)
	}
	type badBody struct {
		name     string
		body     []byte
		status   int
		code     string
		mentions []string
	}
	// common are the bodies that are wrong on any route, built around obj,
	// a valid object for that route.
	common := func(obj string) []badBody {
		open := obj[:len(obj)-1]
		return []badBody{
			{"garbage bytes", []byte("\x00\xff\xfe\x01garbage"), 400, "bad_request", []string{"malformed JSON", "byte 1"}},
			{"form encoded", []byte("channel=telegram&sender=1"), 400, "bad_request", []string{"malformed JSON"}},
			{"truncated", []byte(`{"channel":"tele`), 400, "bad_request", []string{"ends early"}},
			{"truncated after a field", []byte(open + ","), 400, "bad_request", []string{"ends early"}},
			{"empty", []byte{}, 400, "bad_request", []string{"empty"}},
			{"whitespace only", []byte("  \n\t "), 400, "bad_request", []string{"empty"}},
			{"array", []byte("[" + obj + "]"), 400, "bad_request", []string{"array"}},
			{"string", []byte(`"telegram"`), 400, "bad_request", []string{"string"}},
			{"unknown field", []byte(open + `,"senderName":"x"}`), 400, "bad_request", []string{`unknown field "senderName"`}},
			{"duplicate object", []byte(obj + " " + obj), 400, "bad_request", []string{"trailing data"}},
			{"trailing garbage", []byte(obj + "x"), 400, "bad_request", []string{"trailing data"}},
			{"trailing brace", []byte(obj + "}"), 400, "bad_request", []string{"trailing data"}},
			{"trailing bracket", []byte(obj + "]"), 400, "bad_request", []string{"trailing data"}},
			{"one byte over the limit", padTo(obj, server.MaxBodyBytes+1), 413, "too_large", []string{"65536"}},
			{"far over the limit", padTo(obj, 1<<20), 413, "too_large", []string{"65536"}},
			{"over the limit in a string", []byte(`{"channel":"` + strings.Repeat("t", server.MaxBodyBytes) + `"}`), 413, "too_large", []string{"65536"}},
		}
	}
	routes := []struct {
		path     string
		token    string
		valid    string
		specific []badBody
		atLimit  []byte // a valid body of exactly MaxBodyBytes
	}{
		{
			path: "/v1/admit", token: e.gateway, valid: `{"channel":"telegram","sender":"1"}`,
			specific: []badBody{
				{"wrong type", []byte(`{"channel":"telegram","sender":5}`), 400, "bad_request", []string{`"sender"`, "string", "number"}},
				{"wrong type bool", []byte(`{"channel":"telegram","sender":"5","sender_name":true}`), 400, "bad_request", []string{`"sender_name"`}},
				{"wrong type object", []byte(`{"channel":{"name":"telegram"},"sender":"5"}`), 400, "bad_request", []string{`"channel"`, "object"}},
				{"null", []byte(`null`), 400, "invalid_input", []string{`"channel"`, `"sender"`}},
				{"no sender", []byte(`{"channel":"telegram"}`), 400, "invalid_input", []string{`"sender"`}},
				{"bad chat", []byte(`{"channel":"telegram","sender":"5","chat":"channel"}`), 400, "invalid_input", []string{`"chat"`, "dm", "group"}},
			},
			atLimit: padTo(`{"channel":"telegram","sender":"9002","sender_name":"`+strings.Repeat("n", 300)+`"}`, server.MaxBodyBytes),
		},
		{
			path: "/v1/pairing/approve", token: robustAdmin, valid: `{"channel":"telegram","request_id":"req_none"}`,
			specific: []badBody{
				{"wrong type", []byte(`{"channel":"telegram","code":12345678}`), 400, "bad_request", []string{`"code"`, "string", "number"}},
				{"wrong type notify", []byte(`{"channel":"telegram","code":"ABCD2345","notify":"yes"}`), 400, "bad_request", []string{`"notify"`, "bool"}},
				{"code and request_id", []byte(`{"channel":"telegram","code":"ABCD2345","request_id":"req_x"}`), 400, "invalid_input", []string{`"code"`, `"request_id"`}},
				{"neither", []byte(`{"channel":"telegram"}`), 400, "invalid_input", []string{`"code"`, `"request_id"`}},
				{"unknown channel", []byte(`{"channel":"icq","request_id":"req_x"}`), 400, "invalid_input", []string{"icq", "telegram"}},
				{"malformed code", []byte(`{"channel":"telegram","code":"ABC"}`), 400, "invalid_input", []string{"8 characters"}},
			},
			atLimit: padTo(`{"channel":"telegram","request_id":"`+d.RequestID+`"}`, server.MaxBodyBytes),
		},
	}
	for _, rt := range routes {
		t.Run(strings.TrimPrefix(rt.path, "/v1/"), func(t *testing.T) {
			for _, c := range append(common(rt.valid), rt.specific...) {
				t.Run(c.name, func(t *testing.T) {
					status, hdr, data := e.call("POST", rt.path, rt.token, c.body)
					wantError(t, fmt.Sprintf("POST %s with %d bytes", rt.path, len(c.body)), status, hdr, data, c.status, c.code, c.mentions...)
					e.wantHealthy(rt.path + " " + c.name)
				})
			}
			t.Run("exactly at the limit", func(t *testing.T) {
				if len(rt.atLimit) != server.MaxBodyBytes {
					t.Fatalf("at-limit body is %d bytes", len(rt.atLimit))
				}
				status, _, data := e.call("POST", rt.path, rt.token, rt.atLimit)
				if status != 200 {
					t.Errorf("%s with a valid body of exactly %d bytes: %d %q, want 200", rt.path, server.MaxBodyBytes, status, data)
				}
			})
		})
	}
	// The at-limit approval went through: its sender is admitted.
	if _, d := e.admit("9001"); d.Verdict != api.Admit {
		t.Errorf("sender approved with an at-limit body: %+v", d)
	}
	e.wantHealthy("all bad bodies")
}

// robustRoutes is every /v1 route with its method and a valid body.
var robustRoutes = []struct {
	method, path, body string
	admin              bool
}{
	{"POST", "/v1/admit", `{"channel":"telegram","sender":"1"}`, false},
	{"GET", "/v1/pairing/requests", "", true},
	{"POST", "/v1/pairing/approve", `{"channel":"telegram","request_id":"req_none"}`, true},
	{"POST", "/v1/pairing/reject", `{"channel":"telegram","request_id":"req_none"}`, true},
	{"GET", "/v1/pairing/allowed", "", true},
	{"POST", "/v1/pairing/allow", `{"channel":"telegram","sender":"2"}`, true},
	{"POST", "/v1/pairing/revoke", `{"channel":"telegram","sender":"2"}`, true},
	{"GET", "/v1/audit", "", true},
}

// TestRobustMethodsPathsAndTokens: wrong methods, unknown paths and bad
// credentials on every /v1 route, and a gateway token revoked while the
// server runs.
func TestRobustMethodsPathsAndTokens(t *testing.T) {
	e := newRobustEnv(t, robustOptions{})
	body := func(s string) []byte {
		if s == "" {
			return nil
		}
		return []byte(s)
	}

	for _, r := range robustRoutes {
		wrong := []string{"PUT", "DELETE", "PATCH"}
		if r.method == "POST" {
			wrong = append(wrong, "GET")
		} else {
			wrong = append(wrong, "POST")
		}
		for _, m := range wrong {
			for _, tok := range []string{"", robustAdmin} {
				what := fmt.Sprintf("%s %s (token %t)", m, r.path, tok != "")
				status, hdr, data := e.call(m, r.path, tok, body(r.body))
				wantError(t, what, status, hdr, data, 405, "method_not_allowed", r.path, r.method, m)
				if got := hdr.Get("Allow"); got != r.method {
					t.Errorf("%s: Allow %q, want %q", what, got, r.method)
				}
			}
		}
	}

	for _, p := range []string{"/v1/nope", "/v1/admit/", "/v1/Admit", "/v2/admit", "/v1", "/v1/pairing", "/v1/pairing/requests/x", "/%2e%2e/v1/admit", "/v1/admit.json"} {
		status, hdr, data := e.call("GET", p, robustAdmin, nil)
		wantError(t, "GET "+p, status, hdr, data, 404, "not_found", "no such endpoint")
		status, hdr, data = e.call("POST", p, e.gateway, []byte(`{}`))
		wantError(t, "POST "+p, status, hdr, data, 404, "not_found", "no such endpoint")
	}

	badAuth := map[string]string{
		"missing":           "",
		"empty bearer":      "Bearer ",
		"basic":             "Basic " + robustAdmin,
		"no scheme":         robustAdmin,
		"wrong token":       "Bearer pga_not-the-admin-token-0123456789abcdefghijk",
		"admin prefix only": "Bearer " + robustAdmin[:len(robustAdmin)-1],
		"gateway plus junk": "Bearer " + e.gateway + "x",
	}
	for _, r := range robustRoutes {
		for name, auth := range badAuth {
			req, _ := http.NewRequest(r.method, e.url+r.path, bytes.NewReader(body(r.body)))
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			resp, err := e.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			data, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			what := r.method + " " + r.path + " " + name
			wantError(t, what, resp.StatusCode, resp.Header, data, 401, "unauthorized")
			if !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%s: WWW-Authenticate %q", what, resp.Header.Get("WWW-Authenticate"))
			}
		}
		status, hdr, data := e.call(r.method, r.path, e.gateway, body(r.body))
		if r.admin {
			wantError(t, r.path+" with a gateway token", status, hdr, data, 403, "forbidden", "/v1/admit")
		} else if status != 200 {
			t.Errorf("%s with a gateway token: %d %q", r.path, status, data)
		}
		if status, _, data := e.call(r.method, r.path, robustAdmin, body(r.body)); status == 401 || status == 403 || status >= 500 {
			t.Errorf("%s with the admin token: %d %q", r.path, status, data)
		}
	}

	// A gateway token minted and then revoked while the server runs:
	// accepted within 1 s of minting, refused within 1 s of revocation.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	gw, err := apitoken.New(apitoken.Options{Store: e.sqlite}).Create(ctx, store.ScopeGateway, "short-lived", store.Actor{Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	admitWith := func(tok string) int {
		status, _, _ := e.call("POST", "/v1/admit", tok, []byte(`{"channel":"telegram","sender":"1"}`))
		return status
	}
	waitStatus := func(what, tok string, want int) {
		t.Helper()
		start := time.Now()
		for {
			got := admitWith(tok)
			if got == want {
				t.Logf("%s: took %v", what, time.Since(start).Round(time.Millisecond))
				return
			}
			if time.Since(start) > time.Second {
				t.Fatalf("%s: still %d after 1 s, want %d", what, got, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitStatus("minted token accepted", gw.Token, 200)
	if _, err := e.sqlite.RevokeToken(ctx, gw.ID, store.Actor{Name: "test"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	waitStatus("revoked token refused", gw.Token, 401)
	for _, r := range robustRoutes {
		status, hdr, data := e.call(r.method, r.path, gw.Token, body(r.body))
		wantError(t, r.path+" with a revoked token", status, hdr, data, 401, "unauthorized", "revoked")
	}
	// Revoking one token leaves the others alone.
	if got := admitWith(e.gateway); got != 200 {
		t.Errorf("the other gateway token after a revocation: %d", got)
	}
	e.wantHealthy("auth checks")
}

// startGate is a store whose RecentChanges (which the followers call
// first, to find where the change log ends) waits until open is closed: it
// holds the daemon in the moment between loading the tokens and following
// the log.
type startGate struct {
	store.Store
	open chan struct{}
}

func (g *startGate) RecentChanges(ctx context.Context, q store.ChangeQuery) ([]store.Change, error) {
	select {
	case <-g.open:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return g.Store.RecentChanges(ctx, q)
}

// TestRobustTokenChangesWhileStarting: a token minted or revoked (with the
// CLI, say) after the Authenticator loaded the tokens but before its Run
// began following the change log still takes effect within 1 s. A revoked token
// that keeps working until the next restart is a hole.
func TestRobustTokenChangesWhileStarting(t *testing.T) {
	gate := &startGate{open: make(chan struct{})}
	e := newRobustEnv(t, robustOptions{wrap: func(s *sqlite.Store) store.Store {
		gate.Store = s
		return gate
	}})
	opened := false
	t.Cleanup(func() {
		if !opened {
			close(gate.open)
		}
	})
	ctx := context.Background()
	minted, err := apitoken.New(apitoken.Options{Store: e.sqlite}).Create(ctx, store.ScopeGateway, "minted-at-start", store.Actor{Name: "cli:test"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.sqlite.RevokeToken(ctx, e.gatewayID, store.Actor{Name: "cli:test"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	close(gate.open)
	opened = true
	body := []byte(`{"channel":"telegram","sender":"1"}`)
	start := time.Now()
	for {
		revoked, _, _ := e.call("POST", "/v1/admit", e.gateway, body)
		fresh, _, _ := e.call("POST", "/v1/admit", minted.Token, body)
		if revoked == 401 && fresh == 200 {
			t.Logf("token changes made while the server started took effect after %v", time.Since(start).Round(time.Millisecond))
			return
		}
		if time.Since(start) > 1500*time.Millisecond {
			t.Fatalf("1.5 s after Run started: the token revoked during startup gets %d (want 401), the one minted during startup gets %d (want 200)", revoked, fresh)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRobustSlowlorisIsCutOff: clients that dribble a request line or
// headers are disconnected once ReadHeaderTimeout passes, while normal
// requests are served meanwhile.
func TestRobustSlowlorisIsCutOff(t *testing.T) {
	const rht = time.Second
	e := newRobustEnv(t, robustOptions{readHeaderTimeout: rht})
	partials := []string{
		"G",
		"GET /heal",
		"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ",
		"POST /v1/admit HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + e.gateway + "\r\nContent-Length: 40\r\nX-Slow: ",
	}
	const perKind = 10
	type cut struct {
		kind int
		took time.Duration
		err  error
	}
	results := make(chan cut, len(partials)*perKind)
	var wg sync.WaitGroup
	for k, p := range partials {
		for range perKind {
			c, err := net.Dial("tcp", e.addr)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				stop := make(chan struct{})
				// Dribble a byte every 100 ms: each arrives well within any
				// per-read timeout, so only a deadline on the whole header
				// ends this.
				go func() {
					if _, err := io.WriteString(c, p); err != nil {
						return
					}
					tick := time.NewTicker(100 * time.Millisecond)
					defer tick.Stop()
					for {
						select {
						case <-stop:
							return
						case <-tick.C:
							if _, err := c.Write([]byte("a")); err != nil {
								return
							}
						}
					}
				}()
				c.SetReadDeadline(start.Add(10 * rht)) // bounds the test if the server never cuts
				_, err := io.ReadAll(c)
				close(stop)
				results <- cut{kind: k, took: time.Since(start), err: err}
			}()
		}
	}
	// Meanwhile, normal traffic is served promptly.
	deadline := time.Now().Add(rht * 8 / 10)
	served := 0
	for time.Now().Before(deadline) {
		start := time.Now()
		if status, _, data := e.call("GET", "/healthz", "", nil); status != 200 {
			t.Fatalf("/healthz during slowloris: %d %q", status, data)
		}
		status, d := e.admit("7001")
		if status != 200 || d.Verdict == api.Admit {
			t.Fatalf("/v1/admit during slowloris: %d %+v", status, d)
		}
		if took := time.Since(start); took > 400*time.Millisecond {
			t.Errorf("a normal request pair took %v while slow clients were connected", took)
		}
		served++
	}
	wg.Wait()
	close(results)
	var longest time.Duration
	for r := range results {
		var ne net.Error
		if errors.As(r.err, &ne) && ne.Timeout() {
			t.Errorf("slow client %q was never disconnected (gave up after %v)", partials[r.kind], r.took)
			continue
		}
		if r.took < rht*8/10 || r.took > 2*rht {
			t.Errorf("slow client %q disconnected after %v, want between %v and %v", partials[r.kind], r.took, rht*8/10, 2*rht)
		}
		longest = max(longest, r.took)
	}
	t.Logf("%d slow clients cut off, the last after %v; %d normal request pairs served meanwhile", len(partials)*perKind, longest.Round(time.Millisecond), served)
	e.wantHealthy("slowloris")
}

// robustHolderEnv names the environment variables that make this test
// binary a connection holder (see TestRobustConnectionHolder).
const (
	robustHolderAddr  = "PAIRGATE_ROBUST_HOLDER_ADDR"
	robustHolderCount = "PAIRGATE_ROBUST_HOLDER_COUNT"
	robustHolderToken = "PAIRGATE_ROBUST_HOLDER_TOKEN"
)

// noFileAtLeast makes sure this process may open n files, raising the soft
// limit (and, where permitted, the hard one) if needed, and skips the test
// saying why if it cannot.
func noFileAtLeast(t *testing.T, n uint64) {
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Skipf("cannot read RLIMIT_NOFILE: %v", err)
	}
	if old.Cur >= n {
		return
	}
	want := syscall.Rlimit{Cur: n, Max: max(old.Max, n)}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
		t.Skipf("this test needs RLIMIT_NOFILE ≥ %d to hold 10,000 connections; it is %d (hard %d) and cannot be raised: %v. Raise it with `ulimit -n %d` (as root, or with CAP_SYS_RESOURCE, the hard limit too).", n, old.Cur, old.Max, err, n)
	}
	t.Cleanup(func() { syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old) })
}

// TestRobustTenThousandConnections: with 10,000 idle connections open, the
// server still answers /healthz and /v1/admit quickly, on new connections
// and on the idle ones, and releases them all when the clients go.
//
// The client ends live in a helper process (this test binary, running
// TestRobustConnectionHolder), as they would on a real host: so each
// process needs about 10,000 descriptors, not 20,000, and the test runs
// where the hard RLIMIT_NOFILE cannot be raised (containers without
// CAP_SYS_RESOURCE).
func TestRobustTenThousandConnections(t *testing.T) {
	const conns = 10_000
	noFileAtLeast(t, conns+2_000)
	var open, peak atomic.Int64
	e := newRobustEnv(t, robustOptions{
		// Long enough that no idle connection is cut while the test holds
		// it; cutting them is TestRobustSlowlorisIsCutOff's subject.
		readHeaderTimeout: time.Minute,
		connState: func(_ net.Conn, s http.ConnState) {
			switch s {
			case http.StateNew:
				n := open.Add(1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
			case http.StateClosed, http.StateHijacked:
				open.Add(-1)
			}
		},
	})
	e.client.Transport.(*http.Transport).CloseIdleConnections()
	base := open.Load()

	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	holder := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestRobustConnectionHolder$", "-test.count=1")
	holder.Env = append(os.Environ(), robustHolderAddr+"="+e.addr, robustHolderCount+"="+fmt.Sprint(conns), robustHolderToken+"="+e.gateway)
	holder.Stderr = os.Stderr
	stdin, err := holder.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	var waitErr error
	exited := make(chan struct{}) // closed when the holder has exited; then waitErr is set
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if l, ok := strings.CutPrefix(sc.Text(), "holder: "); ok {
				lines <- l
			}
		}
		close(lines)
		waitErr = holder.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		stdin.Close()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			holder.Process.Kill()
		}
	})
	expect := func(prefix string) string {
		t.Helper()
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("the connection holder exited before saying %q", prefix)
				}
				if strings.HasPrefix(l, "error") {
					t.Fatalf("connection holder: %s", l)
				}
				if strings.HasPrefix(l, prefix) {
					return l
				}
				t.Logf("connection holder: %s", l)
			case <-ctx.Done():
				t.Fatalf("the connection holder did not say %q in time", prefix)
			}
		}
	}
	t.Logf("connection holder: %s", expect("open"))
	// Every connection reached the server (accepted, not just queued in
	// the kernel's backlog).
	for wait := time.Now(); open.Load()-base < conns; time.Sleep(10 * time.Millisecond) {
		if time.Since(wait) > 5*time.Second {
			t.Fatalf("the server holds %d of %d connections", open.Load()-base, conns)
		}
	}
	t.Logf("%d connections open after %v; the server holds %d", conns, time.Since(start).Round(time.Millisecond), open.Load())

	// New connections are accepted and answered promptly.
	e.client = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	for i := range 5 {
		s := time.Now()
		e.wantHealthy("10,000 connections")
		status, d := e.admit(fmt.Sprint(8000 + i))
		if status != 200 || (d.Verdict != api.Challenge && d.Reason != api.ReasonMaxPending) {
			t.Fatalf("/v1/admit with 10,000 connections open: %d %+v", status, d)
		}
		if took := time.Since(s); took > time.Second {
			t.Errorf("/healthz and /v1/admit took %v with 10,000 connections open", took)
		} else {
			t.Logf("/healthz and /v1/admit on a new connection: %v", took.Round(time.Microsecond))
		}
	}
	// The idle connections themselves are served.
	io.WriteString(stdin, "probe\n")
	t.Logf("connection holder: %s", expect("probed"))

	// The clients go; the server lets go of every connection.
	stdin.Close()
	select {
	case <-exited:
		if waitErr != nil {
			t.Fatalf("connection holder: %v", waitErr)
		}
	case <-ctx.Done():
		t.Fatal("the connection holder did not exit")
	}
	for wait := time.Now(); open.Load() > base; time.Sleep(10 * time.Millisecond) {
		if time.Since(wait) > 5*time.Second {
			t.Fatalf("the server still holds %d connections 5 s after the clients closed them", open.Load()-base)
		}
	}
	t.Logf("peak %d connections held by the server; all released; %v in all", peak.Load(), time.Since(start).Round(time.Millisecond))
	e.wantHealthy("closing 10,000 connections")
}

// TestRobustConnectionHolder is not a test: run by
// TestRobustTenThousandConnections as a separate process, it opens the
// connections, says "holder: open", and on "probe" sends POST /v1/admit on
// three of the idle connections and says "holder: probed" (or "holder:
// error ..."). It closes everything and exits when its stdin closes.
func TestRobustConnectionHolder(t *testing.T) {
	addr := os.Getenv(robustHolderAddr)
	if addr == "" {
		return // run normally: nothing to do
	}
	say := func(format string, args ...any) { fmt.Printf("holder: "+format+"\n", args...) }
	fail := func(format string, args ...any) { say("error "+format, args...); os.Exit(1) }
	var n int
	fmt.Sscan(os.Getenv(robustHolderCount), &n)
	token := os.Getenv(robustHolderToken)
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); lim.Cur < uint64(n)+100 {
		if lim.Max < uint64(n)+100 {
			fail("RLIMIT_NOFILE hard limit %d is too low for %d connections", lim.Max, n)
		}
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			fail("raising RLIMIT_NOFILE: %v", err)
		}
	}
	start := time.Now()
	cs := make([]net.Conn, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr atomic.Pointer[error]
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := net.Dialer{Timeout: 5 * time.Second}
			for {
				i := int(next.Add(1) - 1)
				if i >= n || firstErr.Load() != nil {
					return
				}
				c, err := d.Dial("tcp", addr)
				if err != nil {
					err = fmt.Errorf("connection %d: %w", i, err)
					firstErr.CompareAndSwap(nil, &err)
					return
				}
				cs[i] = c
			}
		}()
	}
	wg.Wait()
	if err := firstErr.Load(); err != nil {
		fail("opening %d connections: %v", n, *err)
	}
	say("open %d connections in %v", n, time.Since(start).Round(time.Millisecond))
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		if sc.Text() != "probe" {
			continue
		}
		for _, i := range []int{0, n / 2, n - 1} {
			c := cs[i]
			c.SetDeadline(time.Now().Add(5 * time.Second))
			s := time.Now()
			body := `{"channel":"telegram","sender":"1"}`
			fmt.Fprintf(c, "POST /v1/admit HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
				addr, token, len(body), body)
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				fail("idle connection %d: %v", i, err)
			}
			data, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			var d api.Decision
			if err != nil || resp.StatusCode != 200 || json.Unmarshal(data, &d) != nil || d.Verdict == "" {
				fail("idle connection %d: %d %q %v", i, resp.StatusCode, data, err)
			}
			if took := time.Since(s); took > time.Second {
				fail("idle connection %d answered after %v", i, took)
			}
			say("idle connection %d answered %s in %v", i, d.Verdict, time.Since(s).Round(time.Microsecond))
		}
		say("probed")
	}
	for _, c := range cs {
		c.Close()
	}
	os.Exit(0)
}

// flakyStore is a real store that can be switched off: while down, the
// reads and writes the gate, the followers and /readyz use fail the way a
// lost database does (wrapping store.ErrUnavailable).
type flakyStore struct {
	store.Store
	down  atomic.Bool
	calls atomic.Int64 // failed calls while down
}

func (f *flakyStore) fail(op string) error {
	f.calls.Add(1)
	return fmt.Errorf("%w: %s: disk I/O error (test)", store.ErrUnavailable, op)
}

func (f *flakyStore) LockedUntil(ctx context.Context, scope store.Scope, now time.Time) (time.Time, error) {
	if f.down.Load() {
		return time.Time{}, f.fail("LockedUntil")
	}
	return f.Store.LockedUntil(ctx, scope, now)
}

func (f *flakyStore) DeclinedSince(ctx context.Context, scope store.Scope, sender string, since time.Time) (bool, error) {
	if f.down.Load() {
		return false, f.fail("DeclinedSince")
	}
	return f.Store.DeclinedSince(ctx, scope, sender, since)
}

func (f *flakyStore) GateState(ctx context.Context, scope store.Scope, sender string, now, since time.Time, limit int) (store.GateState, error) {
	if f.down.Load() {
		return store.GateState{}, f.fail("GateState")
	}
	return f.Store.GateState(ctx, scope, sender, now, since, limit)
}

func (f *flakyStore) CreateRequest(ctx context.Context, p store.CreateRequestParams) (store.Request, error) {
	if f.down.Load() {
		return store.Request{}, f.fail("CreateRequest")
	}
	return f.Store.CreateRequest(ctx, p)
}

func (f *flakyStore) MarkRequestSent(ctx context.Context, id string, notAfter, now time.Time, out ...store.OutboundMessage) (bool, error) {
	if f.down.Load() {
		return false, f.fail("MarkRequestSent")
	}
	return f.Store.MarkRequestSent(ctx, id, notAfter, now, out...)
}

func (f *flakyStore) MarkNotice(ctx context.Context, scope store.Scope, sender, kind string, notAfter, now time.Time, out ...store.OutboundMessage) (bool, error) {
	if f.down.Load() {
		return false, f.fail("MarkNotice")
	}
	return f.Store.MarkNotice(ctx, scope, sender, kind, notAfter, now, out...)
}

func (f *flakyStore) Ping(ctx context.Context) error {
	if f.down.Load() {
		return f.fail("Ping")
	}
	return f.Store.Ping(ctx)
}

func (f *flakyStore) ListRequests(ctx context.Context, filter store.RequestFilter, now time.Time) ([]store.Request, error) {
	if f.down.Load() {
		return nil, f.fail("ListRequests")
	}
	return f.Store.ListRequests(ctx, filter, now)
}

func (f *flakyStore) Changes(ctx context.Context, after int64, limit int) ([]store.Change, error) {
	if f.down.Load() {
		return nil, f.fail("Changes")
	}
	return f.Store.Changes(ctx, after, limit)
}

func (f *flakyStore) ScanAllowed(ctx context.Context, fn func(store.Scope, string) error) (int64, error) {
	if f.down.Load() {
		return 0, f.fail("ScanAllowed")
	}
	return f.Store.ScanAllowed(ctx, fn)
}

// TestRobustStoreUnavailable: while the store is down the gate fails
// closed (drop, unavailable; never admit, never a 5xx), senders already
// allowed are still admitted from memory, /readyz says 503, and everything
// recovers when the store comes back.
func TestRobustStoreUnavailable(t *testing.T) {
	var fs *flakyStore
	e := newRobustEnv(t, robustOptions{wrap: func(s *sqlite.Store) store.Store {
		fs = &flakyStore{Store: s}
		return fs
	}})
	ctx := context.Background()
	if _, err := e.svc.Allow(ctx, "telegram", "", []string{"42"}, store.ViaManual, store.Actor{Name: "test"}); err != nil {
		t.Fatal(err)
	}
	if status, _, data := e.call("GET", "/readyz", "", nil); status != 200 {
		t.Fatalf("/readyz with the store up: %d %q", status, data)
	}
	// A sender who was challenged before the outage, to exercise the
	// "already pending" path while down.
	if _, d := e.admit("43"); d.Verdict != api.Challenge {
		t.Fatalf("setup: %+v", d)
	}

	fs.down.Store(true)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 5 {
				sender := fmt.Sprint(5000 + i*10 + j)
				if j == 0 {
					sender = "43"
				}
				status, d := e.admit(sender)
				if status != 200 || d.Verdict != api.Drop || d.Reason != api.ReasonUnavailable || d.Code != "" || d.Reply != "" {
					t.Errorf("admit %s with the store down: %d %+v, want 200 drop unavailable (no code, no reply)", sender, status, d)
				}
			}
		}()
	}
	wg.Wait()
	for range 3 {
		if status, d := e.admit("42"); status != 200 || d.Verdict != api.Admit || d.Reason != api.ReasonAllowed {
			t.Errorf("allowed sender with the store down: %d %+v, want admit allowed", status, d)
		}
	}
	status, _, data := e.call("GET", "/readyz", "", nil)
	if status != 503 {
		t.Errorf("/readyz with the store down: %d %q, want 503", status, data)
	}
	status, hdr, data := e.call("GET", "/v1/pairing/requests", robustAdmin, nil)
	wantError(t, "pending list with the store down", status, hdr, data, 503, "unavailable")
	if bytes.Contains(data, []byte("disk I/O")) {
		t.Errorf("the store's error leaks to the caller: %q", data)
	}
	// The followers keep polling a dead store for a while without harm.
	time.Sleep(1200 * time.Millisecond)
	e.wantHealthy("the store going down")
	if fs.calls.Load() == 0 {
		t.Fatal("the wrapper was never called: the test does not test anything")
	}

	fs.down.Store(false)
	if status, _, data := e.call("GET", "/readyz", "", nil); status != 200 {
		t.Errorf("/readyz after the store came back: %d %q", status, data)
	}
	if status, d := e.admit("5000"); status != 200 || d.Verdict != api.Challenge || d.Code == "" {
		t.Errorf("unknown sender after the store came back: %d %+v, want a challenge", status, d)
	}
	// The followers recovered too: a change made behind the server's back
	// (as the CLI would) reaches its gate.
	if _, err := e.sqlite.Allow(ctx, store.AllowParams{Scope: store.Scope{Channel: "telegram", Account: "default"}, Senders: []store.AllowSender{{Sender: "44"}},
		Via: store.ViaManual, Actor: store.Actor{Name: "cli:test"}, Now: time.Now()}); err != nil {
		t.Fatal(err)
	}
	for start := time.Now(); ; time.Sleep(10 * time.Millisecond) {
		if _, d := e.admit("44"); d.Verdict == api.Admit {
			break
		}
		if time.Since(start) > 2*time.Second {
			t.Fatal("a sender allowed in the store after the outage is not admitted within 2 s")
		}
	}
	status, _, data = e.call("GET", "/metrics", "", nil)
	if status != 200 || !bytes.Contains(data, []byte(`pairgate_gate_decisions_total{reason="unavailable",verdict="drop"} 80`)) {
		t.Errorf("/metrics after the outage: %d, want 80 drops for unavailable counted:\n%s", status, robustGrep(data, "pairgate_gate_decisions_total"))
	}
}

func robustGrep(data []byte, prefix string) string {
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
