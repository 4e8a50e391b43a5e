package pairing

import (
	"sync"
	"time"

	"github.com/pairgate/pairgate/store"
)

// A full scope under a flood of invented senders would cost one durable
// write (the "too many requests" notice, MarkNotice) per sender: each new
// sender is told once per rate window. The notice budget caps that: a
// Service tells at most noticesPerWindow new senders per scope per rate
// window; the rest of the flood is dropped (reason max_pending) without
// a word and without touching the store. Each sender is still told at most
// once per window, as MarkNotice decides; a sender the budget passed over
// is told in a later window, if they write again.
const (
	noticesPerWindow = 10
	// maxBudgetScopes bounds the scopes the budget remembers: accounts come
	// from outside, and a flood over invented accounts must not grow the
	// map without end. Past it, scopes whose window is over are forgotten;
	// if none is, new scopes get no notice until one is.
	maxBudgetScopes = 4096
)

type noticeBudget struct {
	mu      sync.Mutex
	windows map[store.Scope]*budgetWindow
}

type budgetWindow struct {
	start time.Time
	told  int
}

// allows reports whether a notice may be tried for scope at now.
func (b *noticeBudget) allows(scope store.Scope, now time.Time, window time.Duration) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	w := b.window(scope, now, window)
	return w != nil && w.told < noticesPerWindow
}

// spend counts a notice told in scope.
func (b *noticeBudget) spend(scope store.Scope, now time.Time, window time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if w := b.window(scope, now, window); w != nil {
		w.told++
	}
}

// window is scope's current window, started afresh once the last is
// over; nil when the map is full of live windows. Callers hold mu.
func (b *noticeBudget) window(scope store.Scope, now time.Time, window time.Duration) *budgetWindow {
	if b.windows == nil {
		b.windows = map[store.Scope]*budgetWindow{}
	}
	w := b.windows[scope]
	if w != nil && now.Sub(w.start) < window {
		return w
	}
	if w == nil && len(b.windows) >= maxBudgetScopes {
		for sc, old := range b.windows {
			if now.Sub(old.start) >= window {
				delete(b.windows, sc)
			}
		}
		if len(b.windows) >= maxBudgetScopes {
			return nil
		}
	}
	w = &budgetWindow{start: now}
	b.windows[scope] = w
	return w
}
