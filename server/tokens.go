package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pairgate/pairgate/secret"
	"github.com/pairgate/pairgate/store"
)

// Token prefixes make pairgate tokens easy to recognise (and for secret
// scanners to flag) wherever they leak to.
const (
	adminPrefix   = "pga_"
	gatewayPrefix = "pgt_"
)

// newToken returns a fresh bearer token: a prefix and 32 random bytes.
func newToken(scope store.TokenScope) string {
	var b [32]byte
	rand.Read(b[:])
	prefix := gatewayPrefix
	if scope == store.ScopeAdmin {
		prefix = adminPrefix
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b[:])
}

func tokenHash(token string) [32]byte { return sha256.Sum256([]byte(token)) }

// LoadOrCreateAdminToken returns the admin token at path, creating it (0600,
// complete before it appears) on first start. A file readable by group or
// others is refused.
func LoadOrCreateAdminToken(path string) (string, error) {
	const what = "admin token"
	data, err := secret.ReadPrivate(path, what)
	if errors.Is(err, fs.ErrNotExist) {
		if err := secret.WriteNew(path, []byte(newToken(store.ScopeAdmin)+"\n")); err != nil && !errors.Is(err, fs.ErrExist) {
			return "", fmt.Errorf("create %s: %w", what, err)
		}
		data, err = secret.ReadPrivate(path, what)
	}
	if err != nil {
		return "", err
	}
	tok := strings.TrimSpace(string(data))
	if len(tok) < 32 {
		return "", fmt.Errorf("admin token %s is too short (%d characters); delete it to have a new one made", path, len(tok))
	}
	return tok, nil
}

// MintedToken is a new API token, shown once.
type MintedToken struct {
	ID    string           `json:"id"`
	Name  string           `json:"name"`
	Scope store.TokenScope `json:"scope"`
	Token string           `json:"token"`
}

// MintToken creates an API token; only its hash is stored.
func MintToken(ctx context.Context, st store.Store, scope store.TokenScope, name string, actor store.Actor, now time.Time) (MintedToken, error) {
	if scope != store.ScopeAdmin && scope != store.ScopeGateway {
		return MintedToken{}, fmt.Errorf("token scope %q: want admin or gateway", scope)
	}
	if name == "" {
		name = string(scope)
	}
	if len(name) > 128 {
		return MintedToken{}, fmt.Errorf("token name is %d bytes, at most 128 are allowed", len(name))
	}
	var id [8]byte
	rand.Read(id[:])
	m := MintedToken{ID: "tok_" + base64.RawURLEncoding.EncodeToString(id[:]), Name: name, Scope: scope, Token: newToken(scope)}
	h := tokenHash(m.Token)
	err := st.CreateToken(ctx, store.APIToken{ID: m.ID, Name: name, Scope: scope, Hash: h[:], CreatedAt: now, CreatedBy: actor.Name}, actor)
	if err != nil {
		return MintedToken{}, err
	}
	return m, nil
}

// caller is who made a request, after authentication.
type caller struct {
	name  string
	scope store.TokenScope
}

// tokenSet holds the active tokens in memory, by hash, so authentication
// costs a SHA-256 and a map lookup. It is replaced whole on every change.
type tokenSet struct {
	admin [32]byte
	byKey atomic.Pointer[map[[32]byte]caller]
}

func newTokenSet(admin string) *tokenSet {
	t := &tokenSet{admin: tokenHash(admin)}
	t.byKey.Store(&map[[32]byte]caller{})
	return t
}

func (t *tokenSet) reload(ctx context.Context, st store.Store) error {
	list, err := st.ListTokens(ctx, false)
	if err != nil {
		return err
	}
	m := make(map[[32]byte]caller, len(list))
	for _, tk := range list {
		if len(tk.Hash) == 32 {
			m[[32]byte(tk.Hash)] = caller{name: "token:" + tk.Name, scope: tk.Scope}
		}
	}
	t.byKey.Store(&m)
	return nil
}

// authenticate finds the caller of a bearer token. The admin token is
// compared in constant time; stored tokens are found by the SHA-256 of what
// was presented, which reveals nothing about any token through timing.
func (t *tokenSet) authenticate(token string) (caller, bool) {
	if token == "" {
		return caller{}, false
	}
	h := tokenHash(token)
	if subtle.ConstantTimeCompare(h[:], t.admin[:]) == 1 {
		return caller{name: "admin", scope: store.ScopeAdmin}, true
	}
	c, ok := (*t.byKey.Load())[h]
	return c, ok
}
