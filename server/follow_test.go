package server_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pairgate/pairgate/apitoken"
	"github.com/pairgate/pairgate/store"
	"github.com/pairgate/pairgate/store/sqlite"
)

// logBlink fails reads of the change log, or of the token list, on demand.
type logBlink struct {
	store.Store
	changesDown, tokensDown atomic.Bool
	failed                  atomic.Int64
	lists                   atomic.Int64 // ListTokens calls
}

func (b *logBlink) Changes(ctx context.Context, after int64, limit int) ([]store.Change, error) {
	changes, err := b.Store.Changes(ctx, after, limit)
	// Checked after the read: a read that began before the failure was
	// switched on may see what was written after it.
	if b.changesDown.Load() {
		b.failed.Add(1)
		return nil, fmt.Errorf("%w: injected read failure", store.ErrUnavailable)
	}
	return changes, err
}

func (b *logBlink) ListTokens(ctx context.Context, includeRevoked bool) ([]store.APIToken, error) {
	defer b.lists.Add(1) // counted once the list is read
	list, err := b.Store.ListTokens(ctx, includeRevoked)
	if b.tokensDown.Load() { // after the read, as in Changes
		b.failed.Add(1)
		return nil, fmt.Errorf("%w: injected read failure", store.ErrUnavailable)
	}
	return list, err
}

// A token revoked (by the CLI, say) while the daemon cannot read the change
// log, or cannot read the token list, is refused about a second after reads
// work again, with no later change to wake the follower; the change is
// counted once in the metrics however often the batch was retried.
func TestTokenRevocationSurvivesFailedReads(t *testing.T) {
	var b *logBlink
	e := newRobustEnv(t, robustOptions{wrap: func(s *sqlite.Store) store.Store { b = &logBlink{Store: s}; return b }})
	if status, _ := e.admit("1"); status != http.StatusOK {
		t.Fatalf("the gateway token works before: %d", status)
	}
	// The token follower has started when it has loaded the list a second
	// time (New loads it once): a revocation before that would be read by
	// its first load, not by following the log.
	for start := time.Now(); b.lists.Load() < 2; time.Sleep(5 * time.Millisecond) {
		if time.Since(start) > 3*time.Second {
			t.Fatal("the token follower did not start")
		}
	}
	for _, down := range []*atomic.Bool{&b.changesDown, &b.tokensDown} {
		down.Store(true)
		before := b.failed.Load()
		if _, err := e.sqlite.RevokeToken(context.Background(), e.gatewayID, store.Actor{Name: "test"}, time.Now()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(400 * time.Millisecond)
		if b.failed.Load() == before {
			t.Fatal("the follower read nothing while reads failed: the test proves nothing")
		}
		if status, _ := e.admit("1"); status != http.StatusOK {
			t.Fatalf("revocation applied without reading the store: %d", status)
		}
		down.Store(false)
		start := time.Now()
		for {
			if status, _ := e.admit("1"); status == http.StatusUnauthorized {
				break
			}
			if time.Since(start) > 3*time.Second {
				t.Fatal("the revoked token is still accepted 3 s after reads work again")
			}
			time.Sleep(10 * time.Millisecond)
		}
		if took := time.Since(start); took > 1500*time.Millisecond {
			t.Errorf("the revoked token was refused %v after reads worked again; want about a second at most", took)
		}
		// The next round needs a working token again.
		gw, err := apitoken.New(apitoken.Options{Store: e.sqlite}).Create(context.Background(), store.ScopeGateway, "next", store.Actor{Name: "test"})
		if err != nil {
			t.Fatal(err)
		}
		e.gateway, e.gatewayID = gw.Token, gw.ID
		for start := time.Now(); ; time.Sleep(10 * time.Millisecond) {
			if status, _ := e.admit("1"); status == http.StatusOK {
				break
			}
			if time.Since(start) > 3*time.Second {
				t.Fatal("a new gateway token is not accepted")
			}
		}
	}
	_, _, data := e.call("GET", "/metrics", "", nil)
	want := `pairgate_changes_total{kind="token.revoked"} 2`
	if !strings.Contains(string(data), want+"\n") {
		t.Errorf("metrics do not hold %q:\n%s", want, robustGrep(data, "pairgate_changes_total"))
	}
}
