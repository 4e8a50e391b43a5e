package web_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pairgate/pairgate/apitoken"
	"github.com/pairgate/pairgate/config"
	"github.com/pairgate/pairgate/device"
	"github.com/pairgate/pairgate/pairing"
	"github.com/pairgate/pairgate/secret"
	"github.com/pairgate/pairgate/server"
	"github.com/pairgate/pairgate/store"
	"github.com/pairgate/pairgate/store/sqlite"
	"github.com/pairgate/pairgate/web"
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

// env is the page as the daemon serves it: behind the API's router, on a
// real SQLite file, with the followers running.
type env struct {
	t       *testing.T
	url     string
	handler http.Handler
	st      *sqlite.Store
	svc     *pairing.Service
	tokens  *apitoken.Service
	clock   *clock
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(t.TempDir(), "pairgate.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	sec, _ := secret.FromBytes(bytes.Repeat([]byte{9}, secret.Size))
	clk := &clock{t: time.Now().UTC().Truncate(time.Millisecond)}
	svc, err := pairing.New(pairing.Options{Store: st, Secret: sec, Config: config.Default(), Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	devs, err := device.New(device.Options{Store: st, Secret: sec, Now: clk.Now,
		URL: func() (string, device.URLSource, error) {
			return "wss://gateway.example.com/pair", device.URLSourceConfig, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	toks := apitoken.New(apitoken.Options{Store: st, Now: clk.Now})
	auth, err := toks.Authenticator(ctx, adminToken)
	if err != nil {
		t.Fatal(err)
	}
	page, err := web.New(web.Options{Pairing: svc, Devices: devs, Store: st, Tokens: auth, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Options{Pairing: svc, Devices: devs, Store: st, Tokens: auth, Now: clk.Now, Web: page})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { svc.Run(runCtx) })
	wg.Go(func() { auth.Run(runCtx) })
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.CloseClientConnections(); hs.Close(); cancel(); wg.Wait() })
	return &env{t: t, url: hs.URL, handler: srv.Handler(), st: st, svc: svc, tokens: toks, clock: clk}
}

// browser is a client with a cookie jar that does not follow redirects, so
// a test sees each answer.
type browser struct {
	e *env
	c *http.Client
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{e: e, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type answer struct {
	status int
	header http.Header
	body   string
}

func (b *browser) do(method, path string, form url.Values, header http.Header) answer {
	b.e.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.e.url+path, body)
	if err != nil {
		b.e.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range header {
		req.Header[k] = v
	}
	res, err := b.c.Do(req)
	if err != nil {
		b.e.t.Fatal(err)
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	return answer{status: res.StatusCode, header: res.Header, body: string(out)}
}

func (b *browser) get(path string) answer { return b.do("GET", path, nil, nil) }
func (b *browser) post(path string, form url.Values) answer {
	return b.do("POST", path, form, nil)
}

func (b *browser) signIn(token string) answer {
	b.e.t.Helper()
	a := b.post("/signin", url.Values{"token": {token}})
	if a.status != http.StatusSeeOther || a.header.Get("Location") != "/" {
		b.e.t.Fatalf("sign in: %d %s, want 303 to /:\n%s", a.status, a.header.Get("Location"), a.body)
	}
	return a
}

func wantStatus(t *testing.T, what string, a answer, status int) {
	t.Helper()
	if a.status != status {
		t.Fatalf("%s: status %d, want %d:\n%s", what, a.status, status, a.body)
	}
}

func wantSignedOut(t *testing.T, what string, b *browser) {
	t.Helper()
	a := b.get("/")
	if a.status != http.StatusSeeOther || a.header.Get("Location") != "/signin" {
		t.Fatalf("%s: GET / = %d %q, want 303 to /signin", what, a.status, a.header.Get("Location"))
	}
}

func TestSignInAndOut(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	wantSignedOut(t, "before signing in", b)
	page := b.get("/signin")
	wantStatus(t, "sign-in page", page, http.StatusOK)

	gw, err := e.tokens.Create(context.Background(), store.ScopeGateway, "gw", store.Actor{Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	wrong := b.post("/signin", url.Values{"token": {"pga_wrong"}})
	gateway := b.post("/signin", url.Values{"token": {gw.Token}})
	wantStatus(t, "a wrong token", wrong, http.StatusUnauthorized)
	wantStatus(t, "a gateway token", gateway, http.StatusUnauthorized)
	if !strings.Contains(wrong.body, "That token does not sign in here") || wrong.body != gateway.body {
		t.Errorf("a wrong token and a gateway token must get the same answer:\n%s\n---\n%s", wrong.body, gateway.body)
	}
	wantSignedOut(t, "after wrong tokens", b)

	a := b.signIn(adminToken)
	cookies := a.header.Values("Set-Cookie")
	if len(cookies) != 1 || !strings.HasPrefix(cookies[0], "pairgate_session=") || !strings.Contains(cookies[0], "HttpOnly") ||
		!strings.Contains(cookies[0], "SameSite=Strict") || !strings.Contains(cookies[0], "Path=/") {
		t.Errorf("session cookie = %q; want pairgate_session, HttpOnly, SameSite=Strict, Path=/", cookies)
	}
	home := b.get("/")
	wantStatus(t, "home", home, http.StatusOK)
	if !strings.Contains(home.body, "DM requests") || !strings.Contains(home.body, "Sign out") {
		t.Errorf("home page lacks its sections:\n%s", home.body)
	}
	if got := b.get("/signin"); got.status != http.StatusSeeOther {
		t.Errorf("sign-in page while signed in = %d, want a redirect home", got.status)
	}

	// Signing out deletes the session in the store: the same cookie,
	// presented again (as a copy of it would be), no longer works.
	u, _ := url.Parse(e.url)
	stolen := b.c.Jar.Cookies(u)
	wantStatus(t, "sign out", b.post("/signout", url.Values{}), http.StatusSeeOther)
	wantSignedOut(t, "after signing out", b)
	replay := e.browser()
	replay.c.Jar.SetCookies(u, stolen)
	wantSignedOut(t, "the cookie presented again after signing out", replay)
}

func TestSecureCookieBehindTLS(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	a := b.do("POST", "/signin", url.Values{"token": {adminToken}}, http.Header{"X-Forwarded-Proto": {"https"}})
	wantStatus(t, "sign in", a, http.StatusSeeOther)
	c := a.header.Get("Set-Cookie")
	if !strings.HasPrefix(c, "__Host-pairgate_session=") || !strings.Contains(c, "Secure") || strings.Contains(c, "Domain") {
		t.Errorf("cookie behind TLS = %q; want __Host- prefix, Secure, no Domain", c)
	}
}

func TestSessionEnds(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()

	t.Run("when it expires", func(t *testing.T) {
		b := e.browser()
		b.signIn(adminToken)
		e.clock.Advance(web.SessionTTL - time.Minute)
		wantStatus(t, "before the end", b.get("/"), http.StatusOK)
		e.clock.Advance(2 * time.Minute)
		wantSignedOut(t, "after SessionTTL", b)
	})

	t.Run("when its token is revoked", func(t *testing.T) {
		tok, err := e.tokens.Create(ctx, store.ScopeAdmin, "ops", store.Actor{Name: "test"})
		if err != nil {
			t.Fatal(err)
		}
		b := e.browser()
		b.signIn(tok.Token)
		home := b.get("/")
		wantStatus(t, "signed in with an API token", home, http.StatusOK)
		if !strings.Contains(home.body, "web:token:ops") {
			t.Errorf("the page does not say who is signed in (web:token:ops)")
		}
		if _, err := e.tokens.Revoke(ctx, tok.ID, store.Actor{Name: "test"}); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(3 * time.Second)
		for b.get("/").status == http.StatusOK {
			if time.Now().After(deadline) {
				t.Fatal("the session outlived its revoked token by 3 s")
			}
			time.Sleep(20 * time.Millisecond)
		}
		wantSignedOut(t, "after revoking the token", b)
	})
}

func TestSignInIsRateLimited(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	for i := range 5 {
		wantStatus(t, "wrong token", b.post("/signin", url.Values{"token": {"pga_guess"}}), http.StatusUnauthorized)
		_ = i
	}
	a := b.post("/signin", url.Values{"token": {adminToken}})
	wantStatus(t, "the sixth attempt at once, even with the right token", a, http.StatusTooManyRequests)
	if a.header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	e.clock.Advance(10 * time.Second)
	b.signIn(adminToken)
}

func TestSignInLinkWorksOnce(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	token, expires, err := web.NewLink(ctx, e.st, e.clock.Now(), "test")
	if err != nil {
		t.Fatal(err)
	}
	if got := expires.Sub(e.clock.Now()); got != web.LinkTTL {
		t.Errorf("link lifetime %v, want %v", got, web.LinkTTL)
	}
	link, _ := url.Parse(web.LinkURL("http://x", token))
	phone := e.browser()
	// Opening the link (a preview or a scanner does that too) only shows
	// a button.
	for range 2 {
		a := phone.get(link.RequestURI())
		wantStatus(t, "opening the link", a, http.StatusOK)
		if !strings.Contains(a.body, `action="/signin/link"`) {
			t.Fatalf("the link page has no sign-in button:\n%s", a.body)
		}
	}
	wantSignedOut(t, "after only opening the link", phone)
	a := phone.post("/signin/link", url.Values{"t": {token}})
	if a.status != http.StatusSeeOther || a.header.Get("Location") != "/" {
		t.Fatalf("using the link: %d %q:\n%s", a.status, a.header.Get("Location"), a.body)
	}
	wantStatus(t, "signed in by the link", phone.get("/"), http.StatusOK)

	again := e.browser().post("/signin/link", url.Values{"t": {token}})
	wantStatus(t, "the link a second time", again, http.StatusUnauthorized)
	if !strings.Contains(again.body, "used already, or it expired") {
		t.Errorf("second use: %s", again.body)
	}

	late, _, err := web.NewLink(ctx, e.st, e.clock.Now(), "test")
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(web.LinkTTL)
	wantStatus(t, "an expired link", e.browser().post("/signin/link", url.Values{"t": {late}}), http.StatusUnauthorized)
}

func TestCrossOriginPostRefused(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.signIn(adminToken)
	form := url.Values{"channel": {"telegram"}, "sender": {"4242"}, "back": {"/allowlist"}}
	for _, h := range []http.Header{
		{"Origin": {"https://evil.example"}},
		{"Sec-Fetch-Site": {"cross-site"}},
	} {
		a := b.do("POST", "/do/allow", form, h)
		wantStatus(t, "a cross-origin POST", a, http.StatusForbidden)
	}
	allowed, err := e.svc.ListAllowed(context.Background(), pairing.Filter{}, true)
	if err != nil || len(allowed) != 0 {
		t.Fatalf("after refused POSTs the allowlist holds %v (%v); want nothing", allowed, err)
	}
	a := b.do("POST", "/do/allow", form, http.Header{"Origin": {e.url}, "Sec-Fetch-Site": {"same-origin"}})
	if a.status != http.StatusSeeOther {
		t.Fatalf("a same-origin POST: %d\n%s", a.status, a.body)
	}
}

func TestSecurityHeaders(t *testing.T) {
	e := newEnv(t)
	for _, path := range []string{"/signin", "/", "/static/pairgate.css"} {
		a := e.browser().get(path)
		csp := a.header.Get("Content-Security-Policy")
		if csp == "" || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "script-src 'self'") {
			t.Errorf("%s: Content-Security-Policy %q", path, csp)
		}
		if a.header.Get("X-Content-Type-Options") != "nosniff" || a.header.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("%s: X-Content-Type-Options %q, Referrer-Policy %q", path, a.header.Get("X-Content-Type-Options"), a.header.Get("Referrer-Policy"))
		}
	}
}

func TestHostileNameShownAsText(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	hostile := "<script>alert(1)</script><img src=x onerror=alert(2)>\x1b[2J\u202eevil"
	d := e.svc.Admit(ctx, pairing.Inbound{Channel: "telegram", Sender: "777", SenderName: hostile})
	if d.Code == "" {
		t.Fatalf("admit: %+v", d)
	}
	b := e.browser()
	b.signIn(adminToken)
	page := b.get("/").body
	for _, bad := range []string{"<script>alert", "<img src=x", "\x1b", "\u202e"} {
		if strings.Contains(page, bad) {
			t.Errorf("the page carries %q raw", bad)
		}
	}
	if !strings.Contains(page, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Errorf("the hostile name is not shown as text")
	}
	if strings.Contains(page, d.Code) {
		t.Error("the page shows the sender's DM code")
	}
}

func TestApproveFromThePage(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	d := e.svc.Admit(ctx, pairing.Inbound{Channel: "telegram", Sender: "1001", SenderName: "Ana"})
	b := e.browser()
	b.signIn(adminToken)
	form := url.Values{"channel": {"telegram"}, "account": {"default"}, "request_id": {d.RequestID}, "notify": {"on"}, "back": {"/"}}
	a := b.post("/do/approve", form)
	if a.status != http.StatusSeeOther || a.header.Get("Location") != "/?done=approved-notify" {
		t.Fatalf("approve: %d %q\n%s", a.status, a.header.Get("Location"), a.body)
	}
	if got := b.get("/?done=approved-notify").body; !strings.Contains(got, "will be told") {
		t.Errorf("no notice after approving")
	}
	if v := e.svc.Admit(ctx, pairing.Inbound{Channel: "telegram", Sender: "1001"}); v.Verdict != "admit" {
		t.Errorf("after approving on the page: %+v", v)
	}
	// A double click, or a second browser: harmless.
	a = b.post("/do/approve", form)
	if a.status != http.StatusSeeOther || a.header.Get("Location") != "/?done=already" {
		t.Errorf("approving twice: %d %q\n%s", a.status, a.header.Get("Location"), a.body)
	}
	changes, err := e.st.RecentChanges(ctx, store.ChangeQuery{Limit: 10, Kind: store.KindApproved})
	if err != nil || len(changes) != 1 || changes[0].Actor.Name != "web:admin" || !strings.HasPrefix(changes[0].Actor.Source, "web ") {
		t.Errorf("approvals recorded: %+v, %v; want one by web:admin from web …", changes, err)
	}
	// A damaged form is a clear 400, not a 500.
	bad := b.post("/do/approve", url.Values{"channel": {"telegram"}, "request_id": {"nope"}})
	wantStatus(t, "approve without a request id", bad, http.StatusBadRequest)
}

// TestEventsResume reads the event stream as a browser's EventSource does:
// a reconnect with Last-Event-ID gets every change after it, then new ones
// as they happen.
func TestEventsResume(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	b := e.browser()
	b.signIn(adminToken)
	e.svc.Admit(ctx, pairing.Inbound{Channel: "telegram", Sender: "1"})
	e.svc.Admit(ctx, pairing.Inbound{Channel: "telegram", Sender: "2"})

	reqCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(reqCtx, "GET", e.url+"/events", nil)
	req.Header.Set("Last-Event-ID", "1")
	res, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET /events: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	lines := bufio.NewScanner(res.Body)
	nextID := func() string {
		for lines.Scan() {
			if id, ok := strings.CutPrefix(lines.Text(), "id: "); ok {
				return id
			}
		}
		t.Fatalf("the stream ended: %v", lines.Err())
		return ""
	}
	if got := nextID(); got != "2" {
		t.Errorf("first event after Last-Event-ID 1 has id %s, want 2", got)
	}
	e.svc.Admit(ctx, pairing.Inbound{Channel: "telegram", Sender: "3"})
	if got := nextID(); got != "3" {
		t.Errorf("the next change arrived as id %s, want 3", got)
	}
}

func TestEventsNeedASession(t *testing.T) {
	e := newEnv(t)
	a := e.browser().get("/events")
	wantStatus(t, "/events signed out", a, http.StatusUnauthorized)
}

func TestLockedScopeAndUnlock(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.svc.Admit(ctx, pairing.Inbound{Channel: "telegram", Sender: "1"})
	for range 5 {
		if _, err := e.svc.Approve(ctx, pairing.Target{Channel: "telegram", CodeOrID: "AAAA-AAAA"}, false, store.Actor{Name: "test"}); err == nil {
			t.Fatal("a wrong code approved")
		}
	}
	b := e.browser()
	b.signIn(adminToken)
	page := b.get("/").body
	if !strings.Contains(page, "Approvals are locked until") || !strings.Contains(page, `action="/do/unlock"`) {
		t.Fatalf("the locked scope is not shown with its unlock button:\n%s", page)
	}
	a := b.post("/do/unlock", url.Values{"channel": {"telegram"}, "account": {"default"}, "back": {"/"}})
	if a.status != http.StatusSeeOther || a.header.Get("Location") != "/?done=unlocked" {
		t.Fatalf("unlock: %d %q\n%s", a.status, a.header.Get("Location"), a.body)
	}
	if strings.Contains(b.get("/").body, "Approvals are locked") {
		t.Error("still shown as locked after unlocking")
	}
}

func TestAllowlistShowsConfigEntriesAndSearches(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	cfg := config.Default()
	cfg.Pairing.Channels = map[string]config.Channel{"telegram": {AllowFrom: []string{"424242"}}}
	if err := e.svc.Reconfigure(cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.AllowNamed(ctx, "telegram", "", []pairing.NamedSender{{Sender: "1001", Name: "Ana"}, {Sender: "1002", Name: "Bo"}}, store.ViaManual, store.Actor{Name: "test"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Revoke(ctx, "telegram", "", "1002", store.Actor{Name: "test"}); err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	b.signIn(adminToken)
	page := b.get("/allowlist").body
	if !strings.Contains(page, "from the config (pairing.channels.telegram.allow_from)") {
		t.Errorf("the allow_from entry is not shown as the config's")
	}
	if strings.Count(page, `action="/do/revoke"`) != 1 {
		t.Errorf("want exactly one revoke form (Ana's; none for the config's entry):\n%s", page)
	}
	if strings.Contains(page, "1002") {
		t.Error("a revoked sender is listed without Show revoked")
	}
	if got := b.get("/allowlist?revoked=1").body; !strings.Contains(got, "1002") || !strings.Contains(got, "revoked just now") {
		t.Error("Show revoked does not list the revoked sender")
	}
	if got := b.get("/allowlist?q=ana").body; !strings.Contains(got, "1001") || strings.Contains(got, "424242") {
		t.Error("searching for ana does not narrow the list to Ana")
	}
}

// TestEventsOutliveServerTimeouts: the daemon's http.Server cuts requests
// off after its read and write timeouts; the event stream lifts them for
// itself and keeps delivering.
func TestEventsOutliveServerTimeouts(t *testing.T) {
	e := newEnv(t)
	short := httptest.NewUnstartedServer(e.handler)
	short.Config.ReadTimeout, short.Config.WriteTimeout = 200*time.Millisecond, 200*time.Millisecond
	short.Start()
	t.Cleanup(func() { short.CloseClientConnections(); short.Close() })
	b := e.browser()
	b.e = &env{t: t, url: short.URL}
	b.signIn(adminToken)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", short.URL+"/events", nil)
	res, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	time.Sleep(600 * time.Millisecond) // three times the timeouts
	e.svc.Admit(context.Background(), pairing.Inbound{Channel: "telegram", Sender: "1"})
	lines := bufio.NewScanner(res.Body)
	for lines.Scan() {
		if strings.HasPrefix(lines.Text(), "id: ") {
			return
		}
	}
	t.Fatalf("the stream ended before the change arrived: %v", lines.Err())
}

// TestAllowlistViewIsBounded: with thousands of senders the view shows the
// first 200 matches and says so, and a search still finds anyone.
func TestAllowlistViewIsBounded(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	senders := make([]string, 5000)
	for i := range senders {
		senders[i] = strconv.Itoa(100000 + i)
	}
	if _, err := e.svc.Allow(ctx, "telegram", "", senders, store.ViaManual, store.Actor{Name: "test"}); err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	b.signIn(adminToken)
	start := time.Now()
	a := b.get("/allowlist")
	took := time.Since(start)
	wantStatus(t, "allowlist", a, http.StatusOK)
	if n := strings.Count(a.body, `data-sender="telegram/default/`); n != 200 {
		t.Errorf("the view lists %d senders, want the first 200", n)
	}
	if !strings.Contains(a.body, "The first 200 of 5000 matches shown") {
		t.Error("the view does not say it shows only part of the list")
	}
	t.Logf("allowlist view of 5,000 senders: %d bytes in %v", len(a.body), took.Round(time.Millisecond))
	if got := b.get("/allowlist?q=104999").body; !strings.Contains(got, `data-sender="telegram/default/104999"`) {
		t.Error("a search does not find a sender beyond the first 200")
	}
}
