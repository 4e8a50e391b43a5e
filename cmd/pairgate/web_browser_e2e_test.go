package main_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/pairgate/pairgate/api"
	"github.com/pairgate/pairgate/device"
)

// screenshotsEnv, set to a directory (docs, from the repository root:
// PAIRGATE_SCREENSHOTS=../../docs), is where TestWebPageInBrowser writes
// its screenshots; without it they go to a temporary directory, so a test
// run leaves the checkout as it was.
const screenshotsEnv = "PAIRGATE_SCREENSHOTS"

// chromium finds the browser, or skips the test (fails it in CI, where
// .ci/run installs Debian's chromium).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no chromium on PATH; .ci/run installs it with apt-get install chromium")
	}
	t.Skip("no chromium on PATH: install it (apt-get install chromium) to run the browser tests")
	return ""
}

// browserCtx starts a headless Chromium with a fresh profile and returns a
// context for one tab. Any JavaScript dialog (an alert() that hostile text
// managed to run) fails the test.
func browserCtx(t *testing.T, exe string) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for d, err := range dialogs {
			if err != nil {
				return
			}
			t.Errorf("a JavaScript dialog opened: %q", d.Message)
			chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
		}
	}()
	return ctx
}

// within runs actions, failing the test if they take longer than limit.
func within(t *testing.T, ctx context.Context, limit time.Duration, what string, actions ...chromedp.Action[chromedp.Void]) time.Duration {
	t.Helper()
	start := time.Now()
	c, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	if err := chromedp.Do(c, actions...); err != nil {
		took := time.Since(start).Round(time.Millisecond)
		dump, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		loc, _ := chromedp.Run(dump, chromedp.Location())
		html, _ := chromedp.Run(dump, chromedp.Evaluate[string](`document.documentElement.outerHTML`))
		t.Fatalf("%s: %v (after %v)\n%s:\n%s", what, err, took, loc, html)
	}
	return time.Since(start)
}

// read runs one action that reads a value from the page.
func read[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	v, err := chromedp.Run(c, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// shoot writes screenshots of the current page at 1280 and 375 px wide.
func shoot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	for _, width := range []int64{1280, 375} {
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(width, 800), chromedp.Sleep(50*time.Millisecond)); err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		png := read(t, ctx, "screenshot "+name, chromedp.FullScreenshot(100))
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("web-%s-%d.png", name, width)), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatal(err)
	}
}

// TestWebPageInBrowser drives the web page in headless Chromium against a
// real `pairgate serve`, while the CLI and a companion act in processes of
// their own, as an operator with a phone and a shell would.
func TestWebPageInBrowser(t *testing.T) {
	exe := chromium(t)
	home := t.TempDir()
	d := startServe(t, home)
	// The daemon reads the tunnel file for every setup code: the page's
	// "Pair a device" issues codes for this server.
	if err := os.MkdirAll(filepath.Join(home, "state"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, "state", "tunnel.url"), []byte("ws://"+devAddr(d)+"/pair\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	shots := os.Getenv(screenshotsEnv)
	if shots == "" {
		shots = t.TempDir()
	}
	ctx := browserCtx(t, exe)

	// Sign in with the admin token.
	within(t, ctx, 10*time.Second, "sign-in page",
		chromedp.Navigate(d.url+"/"),
		chromedp.WaitVisible(chromedp.CSS(`#token`)),
	)
	shoot(t, ctx, shots, "signin")
	within(t, ctx, 5*time.Second, "sign in",
		chromedp.SendKeys(chromedp.CSS(`#token`), d.adminToken()),
		chromedp.Submit(chromedp.CSS(`#token`)),
		chromedp.WaitVisible(chromedp.CSS(`#dm-requests`)),
		chromedp.WaitVisible(chromedp.CSS(`#live.on`)), // the event stream is open
	)

	// A sender writes; the gate (another process) challenges them; the
	// open page shows the request without a reload.
	var ana api.Decision
	runJSON(t, home, &ana, "admit", "telegram", "5551", "--name", "Ana")
	took := within(t, ctx, 2*time.Second, "the new request appearing live",
		chromedp.WaitVisible(chromedp.CSS(`li[data-request="`+ana.RequestID+`"]`)))
	t.Logf("a request made by pairgate admit appeared on the open page after %v", took.Round(time.Millisecond))

	// A hostile name is shown as text: no element, no script.
	hostile := `<img src=x onerror=alert(1)><script>alert(2)</script>`
	var mallory api.Decision
	runJSON(t, home, &mallory, "admit", "telegram", "6660", "--name", hostile)
	within(t, ctx, 2*time.Second, "the hostile request",
		chromedp.WaitVisible(chromedp.CSS(`li[data-request="`+mallory.RequestID+`"]`)))
	shown := read(t, ctx, "the hostile name", chromedp.TextContent(chromedp.CSS(`li[data-request="`+mallory.RequestID+`"] .who strong`)))
	injected := read(t, ctx, "injected elements", chromedp.Evaluate[int](`document.querySelectorAll('main img, main script').length`))
	if shown != hostile || injected != 0 {
		t.Errorf("hostile name shown as %q with %d injected elements; want the markup as text and none", shown, injected)
	}
	shoot(t, ctx, shots, "requests")

	// A decision made elsewhere (the CLI) leaves the open page by itself.
	if r := run(t, home, "pairing", "reject", "telegram", mallory.RequestID); r.code != 0 {
		t.Fatalf("pairing reject: exit %d\n%s", r.code, r.stderr)
	}
	took = within(t, ctx, 2*time.Second, "a request rejected by the CLI leaving the page",
		chromedp.WaitNotPresent(chromedp.CSS(`li[data-request="`+mallory.RequestID+`"]`)))
	t.Logf("a request rejected by pairgate pairing reject left the open page after %v", took.Round(time.Millisecond))

	// Approve Ana, notifying her (the toggle is on by default).
	within(t, ctx, 5*time.Second, "approve",
		chromedp.Click(chromedp.CSS(`li[data-request="`+ana.RequestID+`"] form[action="/do/approve"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`p.notice`)),
	)
	notice := read(t, ctx, "notice", chromedp.TextContent(chromedp.CSS(`p.notice`)))
	if !strings.Contains(notice, "will be told") {
		t.Errorf("notice after approving: %q", notice)
	}
	var allowed api.AllowedList
	runJSON(t, home, &allowed, "pairing", "allowed", "telegram")
	if len(allowed.Allowed) != 1 || allowed.Allowed[0].Sender != "5551" || allowed.Allowed[0].ApprovedBy != "web:admin" {
		t.Fatalf("after approving on the page the allowlist is %+v", allowed.Allowed)
	}

	// It moved to the allowlist; revoke it there, through the confirmation.
	sel := `li[data-sender="telegram/default/5551"]`
	within(t, ctx, 5*time.Second, "allowlist",
		chromedp.Navigate(d.url+"/allowlist"),
		chromedp.WaitVisible(chromedp.CSS(sel)),
	)
	shoot(t, ctx, shots, "allowlist")
	within(t, ctx, 5*time.Second, "revoke",
		chromedp.Click(chromedp.CSS(sel+` summary`)),
		chromedp.WaitVisible(chromedp.CSS(sel+` button.danger`)),
		chromedp.Click(chromedp.CSS(sel+` button.danger`)),
		chromedp.WaitVisible(chromedp.CSS(`p.notice`)),
	)
	if r := run(t, home, "admit", "telegram", "5551"); strings.HasPrefix(r.stdout, "admit") {
		t.Errorf("the sender revoked on the page is still admitted: %s", r.stdout)
	}

	// Pair a device: the page issues the code; a companion presents it;
	// the page shows its request with the check code the companion
	// printed; approving there lets the companion finish.
	within(t, ctx, 5*time.Second, "pair a device",
		chromedp.Navigate(d.url+"/devices"),
		chromedp.WaitVisible(chromedp.CSS(`#pair button`)),
		chromedp.SendKeys(chromedp.CSS(`#pair input[name="label"]`), "kitchen tablet"),
		chromedp.Click(chromedp.CSS(`#pair button`)),
		chromedp.WaitVisible(chromedp.CSS(`img.qr`)),
	)
	setupCode := read(t, ctx, "setup code", chromedp.TextContent(chromedp.CSS(`#setup-code`)))
	if _, err := device.DecodeSetupCode(setupCode); err != nil {
		t.Fatalf("the page's setup code %q: %v", setupCode, err)
	}
	shoot(t, ctx, shots, "pair")
	comp := startCompanion(t, t.TempDir(), setupCode, "Tablet")
	check := comp.waitCheckCode(t)
	took = within(t, ctx, 2*time.Second, "the device request appearing live",
		chromedp.WaitVisible(chromedp.CSS(`#device-requests li.device`)))
	pageCheck := read(t, ctx, "check code", chromedp.TextContent(chromedp.CSS(`#device-requests li.device .check`)))
	t.Logf("the companion's request appeared on the setup-code page after %v", took.Round(time.Millisecond))
	if pageCheck != check {
		t.Fatalf("the page shows check code %q, the companion printed %q", pageCheck, check)
	}
	if meta := read(t, ctx, "device request", chromedp.TextContent(chromedp.CSS(`#device-requests li.device .meta`))); !strings.Contains(meta, "from 127.0.0.1") {
		t.Errorf("the device request does not say where it came from: %q", meta)
	}
	shoot(t, ctx, shots, "device-request")
	within(t, ctx, 5*time.Second, "approve the device",
		chromedp.Click(chromedp.CSS(`#device-requests li.device form[action="/do/device/approve"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`p.notice`)),
	)
	if code := comp.wait(t); code != 0 {
		t.Fatalf("companion exited %d after the approval on the page\n%s", code, comp.stderr)
	}
	within(t, ctx, 5*time.Second, "paired devices",
		chromedp.Navigate(d.url+"/devices"),
		chromedp.WaitVisible(chromedp.CSS(`#paired li[data-device]`)),
	)
	shoot(t, ctx, shots, "devices")
	// Rotate its token, through the confirmation: the new one is shown once.
	within(t, ctx, 5*time.Second, "rotate the device token",
		chromedp.Click(chromedp.CSS(`#paired li[data-device] details.confirm summary`)),
		chromedp.Click(chromedp.CSS(`#paired li[data-device] form[action="/do/device/rotate"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`#device-token`)),
	)
	if tok := read(t, ctx, "new device token", chromedp.TextContent(chromedp.CSS(`#device-token`))); len(tok) < 40 {
		t.Errorf("the rotated token shown is %q", tok)
	}
	within(t, ctx, 5*time.Second, "audit trail",
		chromedp.Navigate(d.url+"/audit"),
		chromedp.WaitVisible(chromedp.CSS(`table.audit`)),
	)
	shoot(t, ctx, shots, "audit")

	// A cross-origin form post is refused, even from the signed-in browser.
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<form method="post" action="%s/do/allow"><input name="channel" value="telegram"><input name="sender" value="6661"></form>
<script>document.forms[0].submit()</script>`, d.url)
	}))
	defer evil.Close()
	evilURL := strings.Replace(evil.URL, "127.0.0.1", "localhost", 1) // another site than 127.0.0.1
	within(t, ctx, 5*time.Second, "cross-origin post",
		chromedp.Navigate(evilURL),
		chromedp.WaitVisible(chromedp.CSS(`p.error`)),
	)
	body := read(t, ctx, "refusal", chromedp.TextContent(chromedp.CSS(`p.error`)))
	if !strings.Contains(body, "came from another site") {
		t.Errorf("cross-origin post answered %q", body)
	}
	runJSON(t, home, &allowed, "pairing", "allowed", "telegram", "--include-revoked")
	for _, a := range allowed.Allowed {
		if a.Sender == "6661" {
			t.Fatal("a cross-origin post added a sender")
		}
	}

	// Sign out; then the sign-in link works once and only once.
	within(t, ctx, 5*time.Second, "sign out",
		chromedp.Navigate(d.url+"/"),
		chromedp.Click(chromedp.CSS(`form.signout button`)),
		chromedp.WaitVisible(chromedp.CSS(`#token`)),
	)
	var link api.WebLink
	runJSON(t, home, &link, "web-link", "--url", d.url)
	if !strings.HasPrefix(link.URL, d.url+"/signin/link?t=") || link.URLSource != "flag" {
		t.Fatalf("web-link: %+v", link)
	}
	within(t, ctx, 5*time.Second, "sign in with the link",
		chromedp.Navigate(link.URL),
		chromedp.WaitVisible(chromedp.CSS(`form[action="/signin/link"] button`)),
		chromedp.Click(chromedp.CSS(`form[action="/signin/link"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`#dm-requests`)),
	)
	within(t, ctx, 5*time.Second, "the link a second time",
		chromedp.Navigate(d.url+"/"),
		chromedp.Click(chromedp.CSS(`form.signout button`)),
		chromedp.WaitVisible(chromedp.CSS(`#token`)),
		chromedp.Navigate(link.URL),
		chromedp.Click(chromedp.CSS(`form[action="/signin/link"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`p.error`)),
	)
	body = read(t, ctx, "second use", chromedp.TextContent(chromedp.CSS(`p.error`)))
	if !strings.Contains(body, "used already") {
		t.Errorf("the link used a second time: %q", body)
	}
	noSecretsIn(t, d.stderr.String(), "the daemon's log", []string{d.adminToken(), setupCode, ana.Code, strings.TrimPrefix(link.URL, d.url+"/signin/link?t=")})
}

// TestWebLinkAddress: without --url the link is on the public URL's host
// (wss:// read as https://), else on the listen address, and it says which.
func TestWebLinkAddress(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, config, want, source string
	}{
		{"listen", "", "http://127.0.0.1:7420/signin/link?t=", "listen"},
		{"public url", "pairing:\n  public_url: wss://gateway.example.com/pair\n", "https://gateway.example.com/signin/link?t=", "config"},
		{"cleartext public url", "pairing:\n  public_url: ws://127.0.0.1:9000/pair\n", "http://127.0.0.1:9000/signin/link?t=", "config"},
		{"listen on every address", "server:\n  listen: 0.0.0.0:8080\n", "http://127.0.0.1:8080/signin/link?t=", "listen"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			home := t.TempDir()
			if tt.config != "" {
				if err := os.WriteFile(filepath.Join(home, "pairgate.yaml"), []byte(tt.config), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			var link api.WebLink
			devRunJSON(t, home, nil, &link, "web-link")
			if !strings.HasPrefix(link.URL, tt.want) || len(link.URL) < len(tt.want)+40 || link.URLSource != tt.source {
				t.Errorf("web-link: %+v; want %s… from %s", link, tt.want, tt.source)
			}
			if left := time.Until(link.ExpiresAt); left < 4*time.Minute || left > 5*time.Minute {
				t.Errorf("the link expires in %v, want 5 min", left)
			}
		})
	}
}
