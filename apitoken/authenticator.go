package apitoken

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/pairgate/pairgate/store"
)

// Caller is who made a request, once its token is authenticated.
type Caller struct {
	Name  string // for the audit log: "admin", or "token:" and the token's name
	Scope store.TokenScope
	// Hash is the SHA-256 of the token presented. A web session keeps it
	// and checks it again with AuthenticateHash on every request, so
	// revoking the token (or replacing admin.token) ends the session.
	Hash [32]byte
}

// Bounds on looking up tokens the Authenticator does not hold.
const (
	// missReloads and missBurst bound how often a token not in memory
	// makes the set reload from the store: a flood of made-up tokens
	// costs at most this many reads of the token list.
	missReloads = 20 // per second
	missBurst   = 20
	// maxUnknown bounds the memory of hashes found unknown.
	maxUnknown = 4096
)

// Authenticator holds the active tokens in memory, by hash, so
// authentication costs a SHA-256 and a map lookup. The set is replaced
// whole on every change: by Run, which follows the change log, and on a
// miss.
//
// A miss is a token minted a moment ago by another process (pairgate
// tokens create) that Run has not loaded yet, or a wrong one. It reloads
// the set, so a new token works on its first request; reloads for misses
// are rate-limited, and a hash still missing after a reload that began
// after it was presented is remembered as unknown (a token is 256 random
// bits: a hash unknown after its token was shown to anyone never becomes
// valid), so neither a flood of made-up tokens nor one stale token
// repeated hammers the store. Reloads are serialised, so a set read before
// a revocation never replaces one read after it.
type Authenticator struct {
	admin [32]byte
	byKey atomic.Pointer[map[[32]byte]Caller]
	// started counts reloads begun, and a request notes it before its
	// lookup; loaded is the number of the last one that succeeded.
	started, loaded atomic.Uint64

	st  store.Store
	now func() time.Time
	log *slog.Logger
	// reloading is held (a one-slot semaphore, so a wait can be given
	// up with its request) by the one reload in progress.
	reloading chan struct{}
	misses    *rate.Limiter

	mu      sync.Mutex
	unknown map[[32]byte]struct{}
}

// Authenticator returns an Authenticator for the daemon: admin is the
// admin token (LoadOrCreateAdmin), which may call everything; the tokens in
// the store are loaded before it returns, so the first request is answered
// correctly. Keep it current with Run.
func (s *Service) Authenticator(ctx context.Context, admin string) (*Authenticator, error) {
	if len(admin) < minAdminLen {
		return nil, errors.New("apitoken: the admin token is missing or too short")
	}
	a := &Authenticator{
		admin:     hash(admin),
		st:        s.st,
		now:       s.now,
		log:       s.log,
		reloading: make(chan struct{}, 1),
		misses:    rate.NewLimiter(missReloads, missBurst),
		unknown:   map[[32]byte]struct{}{},
	}
	a.byKey.Store(&map[[32]byte]Caller{})
	if err := a.reload(ctx); err != nil {
		return nil, err
	}
	return a, nil
}

// Run keeps the set current until ctx ends: it follows the change log
// (store.Follow, so a failed read is retried on a timer) and reloads the
// tokens after every change to them, whichever process made it. It returns
// nil when ctx ends.
func (a *Authenticator) Run(ctx context.Context) error {
	follow := store.FollowOptions{OnError: func(err error) { a.log.Warn("apitoken: following the change log failed; will retry", "err", err) }}
	seq, err := store.Head(ctx, a.st, follow)
	if err != nil {
		return nil // ctx ended
	}
	// Tokens minted or revoked between loading the set and now are before
	// seq: load them again so the follower misses nothing.
	a.reloadUntilDone(ctx)
	follow.After = seq
	// Pruned past the position (this process was behind by more than the
	// retention): the token list itself is the snapshot; read it again.
	follow.OnCompacted = func(ctx context.Context) (int64, error) {
		head, err := store.Head(ctx, a.st, store.FollowOptions{OnError: follow.OnError})
		if err == nil {
			err = a.reload(ctx)
		}
		return head, err
	}
	store.Follow(ctx, a.st, follow, func(changes []store.Change) error {
		for _, c := range changes {
			if c.Kind == store.KindTokenCreated || c.Kind == store.KindTokenRevoked {
				if err := a.reload(ctx); err != nil {
					return fmt.Errorf("reload API tokens: %w", err)
				}
				return nil
			}
		}
		return nil
	})
	return nil
}

// reloadUntilDone retries until the set is current or ctx ends; until then
// the previous set stays in force.
func (a *Authenticator) reloadUntilDone(ctx context.Context) {
	for {
		err := a.reload(ctx)
		if err == nil || ctx.Err() != nil {
			return
		}
		a.log.Warn("apitoken: reloading API tokens failed; retrying", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// reload replaces the set with the store's active tokens.
func (a *Authenticator) reload(ctx context.Context) error {
	select {
	case a.reloading <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-a.reloading }()
	return a.reloadLocked(ctx)
}

// reloadLocked is reload for a caller holding a.reloading.
func (a *Authenticator) reloadLocked(ctx context.Context) error {
	n := a.started.Add(1)
	list, err := a.st.ListTokens(ctx, false)
	if err != nil {
		return err
	}
	m := make(map[[32]byte]Caller, len(list))
	for _, tk := range list {
		if len(tk.Hash) == 32 {
			m[[32]byte(tk.Hash)] = Caller{Name: "token:" + tk.Name, Scope: tk.Scope, Hash: [32]byte(tk.Hash)}
		}
	}
	a.byKey.Store(&m)
	a.loaded.Store(n)
	return nil
}

// Authenticate finds the caller of a bearer token. The admin token is
// compared in constant time; stored tokens are found by the SHA-256 of what
// was presented, which reveals nothing about any token through timing.
func (a *Authenticator) Authenticate(ctx context.Context, token string) (Caller, bool) {
	if token == "" {
		return Caller{}, false
	}
	return a.AuthenticateHash(ctx, hash(token))
}

// AuthenticateHash is Authenticate for a token known only by its SHA-256
// (Caller.Hash): whether that token still may call, and as whom.
func (a *Authenticator) AuthenticateHash(ctx context.Context, h [32]byte) (Caller, bool) {
	if subtle.ConstantTimeCompare(h[:], a.admin[:]) == 1 {
		return Caller{Name: "admin", Scope: store.ScopeAdmin, Hash: h}, true
	}
	seen := a.started.Load()
	if c, ok := (*a.byKey.Load())[h]; ok {
		return c, true
	}
	return a.miss(ctx, h, seen)
}

// miss looks for a token the set did not hold when the request noted that
// seen reloads had begun.
func (a *Authenticator) miss(ctx context.Context, h [32]byte, seen uint64) (Caller, bool) {
	a.mu.Lock()
	_, known := a.unknown[h]
	a.mu.Unlock()
	if known {
		return Caller{}, false
	}
	select {
	case a.reloading <- struct{}{}:
	case <-ctx.Done():
		return Caller{}, false
	}
	defer func() { <-a.reloading }()
	// A reload that began after the request arrived and succeeded saw
	// every token minted before the request: its answer stands. (One that
	// failed proves nothing.)
	if a.loaded.Load() <= seen {
		if !a.misses.AllowN(a.now(), 1) {
			return Caller{}, false // not looked up, so not remembered
		}
		if err := a.reloadLocked(ctx); err != nil {
			return Caller{}, false
		}
	}
	if c, ok := (*a.byKey.Load())[h]; ok {
		return c, true
	}
	a.mu.Lock()
	if len(a.unknown) >= maxUnknown {
		clear(a.unknown)
	}
	a.unknown[h] = struct{}{}
	a.mu.Unlock()
	return Caller{}, false
}
