package store

import (
	"context"
	"time"
)

// LeaseOptions configure RunLeased.
type LeaseOptions struct {
	// Name is the work's lease ("gc"); Holder names this process, unique
	// among the processes that may hold it.
	Name, Holder string
	// TTL is how long a lease lasts unless renewed; it is renewed every
	// TTL/3. Another process takes over within TTL (plus TTL/3) of the
	// holder's death, at once after a clean stop. Default 9s.
	TTL time.Duration
	// Now is the clock (default time.Now). Holders' clocks should agree to
	// well within TTL.
	Now func() time.Time
	// OnError, when set, is told of failed acquisitions and renewals.
	OnError func(error)
}

// Leaser takes and gives up leases (part of Store).
type Leaser interface {
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration, now time.Time) (bool, error)
	ReleaseLease(ctx context.Context, name, holder string) error
}

// RunLeased runs fn while this process holds the lease o.Name, until ctx
// ends: work that must run on one replica at a time (garbage collection,
// the outbox publishers) runs on whichever holds the lease. fn's context
// ends when the lease is lost, when it could not be renewed for a whole
// TTL (another process may have it by then), or when ctx ends; fn is
// started again when the lease is held again. On the way out the lease is
// released, so another process takes over at once.
func RunLeased(ctx context.Context, st Leaser, o LeaseOptions, fn func(context.Context)) {
	if o.TTL <= 0 {
		o.TTL = 9 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	var (
		stopFn   context.CancelFunc
		fnDone   chan struct{}
		renewed  time.Time
		interval = o.TTL / 3
	)
	stop := func() {
		if stopFn != nil {
			stopFn()
			<-fnDone
			stopFn = nil
		}
	}
	defer func() {
		stop()
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), interval)
		defer cancel()
		st.ReleaseLease(rctx, o.Name, o.Holder)
	}()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		now := o.Now()
		held, err := st.AcquireLease(ctx, o.Name, o.Holder, o.TTL, now)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			if o.OnError != nil {
				o.OnError(err)
			}
			// Unsure whether it is still ours: stop before it may have
			// expired for the others.
			if stopFn != nil && now.Sub(renewed) >= o.TTL-interval {
				stop()
			}
		case held:
			renewed = now
			if stopFn == nil {
				fctx, cancel := context.WithCancel(ctx)
				stopFn, fnDone = cancel, make(chan struct{})
				go func() {
					defer close(fnDone)
					fn(fctx)
				}()
			}
		default:
			stop()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
