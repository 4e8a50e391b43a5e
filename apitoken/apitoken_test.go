package apitoken_test

import (
	"crypto/sha256"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pairgate/pairgate/api"
	"github.com/pairgate/pairgate/apitoken"
	"github.com/pairgate/pairgate/store"
	"github.com/pairgate/pairgate/store/sqlite"
)

func openStore(t *testing.T) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(t.Context(), sqlite.Options{Path: filepath.Join(t.TempDir(), "pairgate.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// Create, List and Revoke: a token is shown once, stored as its hash,
// listed without it, and revoked for good.
func TestCreateListRevoke(t *testing.T) {
	st := openStore(t)
	now := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	svc := apitoken.New(apitoken.Options{Store: st, Now: func() time.Time { return now }})
	t0, t1, t2 := now, now.Add(time.Second), now.Add(2*time.Second)
	ctx := t.Context()
	ops := store.Actor{Name: "cli:ana", Source: "cli@host"}

	if list, err := svc.List(ctx, true); err != nil || list == nil || len(list) != 0 {
		t.Fatalf("List of none: %#v, %v; want an empty list (JSON [])", list, err)
	}
	gw, err := svc.Create(ctx, store.ScopeGateway, "hermes", ops)
	if err != nil {
		t.Fatal(err)
	}
	now = t1
	admin, err := svc.Create(ctx, store.ScopeAdmin, "", ops)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(gw.Token, "pgt_") || !strings.HasPrefix(admin.Token, "pga_") || len(gw.Token) != 4+43 ||
		!strings.HasPrefix(gw.ID, "tok_") || gw.Scope != "gateway" || admin.Name != "admin" {
		t.Errorf("created: %+v and %+v", gw, admin)
	}
	stored, err := st.ListTokens(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	for i, tok := range []string{gw.Token, admin.Token} {
		if h := sha256.Sum256([]byte(tok)); len(stored) != 2 || string(stored[i].Hash) != string(h[:]) {
			t.Errorf("the store holds %+v; want the tokens' SHA-256 only", stored)
		}
	}

	now = t2
	if _, err := svc.Revoke(ctx, gw.ID, ops); err != nil {
		t.Fatal(err)
	}
	all, err := svc.List(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	want := []api.Token{
		{ID: gw.ID, Name: "hermes", Scope: "gateway", CreatedAt: t0, CreatedBy: "cli:ana", RevokedAt: &t2},
		{ID: admin.ID, Name: "admin", Scope: "admin", CreatedAt: t1, CreatedBy: "cli:ana"},
	}
	if diff := cmp.Diff(want, all); diff != "" {
		t.Errorf("List with revoked (-want +got):\n%s", diff)
	}
	if active, _ := svc.List(ctx, false); len(active) != 1 || active[0].ID != admin.ID {
		t.Errorf("List: %+v, want the admin token only", active)
	}
	if _, err := svc.Revoke(ctx, gw.ID, ops); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Revoke of a revoked token: %v, want ErrNotFound", err)
	}
}

func TestCreateRefuses(t *testing.T) {
	svc := apitoken.New(apitoken.Options{Store: openStore(t)})
	if _, err := svc.Create(t.Context(), "root", "", store.Actor{}); err == nil || !strings.Contains(err.Error(), "want admin or gateway") {
		t.Errorf("scope root: %v", err)
	}
	if _, err := svc.Create(t.Context(), store.ScopeGateway, strings.Repeat("n", apitoken.MaxNameLen+1), store.Actor{}); err == nil {
		t.Error("a name over MaxNameLen was accepted")
	}
}

// A token minted after the Authenticator loaded works at once (a miss
// reloads), and the admin token has the admin scope.
func TestAuthenticate(t *testing.T) {
	st := openStore(t)
	svc := apitoken.New(apitoken.Options{Store: st})
	const admin = "pga_authenticate-admin-0123456789abcdefghijklm"
	auth, err := svc.Authenticator(t.Context(), admin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Authenticator(t.Context(), "short"); err == nil {
		t.Error("an admin token of 5 characters was accepted")
	}
	gw, err := svc.Create(t.Context(), store.ScopeGateway, "late", store.Actor{Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		token string
		want  apitoken.Caller
		ok    bool
	}{
		{admin, apitoken.Caller{Name: "admin", Scope: store.ScopeAdmin, Hash: sha256.Sum256([]byte(admin))}, true},
		{gw.Token, apitoken.Caller{Name: "token:late", Scope: store.ScopeGateway, Hash: sha256.Sum256([]byte(gw.Token))}, true},
		{"pgt_made-up", apitoken.Caller{}, false},
		{"", apitoken.Caller{}, false},
	} {
		got, ok := auth.Authenticate(t.Context(), tt.token)
		if got != tt.want || ok != tt.ok {
			t.Errorf("Authenticate(%.8q): %+v, %v; want %+v, %v", tt.token, got, ok, tt.want, tt.ok)
		}
		// What a web session keeps, the hash, names the same caller for
		// as long as the token is valid.
		if ok {
			if again, ok := auth.AuthenticateHash(t.Context(), got.Hash); !ok || again != got {
				t.Errorf("AuthenticateHash(Hash of %.8q) = %+v, %v; want %+v", tt.token, again, ok, got)
			}
		}
	}
	if _, ok := auth.AuthenticateHash(t.Context(), sha256.Sum256([]byte("pgt_made-up"))); ok {
		t.Error("AuthenticateHash accepted the hash of a made-up token")
	}
	if _, err := svc.Revoke(t.Context(), mustID(t, svc, "late"), store.Actor{Name: "test"}); err != nil {
		t.Fatal(err)
	}
	// The authenticator learns of the revocation from the change log (Run),
	// or on a miss; a reload here stands in for Run.
	fresh, err := svc.Authenticator(t.Context(), admin)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := fresh.AuthenticateHash(t.Context(), sha256.Sum256([]byte(gw.Token))); ok {
		t.Error("AuthenticateHash accepted the hash of a revoked token")
	}
}

func mustID(t *testing.T, svc *apitoken.Service, name string) string {
	t.Helper()
	list, err := svc.List(t.Context(), false)
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range list {
		if tk.Name == name {
			return tk.ID
		}
	}
	t.Fatalf("no token named %s", name)
	return ""
}
