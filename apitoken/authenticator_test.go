package apitoken

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/pairgate/pairgate/store"
	"github.com/pairgate/pairgate/store/sqlite"
)

type failingTokens struct {
	store.Store
	fail atomic.Bool
}

func (f *failingTokens) ListTokens(ctx context.Context, includeRevoked bool) ([]store.APIToken, error) {
	if f.fail.Load() {
		return nil, errors.New("injected failure")
	}
	return f.Store.ListTokens(ctx, includeRevoked)
}

// A reload that failed proves nothing about a token presented before it
// began: the token is looked up again, not remembered as unknown.
func TestFailedReloadDoesNotMakeATokenUnknown(t *testing.T) {
	sq, err := sqlite.Open(t.Context(), sqlite.Options{Path: filepath.Join(t.TempDir(), "pairgate.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer sq.Close()
	st := &failingTokens{Store: sq}
	auth, err := New(Options{Store: st}).Authenticator(t.Context(), "pga_tokenset-admin-0123456789abcdefghijklmno")
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(Options{Store: sq}).Create(t.Context(), store.ScopeGateway, "new", store.Actor{Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	// The request arrives; before it gets to look, another reload begins
	// and fails.
	seen := auth.started.Load()
	st.fail.Store(true)
	if err := auth.reload(t.Context()); err == nil {
		t.Fatal("the injected failure did not fail the reload")
	}
	st.fail.Store(false)
	if _, ok := auth.miss(t.Context(), hash(m.Token), seen); !ok {
		t.Fatal("a token minted before the request was refused after an unrelated reload failed")
	}
	if c, ok := auth.Authenticate(t.Context(), m.Token); !ok || c.Scope != store.ScopeGateway {
		t.Errorf("the token afterwards: %+v, %v", c, ok)
	}
}
