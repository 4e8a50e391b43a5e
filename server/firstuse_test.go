package server_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pairgate/pairgate/apitoken"
	"github.com/pairgate/pairgate/pairing"
	"github.com/pairgate/pairgate/secret"
	"github.com/pairgate/pairgate/server"
	"github.com/pairgate/pairgate/store"
	"github.com/pairgate/pairgate/store/sqlite"
)

// countingStore counts the reads of the token list.
type countingStore struct {
	store.Store
	tokenReads atomic.Int64
}

func (c *countingStore) ListTokens(ctx context.Context, includeRevoked bool) ([]store.APIToken, error) {
	c.tokenReads.Add(1)
	return c.Store.ListTokens(ctx, includeRevoked)
}

// otherProcess opens the daemon's database a second time, as the CLI does:
// the daemon hears of its writes only through its poll of the change log.
func otherProcess(t *testing.T, e *robustEnv) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), sqlite.Options{Path: e.path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// A token minted by another process (pairgate tokens create) works on its
// very first request, before the daemon's follower has heard of it:
// provisioning scripts mint a token and use it at once.
func TestTokenWorksOnFirstUse(t *testing.T) {
	e := newRobustEnv(t, robustOptions{})
	cli := otherProcess(t, e)
	for i := range 8 {
		gw, err := apitoken.New(apitoken.Options{Store: cli}).Create(t.Context(), store.ScopeGateway, fmt.Sprint("fresh", i), store.Actor{Name: "cli:test"})
		if err != nil {
			t.Fatal(err)
		}
		e.gateway = gw.Token
		if status, _ := e.admit("1"); status != http.StatusOK {
			t.Fatalf("token %d: the first request with it got %d, want 200", i, status)
		}
		admin, err := apitoken.New(apitoken.Options{Store: cli}).Create(t.Context(), store.ScopeAdmin, fmt.Sprint("admin", i), store.Actor{Name: "cli:test"})
		if err != nil {
			t.Fatal(err)
		}
		if status, _, data := e.call("GET", "/v1/pairing/requests", admin.Token, nil); status != http.StatusOK {
			t.Fatalf("admin token %d: the first request with it got %d %s, want 200", i, status, data)
		}
	}
}

func randomToken() string {
	var b [32]byte
	rand.Read(b[:])
	return "pgt_" + base64.RawURLEncoding.EncodeToString(b[:])
}

// 10,000 requests with made-up tokens, and then one stale token repeated,
// read the token list a bounded number of times: the store is looked at
// only at a limited rate (20 a second, in bursts of 20), and a token found
// unknown stays unknown. The limiter runs on the server's injected clock,
// which stands still here.
func TestUnknownTokensDoNotHammerTheStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pairgate.db")
	sq, err := sqlite.Open(t.Context(), sqlite.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sq.Close() })
	cs := &countingStore{Store: sq}
	sec, _ := secret.FromBytes(bytes.Repeat([]byte{9}, secret.Size))
	clk := &clock{t: time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)}
	svc, err := pairing.New(pairing.Options{Store: cs, Secret: sec, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := apitoken.New(apitoken.Options{Store: cs, Now: clk.Now}).Authenticator(t.Context(), adminToken)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Options{Pairing: svc, Store: cs, Tokens: tokens, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	post := func(token string) int {
		req, _ := http.NewRequest("POST", hs.URL+"/v1/admit", strings.NewReader(`{"channel":"telegram","sender":"1"}`))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := hs.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}

	before := cs.tokenReads.Load()
	var wg sync.WaitGroup
	var refused atomic.Int64
	const workers, each = 16, 625
	for range workers {
		wg.Go(func() {
			for range each {
				if post(randomToken()) == http.StatusUnauthorized {
					refused.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if n := refused.Load(); n != workers*each {
		t.Errorf("%d of %d made-up tokens refused", n, workers*each)
	}
	reads := cs.tokenReads.Load() - before
	t.Logf("%d requests with made-up tokens: %d reads of the token list", workers*each, reads)
	if reads > 20 {
		t.Errorf("%d reads of the token list for %d unknown tokens within one instant; want at most 20 (the burst)", reads, workers*each)
	}

	// One stale token, sent again and again, costs one read.
	clk.Advance(time.Second)
	stale := randomToken()
	before = cs.tokenReads.Load()
	for range 1000 {
		if status := post(stale); status != http.StatusUnauthorized {
			t.Fatalf("a made-up token got %d", status)
		}
	}
	if reads := cs.tokenReads.Load() - before; reads != 1 {
		t.Errorf("one unknown token sent 1,000 times read the token list %d times, want 1", reads)
	}

	// A token minted now (by another process) works on its first use.
	other, err := sqlite.Open(t.Context(), sqlite.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	gw, err := apitoken.New(apitoken.Options{Store: other, Now: clk.Now}).Create(t.Context(), store.ScopeGateway, "after-the-flood", store.Actor{Name: "cli:test"})
	if err != nil {
		t.Fatal(err)
	}
	if status := post(gw.Token); status != http.StatusOK {
		t.Errorf("a new token after the flood: %d, want 200", status)
	}
}

// A token revoked by another process stops working within a second, and
// looking it up again on a miss never brings it back.
func TestRevokedTokenStaysRefused(t *testing.T) {
	e := newRobustEnv(t, robustOptions{})
	cli := otherProcess(t, e)
	gw, err := apitoken.New(apitoken.Options{Store: cli}).Create(t.Context(), store.ScopeGateway, "short-lived", store.Actor{Name: "cli:test"})
	if err != nil {
		t.Fatal(err)
	}
	e.gateway = gw.Token
	if status, _ := e.admit("1"); status != http.StatusOK {
		t.Fatalf("first use: %d", status)
	}
	if _, err := cli.RevokeToken(t.Context(), gw.ID, store.Actor{Name: "cli:test"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	revoked := time.Now()
	for {
		status, _ := e.admit("1")
		if status == http.StatusUnauthorized {
			break
		}
		if time.Since(revoked) > time.Second {
			t.Fatalf("the revoked token is still accepted a second after the revocation")
		}
		time.Sleep(5 * time.Millisecond)
	}
	for range 200 {
		if status, _ := e.admit("1"); status != http.StatusUnauthorized {
			t.Fatalf("the revoked token was accepted again: %d", status)
		}
	}
}
