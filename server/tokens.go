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
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

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

// Bounds on looking up tokens the set does not hold.
const (
	// missReloads and missBurst bound how often a token not in memory
	// makes the set reload from the store: a flood of made-up tokens
	// costs at most this many reads of the token list.
	missReloads = 20 // per second
	missBurst   = 20
	// maxUnknown bounds the memory of hashes found unknown.
	maxUnknown = 4096
)

// tokenSet holds the active tokens in memory, by hash, so authentication
// costs a SHA-256 and a map lookup. It is replaced whole on every change:
// by the follower of the change log, and on a miss.
//
// A miss is a token minted a moment ago by another process (pairgate
// tokens create) that the follower has not loaded yet, or a wrong one. It
// reloads the set, so a new token works on its first request; reloads for
// misses are rate-limited, and a hash still missing after a reload that
// began after it was presented is remembered as unknown (a token is 256
// random bits: a hash unknown after its token was shown to anyone never
// becomes valid), so neither a flood of made-up tokens nor one stale token
// repeated hammers the store. Reloads are serialised, so a set read before
// a revocation never replaces one read after it.
type tokenSet struct {
	admin [32]byte
	byKey atomic.Pointer[map[[32]byte]caller]
	// started counts reloads begun, and a request notes it before its
	// lookup; loaded is the number of the last one that succeeded.
	started, loaded atomic.Uint64

	st  store.Store
	now func() time.Time
	// reloading is held (a one-slot semaphore, so a wait can be given
	// up with its request) by the one reload in progress.
	reloading chan struct{}
	misses    *rate.Limiter

	mu      sync.Mutex
	unknown map[[32]byte]struct{}
}

func newTokenSet(admin string, st store.Store, now func() time.Time) *tokenSet {
	t := &tokenSet{
		admin:     tokenHash(admin),
		st:        st,
		now:       now,
		reloading: make(chan struct{}, 1),
		misses:    rate.NewLimiter(missReloads, missBurst),
		unknown:   map[[32]byte]struct{}{},
	}
	t.byKey.Store(&map[[32]byte]caller{})
	return t
}

// reload replaces the set with the store's active tokens.
func (t *tokenSet) reload(ctx context.Context) error {
	select {
	case t.reloading <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-t.reloading }()
	return t.reloadLocked(ctx)
}

// reloadLocked is reload for a caller holding t.reloading.
func (t *tokenSet) reloadLocked(ctx context.Context) error {
	n := t.started.Add(1)
	list, err := t.st.ListTokens(ctx, false)
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
	t.loaded.Store(n)
	return nil
}

// authenticate finds the caller of a bearer token. The admin token is
// compared in constant time; stored tokens are found by the SHA-256 of what
// was presented, which reveals nothing about any token through timing.
func (t *tokenSet) authenticate(ctx context.Context, token string) (caller, bool) {
	if token == "" {
		return caller{}, false
	}
	h := tokenHash(token)
	if subtle.ConstantTimeCompare(h[:], t.admin[:]) == 1 {
		return caller{name: "admin", scope: store.ScopeAdmin}, true
	}
	seen := t.started.Load()
	if c, ok := (*t.byKey.Load())[h]; ok {
		return c, true
	}
	return t.miss(ctx, h, seen)
}

// miss looks for a token the set did not hold when the request noted that
// seen reloads had begun.
func (t *tokenSet) miss(ctx context.Context, h [32]byte, seen uint64) (caller, bool) {
	t.mu.Lock()
	_, known := t.unknown[h]
	t.mu.Unlock()
	if known {
		return caller{}, false
	}
	select {
	case t.reloading <- struct{}{}:
	case <-ctx.Done():
		return caller{}, false
	}
	defer func() { <-t.reloading }()
	// A reload that began after the request arrived and succeeded saw
	// every token minted before the request: its answer stands. (One that
	// failed proves nothing.)
	if t.loaded.Load() <= seen {
		if !t.misses.AllowN(t.now(), 1) {
			return caller{}, false // not looked up, so not remembered
		}
		if err := t.reloadLocked(ctx); err != nil {
			return caller{}, false
		}
	}
	if c, ok := (*t.byKey.Load())[h]; ok {
		return c, true
	}
	t.mu.Lock()
	if len(t.unknown) >= maxUnknown {
		clear(t.unknown)
	}
	t.unknown[h] = struct{}{}
	t.mu.Unlock()
	return caller{}, false
}
