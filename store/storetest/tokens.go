package storetest

import (
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pairgate/pairgate/store"
)

// token builds an API token whose hash is unique to its id.
func token(id string, scope store.TokenScope, created time.Time) store.APIToken {
	h := sha256.Sum256([]byte("pairgate storetest token " + id))
	return store.APIToken{ID: id, Name: "name of " + id, Scope: scope, Hash: h[:], CreatedAt: created, CreatedBy: alice.Name}
}

func testTokens(t *testing.T, b Backend) {
	f := newFixture(t, b)
	gw := token("tok_gw", store.ScopeGateway, at(0))
	adm := token("tok_admin", store.ScopeAdmin, at(minute))
	for _, tk := range []store.APIToken{gw, adm} {
		if err := f.s.CreateToken(f.ctx, tk, alice); err != nil {
			t.Fatalf("CreateToken(%s): %v", tk.ID, err)
		}
	}
	dup := token("tok_other", store.ScopeGateway, at(minute))
	dup.Hash = gw.Hash
	if err := f.s.CreateToken(f.ctx, dup, alice); err == nil {
		t.Error("CreateToken with a hash already in use: no error")
	}
	if err := f.s.CreateToken(f.ctx, token("tok_gw", store.ScopeAdmin, at(minute)), alice); err == nil {
		t.Error("CreateToken with an id already in use: no error")
	}
	list, err := f.s.ListTokens(f.ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]store.APIToken{gw, adm}, list); diff != "" {
		t.Errorf("ListTokens (-want +got):\n%s", diff)
	}

	revoked, err := f.s.RevokeToken(f.ctx, "tok_gw", ops, at(hour))
	if err != nil {
		t.Fatal(err)
	}
	wantRevoked := gw
	wantRevoked.RevokedAt = at(hour)
	if diff := cmp.Diff(wantRevoked, revoked); diff != "" {
		t.Errorf("RevokeToken (-want +got):\n%s", diff)
	}
	if _, err := f.s.RevokeToken(f.ctx, "tok_gw", ops, at(hour)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("revoking twice: %v, want ErrNotFound", err)
	}
	if _, err := f.s.RevokeToken(f.ctx, "tok_nope", ops, at(hour)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("revoking an unknown token: %v, want ErrNotFound", err)
	}
	active, _ := f.s.ListTokens(f.ctx, false)
	all, _ := f.s.ListTokens(f.ctx, true)
	if len(active) != 1 || active[0].ID != "tok_admin" || len(all) != 2 {
		t.Errorf("after revoking: active %v, all %v", active, all)
	}

	changes, err := f.s.Changes(f.ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []store.ChangeKind
	for _, c := range changes {
		kinds = append(kinds, c.Kind)
		for _, tk := range []store.APIToken{gw, adm} {
			if strings.Contains(c.Detail, string(tk.Hash)) {
				t.Errorf("change %d detail holds a token hash", c.Seq)
			}
		}
	}
	want := []store.ChangeKind{store.KindTokenCreated, store.KindTokenCreated, store.KindTokenRevoked}
	if diff := cmp.Diff(want, kinds); diff != "" {
		t.Errorf("change kinds (-want +got):\n%s", diff)
	}
	if err := f.s.Ping(f.ctx); err != nil {
		t.Errorf("Ping: %v", err)
	}
}
