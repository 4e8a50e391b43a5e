package main_test

import (
	"bufio"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// SIGTERM is not held up by the requests that last as long as their
// client: an open GET /v1/outbound long poll, a /v1/events stream and the
// web page's live stream end as the drain begins, and serve exits 0 at once.
func TestShutdownEndsLongRequests(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	var gw mintedToken
	runJSON(t, home, &gw, "tokens", "create", "--scope", "gateway", "--name", "gw")
	d := startServe(t, home)
	admin := d.adminToken()
	// A browser signs in with the admin token: its cookie reads /events.
	noRedirect := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.PostForm(d.url+"/signin", url.Values{"token": {admin}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cookies := resp.Cookies()
	if len(cookies) == 0 {
		t.Fatalf("sign in: %d, no cookie", resp.StatusCode)
	}
	type open struct {
		what string
		done chan struct{}
	}
	start := func(what, path, token string) open {
		req, _ := http.NewRequest("GET", d.url+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		} else {
			for _, c := range cookies {
				req.AddCookie(c)
			}
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if what != "long poll" && resp.StatusCode != 200 {
			t.Fatalf("%s: %d", what, resp.StatusCode)
		}
		o := open{what, make(chan struct{})}
		go func() {
			defer close(o.done)
			defer resp.Body.Close()
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
			}
		}()
		return o
	}
	// The long poll answers its headers only with its answer: it runs in
	// its own goroutine.
	poll := open{"long poll", make(chan struct{})}
	go func() {
		defer close(poll.done)
		req, _ := http.NewRequest("GET", d.url+"/v1/outbound?wait=60s", nil)
		req.Header.Set("Authorization", "Bearer "+gw.Token)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	streams := []open{start("/v1/events", "/v1/events", admin), start("the page's /events", "/events", ""), poll}
	time.Sleep(200 * time.Millisecond) // all three are waiting
	code, took := d.stop(8 * time.Second)
	if code != 0 || took > 3*time.Second {
		t.Errorf("serve exited %d %v after SIGTERM with long requests open, want 0 at once; stderr:\n%s", code, took, serveTail(d.stderr.String(), 10))
	}
	for _, o := range streams {
		select {
		case <-o.done:
		case <-time.After(5 * time.Second):
			t.Errorf("%s still open after serve exited", o.what)
		}
	}
	if strings.Contains(d.stderr.String(), "deadline exceeded") {
		t.Errorf("the drain timed out:\n%s", serveTail(d.stderr.String(), 10))
	}
}
