package pairing

import (
	"context"
	"hash/maphash"
	"sync"
	"sync/atomic"

	"github.com/pairgate/pairgate/store"
)

const viewShards = 64 // per scope; spreads RWMutex reader counts across cache lines

// view is the in-memory allowlist the gate answers from. It follows the
// store's change log: loaded from a snapshot, then advanced by applying
// changes after the snapshot's sequence number. Lookups take a shard's read
// lock and allocate nothing; their cost does not grow with the list.
type view struct {
	scopes atomic.Pointer[map[store.Scope]*senderSet] // copy-on-write: scopes are few and rarely added
	seed   maphash.Seed

	mu     sync.Mutex // serialises loads and catch-ups
	loaded atomic.Bool
	seq    int64 // last change applied
}

type senderSet struct {
	shards [viewShards]viewShard
}

type viewShard struct {
	mu sync.RWMutex
	m  map[string]struct{}
	_  [32]byte // 24-byte RWMutex + map + pad = 64: one shard per cache line
}

func newView() *view {
	v := &view{seed: maphash.MakeSeed()}
	v.scopes.Store(&map[store.Scope]*senderSet{})
	return v
}

func (v *view) shard(set *senderSet, sender string) *viewShard {
	return &set.shards[maphash.String(v.seed, sender)%viewShards]
}

// contains reports whether sender is on scope's allowlist.
func (v *view) contains(scope store.Scope, sender string) bool {
	set := (*v.scopes.Load())[scope]
	if set == nil {
		return false
	}
	sh := v.shard(set, sender)
	sh.mu.RLock()
	_, ok := sh.m[sender]
	sh.mu.RUnlock()
	return ok
}

// set adds or removes one sender. Callers hold v.mu.
func (v *view) set(scope store.Scope, sender string, allowed bool) {
	cur := *v.scopes.Load()
	set := cur[scope]
	if set == nil {
		if !allowed {
			return
		}
		set = &senderSet{}
		for i := range set.shards {
			set.shards[i].m = map[string]struct{}{}
		}
		next := make(map[store.Scope]*senderSet, len(cur)+1)
		for k, s := range cur {
			next[k] = s
		}
		next[scope] = set
		v.scopes.Store(&next)
	}
	sh := v.shard(set, sender)
	sh.mu.Lock()
	if allowed {
		sh.m[sender] = struct{}{}
	} else {
		delete(sh.m, sender)
	}
	sh.mu.Unlock()
}

// remove drops a sender at once, ahead of the change log.
func (v *view) remove(scope store.Scope, sender string) {
	v.mu.Lock()
	v.set(scope, sender, false)
	v.mu.Unlock()
}

// load fills the view from a store snapshot, once.
func (v *view) load(ctx context.Context, st store.Store) error {
	if v.loaded.Load() {
		return nil
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.loaded.Load() {
		return nil
	}
	seq, err := st.ScanAllowed(ctx, func(scope store.Scope, sender string) error {
		v.set(scope, sender, true)
		return nil
	})
	if err != nil {
		v.scopes.Store(&map[store.Scope]*senderSet{})
		return err
	}
	v.seq = seq
	v.loaded.Store(true)
	return nil
}

// catchUp applies every change after the last one applied.
func (v *view) catchUp(ctx context.Context, st store.Store) error {
	if !v.loaded.Load() {
		return nil // nothing to keep current; load reads the latest state
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	for {
		changes, err := st.Changes(ctx, v.seq, 1000)
		if err != nil {
			return err
		}
		for _, c := range changes {
			switch {
			case c.Kind.AdmitsSender():
				v.set(c.Scope, c.Sender, true)
			case c.Kind == store.KindRevoked:
				v.set(c.Scope, c.Sender, false)
			}
			v.seq = c.Seq
		}
		if len(changes) < 1000 {
			return nil
		}
	}
}
