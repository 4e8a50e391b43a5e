package device

import (
	"context"
	"sync"
	"time"

	"github.com/pairgate/pairgate/store"
)

// Open sessions learn of what concerns them (a decision on their request, a
// rotation or revocation of their device) from one follower of the change
// log per Service, not by re-reading the store on every change anywhere:
// reads grow with the changes that concern a session, not with
// connections × writes.
const (
	// sessionRecheck bounds how long a session can go without re-reading
	// its state even if no wake-up reaches it (a Service whose Run is not
	// running, or a change appended just before Run found the log's head).
	sessionRecheck = 30 * time.Second
	// readRetry is how soon a session whose own read failed tries again.
	readRetry = time.Second
)

// watchers wakes the sessions waiting on a request or a device.
type watchers struct {
	mu   sync.Mutex
	byID map[string]map[chan struct{}]struct{} // request id or device id → wake-ups
}

// watch registers interest in id (a request id or a device id). Register
// before reading the state it guards: a change after the read then always
// wakes the channel. The returned func unregisters.
func (w *watchers) watch(id string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	w.mu.Lock()
	if w.byID == nil {
		w.byID = map[string]map[chan struct{}]struct{}{}
	}
	set := w.byID[id]
	if set == nil {
		set = map[chan struct{}]struct{}{}
		w.byID[id] = set
	}
	set[ch] = struct{}{}
	w.mu.Unlock()
	return ch, func() {
		w.mu.Lock()
		delete(set, ch)
		if len(set) == 0 {
			// A set is in byID for as long as it holds a channel, so
			// this is still the set registered under id.
			delete(w.byID, id)
		}
		w.mu.Unlock()
	}
}

// wake signals every session watching id; a session that has not yet taken
// the last signal keeps one pending.
func (w *watchers) wake(id string) {
	if id == "" {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for ch := range w.byID[id] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Run follows the change log until ctx ends and wakes the open sessions each
// change concerns. A daemon serving /pair runs it for the Service's life;
// without it, sessions still re-read their state every sessionRecheck.
func (s *Service) Run(ctx context.Context) error {
	// Start from the log's head: a session registers before it reads its
	// state, so only changes after that read need to reach it.
	follow := store.FollowOptions{OnError: func(err error) { s.log.Warn("device: following the change log failed; will retry", "err", err) }}
	head, err := store.Head(ctx, s.st, follow)
	if err != nil {
		return nil // ctx ended
	}
	follow.After = head
	store.Follow(ctx, s.st, follow, func(changes []store.Change) error {
		for _, c := range changes {
			s.watchers.wake(c.RequestID)
			s.watchers.wake(c.DeviceID)
		}
		return nil
	})
	return nil
}
