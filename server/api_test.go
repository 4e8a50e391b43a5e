package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pairgate/pairgate/api"
	"github.com/pairgate/pairgate/apitoken"
	"github.com/pairgate/pairgate/config"
	"github.com/pairgate/pairgate/pairing"
	"github.com/pairgate/pairgate/secret"
	"github.com/pairgate/pairgate/server"
	"github.com/pairgate/pairgate/store"
	"github.com/pairgate/pairgate/store/sqlite"
)

const adminToken = "pga_test-admin-token-0123456789abcdefghijklmnop"

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type apiEnv struct {
	t       testing.TB
	handler http.Handler
	url     string
	st      *sqlite.Store
	svc     *pairing.Service
	clock   *clock
	gateway string
	srv     *server.Server
}

func newAPI(t testing.TB) *apiEnv {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(t.TempDir(), "pairgate.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	sec, _ := secret.FromBytes(bytes.Repeat([]byte{9}, secret.Size))
	clk := &clock{t: time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)}
	svc, err := pairing.New(pairing.Options{Store: st, Secret: sec, Config: config.Default(), Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := apitoken.New(apitoken.Options{Store: st, Now: clk.Now}).Authenticator(ctx, adminToken)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Options{Pairing: svc, Store: st, Tokens: tokens, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { follow(runCtx, svc, tokens, srv); close(done) }()
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); cancel(); <-done })
	gw, err := apitoken.New(apitoken.Options{Store: st, Now: clk.Now}).Create(ctx, store.ScopeGateway, "test-gateway", store.Actor{Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	e := &apiEnv{t: t, handler: srv.Handler(), url: hs.URL, st: st, svc: svc, clock: clk, gateway: gw.Token, srv: srv}
	e.waitToken(gw.Token)
	return e
}

// follow runs the followers the daemon runs beside the server
// (internal/daemon): the gate's allowlist view, the API tokens and the
// metrics, until ctx ends.
func follow(ctx context.Context, svc *pairing.Service, tokens *apitoken.Authenticator, srv *server.Server) {
	var wg sync.WaitGroup
	wg.Go(func() { svc.Run(ctx) })
	wg.Go(func() { tokens.Run(ctx) })
	wg.Go(func() { srv.Run(ctx) })
	wg.Wait()
}

// waitToken waits until the server accepts a token minted in the store.
func (e *apiEnv) waitToken(tok string) {
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if st, _ := e.do(tok, "POST", "/v1/admit", `{"channel":"icq","sender":"1"}`, nil); st != 401 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.t.Fatal("the server did not accept a new token within 2 s")
}

// do sends a request and decodes the JSON answer into out (if not nil).
func (e *apiEnv) do(token, method, path, body string, out any) (int, http.Header) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.url+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			e.t.Fatalf("%s %s: %d, body not JSON: %q", method, path, resp.StatusCode, data)
		}
	}
	return resp.StatusCode, resp.Header
}

type apiErr struct {
	Error struct{ Code, Message string }
}

func TestAdmitOverHTTPMatchesInProcess(t *testing.T) {
	e := newAPI(t)
	ctx := context.Background()
	if _, err := e.svc.Allow(ctx, "telegram", "", []string{"42"}, store.ViaManual, store.Actor{Name: "test"}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		body string
		in   pairing.Inbound
	}{
		{`{"channel":"telegram","sender":"tg:42"}`, pairing.Inbound{Channel: "telegram", Sender: "tg:42"}},
		{`{"channel":"telegram","sender":"42","chat":"group"}`, pairing.Inbound{Channel: "telegram", Sender: "42", Chat: api.ChatGroup}},
		{`{"channel":"telegram","sender":"43","chat":"group"}`, pairing.Inbound{Channel: "telegram", Sender: "43", Chat: api.ChatGroup}},
		{`{"channel":"telegram","sender":"abc"}`, pairing.Inbound{Channel: "telegram", Sender: "abc"}},
		{`{"channel":"icq","sender":"1"}`, pairing.Inbound{Channel: "icq", Sender: "1"}},
		{`{"channel":"whatsapp","account":"work","sender":"+5491155556666@s.whatsapp.net"}`, pairing.Inbound{Channel: "whatsapp", Account: "work", Sender: "+5491155556666@s.whatsapp.net"}},
	}
	for _, c := range cases {
		var got api.Decision
		if status, _ := e.do(e.gateway, "POST", "/v1/admit", c.body, &got); status != 200 {
			t.Fatalf("%s: status %d", c.body, status)
		}
		want := e.svc.Admit(ctx, c.in)
		if want.Verdict == api.Challenge {
			// The HTTP call created the request; in process, the same
			// sender is now pending, so compare the HTTP answer with
			// what the first message got: a challenge, with a code.
			if got.Verdict != api.Challenge || got.Code == "" || want.Reason != api.ReasonChallenged {
				t.Errorf("%s: HTTP %+v, in process %+v", c.body, got, want)
			}
			continue
		}
		if want.Reason == api.ReasonPending {
			want = api.Decision{Verdict: api.Challenge, Reason: api.ReasonChallenged, Code: got.Code, RequestID: got.RequestID, Reply: got.Reply}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s (-in process +HTTP):\n%s", c.body, diff)
		}
	}
}

func TestPairingFlowOverHTTP(t *testing.T) {
	e := newAPI(t)
	var d api.Decision
	e.do(e.gateway, "POST", "/v1/admit", `{"channel":"telegram","sender":"7","sender_name":"Bob"}`, &d)
	if d.Verdict != api.Challenge {
		t.Fatal(d)
	}
	var pending struct{ Pending []api.PendingRequest }
	if st, _ := e.do(adminToken, "GET", "/v1/pairing/requests?channel=telegram", "", &pending); st != 200 || len(pending.Pending) != 1 || pending.Pending[0].Name != "Bob" {
		t.Fatalf("requests: %d %+v", st, pending)
	}
	var a api.Approval
	if st, _ := e.do(adminToken, "POST", "/v1/pairing/approve", `{"channel":"telegram","code":"`+strings.ToLower(d.Code)+`","notify":true}`, &a); st != 200 {
		t.Fatalf("approve: %d", st)
	}
	if a.Allowed.Sender != "7" || a.Notify == "" || a.RequestID != d.RequestID {
		t.Fatalf("approval %+v", a)
	}
	e.do(e.gateway, "POST", "/v1/admit", `{"channel":"telegram","sender":"7"}`, &d)
	if d.Verdict != api.Admit {
		t.Fatalf("after approve: %+v", d)
	}
	var allowed struct{ Allowed []api.AllowedSender }
	e.do(adminToken, "GET", "/v1/pairing/allowed", "", &allowed)
	if len(allowed.Allowed) != 1 || allowed.Allowed[0].ApprovedBy != "admin" {
		t.Fatalf("allowed %+v", allowed)
	}
	if st, _ := e.do(adminToken, "POST", "/v1/pairing/revoke", `{"channel":"telegram","sender":"7"}`, nil); st != 200 {
		t.Fatalf("revoke: %d", st)
	}
	e.do(e.gateway, "POST", "/v1/admit", `{"channel":"telegram","sender":"7","chat":"group"}`, &d)
	if d.Verdict != api.Drop {
		t.Fatalf("after revoke: %+v", d)
	}
	e.do(adminToken, "GET", "/v1/pairing/allowed?include_revoked=true", "", &allowed)
	if len(allowed.Allowed) != 1 || allowed.Allowed[0].RevokedAt == nil {
		t.Fatalf("allowed?include_revoked %+v", allowed)
	}
	var res struct{ Allowed []api.AllowResult }
	e.do(adminToken, "POST", "/v1/pairing/allow", `{"channel":"telegram","sender":"7"}`, &res)
	if len(res.Allowed) != 1 || !res.Allowed[0].Changed {
		t.Fatalf("allow %+v", res)
	}
	e.do(e.gateway, "POST", "/v1/admit", `{"channel":"telegram","sender":"8"}`, &d)
	var rej struct{ Rejected api.PendingRequest }
	if st, _ := e.do(adminToken, "POST", "/v1/pairing/reject", `{"channel":"telegram","request_id":"`+d.RequestID+`"}`, &rej); st != 200 || rej.Rejected.Sender != "8" {
		t.Fatalf("reject: %d %+v", st, rej)
	}
	var audit struct{ Changes []api.Change }
	e.do(adminToken, "GET", "/v1/audit?limit=3", "", &audit)
	if len(audit.Changes) != 3 || audit.Changes[0].Kind != string(store.KindRejected) || audit.Changes[0].Actor != "admin" ||
		!strings.HasPrefix(audit.Changes[0].Source, "api 127.0.0.1:") {
		t.Fatalf("audit %+v", audit)
	}
}

func TestErrorsOverHTTP(t *testing.T) {
	e := newAPI(t)
	tests := []struct {
		method, path, body string
		status             int
		code, mention      string
	}{
		{"POST", "/v1/pairing/approve", `{"channel":"telegram","code":"ZZZZZZZZ"}`, 404, "not_found", "no pending request"},
		{"POST", "/v1/pairing/approve", `{"channel":"telegram"}`, 400, "invalid_input", `exactly one of "code" and "request_id"`},
		{"POST", "/v1/pairing/approve", `{"channel":"telegram","code":"ABC"}`, 400, "invalid_input", "8 characters"},
		{"POST", "/v1/pairing/approve", `{"channel":"icq","code":"ABCDEFGH"}`, 400, "invalid_input", "channels: telegram"},
		{"POST", "/v1/pairing/allow", `{"channel":"telegram","sender":"bob"}`, 400, "invalid_input", "numeric Telegram user id"},
		{"POST", "/v1/pairing/revoke", `{"channel":"telegram","sender":"5"}`, 404, "not_found", "not on the allowlist"},
		{"POST", "/v1/admit", `{"channel":"telegram","sender":"5","chat":"channel"}`, 400, "invalid_input", `"chat"`},
		{"GET", "/v1/pairing/requests?chanel=telegram", "", 400, "bad_request", `unknown query parameter "chanel"`},
		{"GET", "/v1/pairing/allowed?include_revoked=maybe", "", 400, "bad_request", "include_revoked"},
		{"GET", "/v1/audit?limit=0", "", 400, "bad_request", "limit"},
		{"GET", "/v1/pairing/requests?account=work", "", 400, "invalid_input", "needs a channel"},
	}
	for _, tt := range tests {
		var got apiErr
		status, _ := e.do(adminToken, tt.method, tt.path, tt.body, &got)
		if status != tt.status || got.Error.Code != tt.code || !strings.Contains(got.Error.Message, tt.mention) {
			t.Errorf("%s %s %s: %d %+v; want %d %s mentioning %q", tt.method, tt.path, tt.body, status, got, tt.status, tt.code, tt.mention)
		}
	}
}

func TestLockedOutIs429WithRetryAfter(t *testing.T) {
	e := newAPI(t)
	for i := 0; i < 4; i++ {
		e.do(adminToken, "POST", "/v1/pairing/approve", `{"channel":"telegram","code":"ZZZZZZZZ"}`, nil)
	}
	var got apiErr
	status, h := e.do(adminToken, "POST", "/v1/pairing/approve", `{"channel":"telegram","code":"ZZZZZZZZ"}`, &got)
	if status != 429 || got.Error.Code != "locked_out" || h.Get("Retry-After") == "" {
		t.Fatalf("fifth wrong code: %d %+v Retry-After=%q", status, got, h.Get("Retry-After"))
	}
}
