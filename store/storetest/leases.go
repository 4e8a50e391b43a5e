package storetest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pairgate/pairgate/store"
)

func testLeases(t *testing.T, b Backend) {
	t.Run("Rules", func(t *testing.T) {
		f := newFixture(t, b)
		acquire := func(holder string, now time.Time, want bool) {
			t.Helper()
			got, err := f.s.AcquireLease(f.ctx, "gc", holder, 10*time.Second, now)
			if err != nil || got != want {
				t.Errorf("AcquireLease(%s at %v) = %v, %v; want %v", holder, now.Sub(t0), got, err, want)
			}
		}
		seq := f.lastSeq()
		acquire("a", at(0), true)                                  // free
		acquire("a", at(5*time.Second), true)                      // renewed: now until 15 s
		acquire("b", at(12*time.Second), false)                    // a's, renewed
		acquire("b", at(15*time.Second), true)                     // expired: b's now
		acquire("a", at(16*time.Second), false)                    // b's
		if err := f.s.ReleaseLease(f.ctx, "gc", "a"); err != nil { // not a's: nothing
			t.Fatal(err)
		}
		acquire("a", at(17*time.Second), false)
		if err := f.s.ReleaseLease(f.ctx, "gc", "b"); err != nil {
			t.Fatal(err)
		}
		acquire("a", at(17*time.Second), true) // released: free at once
		acquire("b", at(17*time.Second), false)
		if got, err := f.s.AcquireLease(f.ctx, "other", "b", time.Second, at(17*time.Second)); err != nil || !got {
			t.Errorf("another lease is independent: %v %v", got, err)
		}
		f.checkChanges("leases", seq) // bookkeeping, not changes
	})
	t.Run("Race", func(t *testing.T) {
		f := newFixture(t, b)
		stores := []store.Store{f.s, f.open(), f.open(), f.open()}
		var wg sync.WaitGroup
		var held atomic.Int64
		for i := range 8 {
			wg.Go(func() {
				ok, err := stores[i%4].AcquireLease(f.ctx, "gc", fmt.Sprint("holder", i), time.Minute, at(0))
				if err != nil {
					t.Error(err)
				}
				if ok {
					held.Add(1)
				}
			})
		}
		wg.Wait()
		if n := held.Load(); n != 1 {
			t.Errorf("8 racing holders for a free lease: %d got it, want exactly 1", n)
		}
	})
	t.Run("RunLeased", func(t *testing.T) {
		f := newFixture(t, b)
		other := f.open()
		var running atomic.Int64 // how many runners' fn run now
		var over atomic.Bool     // more than one at once, ever
		var runs [2]atomic.Int64
		ctxs := [2]context.Context{}
		cancels := [2]context.CancelFunc{}
		done := [2]chan struct{}{make(chan struct{}), make(chan struct{})}
		for i, st := range []store.Store{f.s, other} {
			ctxs[i], cancels[i] = context.WithCancel(f.ctx)
			go func() {
				defer close(done[i])
				store.RunLeased(ctxs[i], st, store.LeaseOptions{Name: "gc", Holder: fmt.Sprint("replica", i), TTL: 300 * time.Millisecond},
					func(ctx context.Context) {
						if running.Add(1) > 1 {
							over.Store(true)
						}
						runs[i].Add(1)
						<-ctx.Done()
						running.Add(-1)
					})
			}()
		}
		defer func() { cancels[0](); cancels[1](); <-done[0]; <-done[1] }()
		time.Sleep(500 * time.Millisecond)
		if running.Load() != 1 {
			t.Fatalf("%d replicas run the leased work, want 1", running.Load())
		}
		holder := 0
		if runs[1].Load() > 0 {
			holder = 1
		}
		start := time.Now()
		cancels[holder]()
		<-done[holder]
		for runs[1-holder].Load() == 0 {
			if time.Since(start) > 2*time.Second {
				t.Fatal("the other replica did not take over the work within 2 s of the holder stopping")
			}
			time.Sleep(5 * time.Millisecond)
		}
		t.Logf("taken over %v after the holder stopped", time.Since(start).Round(time.Millisecond))
		if over.Load() {
			t.Error("two replicas ran the leased work at the same time")
		}
	})
}
