package pairing

import (
	"context"
	"hash/maphash"
	"maps"
	"sync"
	"sync/atomic"

	"github.com/pairgate/pairgate/store"
)

// viewShards splits each scope's allowlist so that a change copies only
// 1/1024 of it: at a million senders, about a thousand entries.
const viewShards = 1024

// view is the in-memory allowlist the gate answers from. It follows the
// store's change log: loaded from a snapshot, then advanced by applying
// changes after the snapshot's sequence number.
//
// Reads take no lock and write no shared memory: every shard is an immutable
// map behind an atomic pointer, replaced whole (copy on write) by the single
// writer. So lookups cost the same at 10 or 1,000,000 senders, allocate
// nothing, and scale across cores even when every goroutine asks about the
// same sender.
type view struct {
	scopes atomic.Pointer[map[store.Scope]*senderSet] // copy-on-write: scopes are few and rarely added
	seed   maphash.Seed

	mu     sync.Mutex // the single writer: loads and catch-ups
	loaded atomic.Bool
	seq    int64 // last change applied
}

type senderSet struct {
	shards [viewShards]atomic.Pointer[map[string]struct{}]
}

func newView() *view {
	v := &view{seed: maphash.MakeSeed()}
	v.scopes.Store(&map[store.Scope]*senderSet{})
	return v
}

func (v *view) shardOf(sender string) uint64 {
	return maphash.String(v.seed, sender) % viewShards
}

// contains reports whether sender is on scope's allowlist.
func (v *view) contains(scope store.Scope, sender string) bool {
	set := (*v.scopes.Load())[scope]
	if set == nil {
		return false
	}
	m := set.shards[v.shardOf(sender)].Load()
	if m == nil {
		return false
	}
	_, ok := (*m)[sender]
	return ok
}

// set adds or removes one sender. Callers hold v.mu.
func (v *view) set(scope store.Scope, sender string, allowed bool) {
	set := (*v.scopes.Load())[scope]
	if set == nil {
		if !allowed {
			return
		}
		set = v.addScope(scope)
	}
	shard := &set.shards[v.shardOf(sender)]
	var next map[string]struct{}
	if cur := shard.Load(); cur != nil {
		if _, ok := (*cur)[sender]; ok == allowed {
			return
		}
		next = maps.Clone(*cur)
	}
	if allowed {
		if next == nil {
			next = map[string]struct{}{}
		}
		next[sender] = struct{}{}
	} else {
		delete(next, sender)
	}
	shard.Store(&next)
}

// addScope publishes an empty set for a new scope. Callers hold v.mu.
func (v *view) addScope(scope store.Scope) *senderSet {
	cur := *v.scopes.Load()
	next := make(map[store.Scope]*senderSet, len(cur)+1)
	maps.Copy(next, cur)
	set := &senderSet{}
	next[scope] = set
	v.scopes.Store(&next)
	return set
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
	return v.fillLocked(ctx, st)
}

// reload replaces the view with a fresh snapshot and returns the position
// it covers: what a follower does when retention pruned the log past it.
func (v *view) reload(ctx context.Context, st store.Store) (int64, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := v.fillLocked(ctx, st); err != nil {
		return 0, err
	}
	return v.seq, nil
}

// fillLocked builds the view from a snapshot. The shards are built
// privately and published when complete, so a million senders cost a
// million map inserts, not a million copies. Callers hold v.mu.
func (v *view) fillLocked(ctx context.Context, st store.Store) error {
	building := map[store.Scope]*[viewShards]map[string]struct{}{}
	seq, err := st.ScanAllowed(ctx, func(scope store.Scope, sender string) error {
		b := building[scope]
		if b == nil {
			b = &[viewShards]map[string]struct{}{}
			building[scope] = b
		}
		i := v.shardOf(sender)
		if b[i] == nil {
			b[i] = map[string]struct{}{}
		}
		b[i][sender] = struct{}{}
		return nil
	})
	if err != nil {
		return err
	}
	scopes := make(map[store.Scope]*senderSet, len(building))
	for scope, b := range building {
		set := &senderSet{}
		for i := range b {
			if b[i] != nil {
				set.shards[i].Store(&b[i])
			}
		}
		scopes[scope] = set
	}
	v.scopes.Store(&scopes)
	v.seq = seq
	v.loaded.Store(true)
	return nil
}

// position is the sequence number of the last change applied.
func (v *view) position() int64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.seq
}

// apply brings changes into the view, skipping those already applied: the
// follower and a catch-up after a change made through the Service may read
// the same part of the log.
func (v *view) apply(changes []store.Change) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.applyLocked(changes)
	return nil
}

func (v *view) applyLocked(changes []store.Change) {
	for _, c := range changes {
		if c.Seq <= v.seq {
			continue
		}
		switch {
		case c.Kind.AdmitsSender():
			v.set(c.Scope, c.Sender, true)
		case c.Kind == store.KindRevoked:
			v.set(c.Scope, c.Sender, false)
		}
		v.seq = c.Seq
	}
}

// applyOwn applies a change this process has just committed without
// reading it back from the log, when it is the next change the view
// expects (or the view holds no snapshot yet, or has applied it already).
// Otherwise, with changes between that the view has not seen, it applies
// nothing and reports false: the caller catches up, in order.
func (v *view) applyOwn(c store.Change) bool {
	if !v.loaded.Load() {
		return true // nothing to keep current; load reads the latest state
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if c.Seq > v.seq+1 {
		return false
	}
	v.applyLocked([]store.Change{c})
	return true
}

// catchUp applies every change after the last one applied, once. The
// follower (Service.Run) keeps the view current; catchUp makes a change made
// through this Service visible before the call that made it returns.
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
		v.applyLocked(changes)
		if len(changes) < 1000 {
			return nil
		}
	}
}
