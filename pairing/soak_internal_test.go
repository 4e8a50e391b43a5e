package pairing

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pairgate/pairgate/api"
	"github.com/pairgate/pairgate/config"
	"github.com/pairgate/pairgate/secret"
	"github.com/pairgate/pairgate/store"
	"github.com/pairgate/pairgate/store/sqlite"
)

var (
	soakDays = flag.Int("soak.days", 30, "simulated days of TestSoakMonth")
	soakStep = flag.Duration("soak.step", 10*time.Minute, "simulated time between steps of TestSoakMonth (smaller: more work)")
)

// TestSoakMonth runs a month of a gateway's life in simulated time (an
// injected clock; nothing sleeps): a steady mix of messages from allowed
// and unknown senders, challenges, approvals (some with a wrong code),
// rejections and revocations over a fixed population, a device paired
// every day over the /pair WebSocket (the reference companion, on
// loopback), rotations twice a day and a revocation every fifth day, with garbage
// collection every simulated hour and a change log kept 3 days. Codes
// expire, lockouts lift, declines end and the log is pruned. Every
// simulated hour the allowlist in memory equals the store's (ScanAllowed)
// exactly; every day the heap in use and the database's size are
// reported, and from the second day on they stay flat.
func TestSoakMonth(t *testing.T) {
	if testing.Short() {
		t.Skip("the month takes seconds; -short skips it")
	}
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "pairgate.db")
	st, err := sqlite.Open(ctx, sqlite.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cfg := config.Default()
	cfg.Pairing.Limits.MaxPending = 50
	cfg.Pairing.Storage.Retention = config.Duration(3 * 24 * time.Hour)
	key := make([]byte, 32)
	sec, err := secret.FromBytes(key)
	if err != nil {
		t.Fatal(err)
	}
	// The clock is read by the /pair server's goroutines too.
	var clock atomic.Int64
	clock.Store(now.UnixNano())
	nowFn := func() time.Time { return time.Unix(0, clock.Load()).UTC() }
	svc, err := New(Options{Store: st, Secret: sec, Config: cfg, Now: nowFn})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Load(ctx); err != nil {
		t.Fatal(err)
	}
	lim := cfg.Pairing.Limits
	gc := store.GCPolicy{RateWindow: lim.RateWindow.Std(), FailureWindow: lim.FailureWindow.Std(),
		DeclineWindow: lim.DeclineWindow.Std(), Retention: cfg.Pairing.Storage.Retention.Std(), Outbound: 7 * 24 * time.Hour}

	rng := rand.New(rand.NewPCG(1, 2))
	const population = 300
	codes := map[string]string{} // sender → live code
	owner := store.Actor{Name: "cli:soak", Source: "cli"}
	devices := newSoakDevices(t, ctx, st, sec, nowFn, owner)
	counts := map[string]int{}
	start := now
	type sample struct {
		day        int
		heap, size uint64
	}
	var samples []sample
	for step := 0; now.Sub(start) < time.Duration(*soakDays)*24*time.Hour; step++ {
		now = now.Add(*soakStep)
		clock.Store(now.UnixNano())
		for range 3 {
			sender := fmt.Sprint(100000 + rng.IntN(population))
			d := svc.Admit(ctx, Inbound{Channel: "telegram", Sender: sender})
			counts[string(d.Reason)+"/"+string(d.Verdict)]++
			if d.Verdict == api.Challenge && d.Code != "" {
				codes[sender] = d.Code
			}
		}
		for sender, code := range codes { // one pending request a step is decided
			delete(codes, sender)
			target := Target{Channel: "telegram", CodeOrID: code}
			var err error
			switch r := rng.IntN(10); {
			case r < 6:
				_, err = svc.Approve(ctx, target, false, owner)
				counts["approve"]++
			case r < 8:
				_, err = svc.Reject(ctx, target, owner)
				counts["reject"]++
			case r < 9:
				// A mistyped code: counts towards a lockout that lifts.
				if _, werr := svc.Approve(ctx, Target{Channel: "telegram", CodeOrID: "ZZZZ-ZZZZ"}, false, owner); werr == nil {
					t.Fatalf("%v: a code nobody was given approved", now)
				}
				counts["wrong code"]++
			default:
				counts["left to expire"]++
			}
			if err != nil && !isExpected(err) {
				t.Fatalf("%v: deciding %s: %v", now, sender, err)
			}
			break
		}
		if rng.IntN(8) == 0 {
			sender := fmt.Sprint(100000 + rng.IntN(population))
			if _, err := svc.Revoke(ctx, "telegram", "", sender, owner); err == nil {
				counts["revoke"]++
			} else if !isExpected(err) {
				t.Fatalf("%v: revoke %s: %v", now, sender, err)
			}
		}
		if now.Truncate(time.Hour).Equal(now) {
			for {
				res, err := st.GarbageCollect(ctx, now, gc)
				if err != nil {
					t.Fatal(err)
				}
				if res.Changes < store.GCBatch {
					break
				}
			}
			checkViewMatchesStore(t, ctx, svc, st, now)
			switch h := now.Hour(); {
			case h == 9:
				devices.pair(ctx)
				counts["device paired"]++
			case h%12 == 3 && devices.rotate(ctx, rng):
				counts["device rotated"]++
			case h == 18 && now.YearDay()%5 == 0 && devices.revoke(ctx, rng):
				counts["device revoked"]++
			case h == 23:
				devices.check(ctx)
			}
		}
		if now.Truncate(24 * time.Hour).Equal(now) {
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			samples = append(samples, sample{day: int(now.Sub(start) / (24 * time.Hour)), heap: ms.HeapInuse, size: dbSize(path)})
		}
	}
	var curve string
	for _, s := range samples {
		curve += fmt.Sprintf(" d%d:%dKiB/%dKiB", s.day, s.heap>>10, s.size>>10)
	}
	t.Logf("%d days, a step every %v: %v", *soakDays, *soakStep, counts)
	t.Logf("heap in use / database size by day:%s", curve)
	if counts["approve"] == 0 || counts["reject"] == 0 || counts["revoke"] == 0 || counts[string(api.ReasonLockedOut)+"/"+string(api.Drop)] == 0 ||
		counts["device paired"] == 0 || counts["device rotated"] == 0 || counts["device revoked"] == 0 {
		t.Errorf("the month did not exercise every path: %v", counts)
	}
	// Flat from the second day: the population is fixed and GC keeps
	// every other table bounded by its window.
	if len(samples) > 3 {
		base, last := samples[1], samples[len(samples)-1]
		if last.heap > 2*base.heap+4<<20 {
			t.Errorf("heap in use grew from %d KiB on day %d to %d KiB on day %d", base.heap>>10, base.day, last.heap>>10, last.day)
		}
		// The log is kept 3 days, so the file settles after the fourth.
		settled := samples[min(4, len(samples)-1)]
		if last.size > settled.size*3/2+256<<10 {
			t.Errorf("database grew from %d KiB on day %d to %d KiB on day %d", settled.size>>10, settled.day, last.size>>10, last.day)
		}
	}
	// The log holds only the retention window (and the GC's last hour).
	first, err := st.RecentChanges(ctx, store.ChangeQuery{Limit: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(first); n > 0 && now.Sub(first[n-1].At) > gc.Retention+time.Hour {
		first = first[n-1:]
		t.Errorf("the oldest change is from %v, %v before the end: retention (%v) did not prune", first[0].At, now.Sub(first[0].At), gc.Retention)
	}
}

// isExpected: the refusals a real owner meets in a month (approved already,
// locked out, not found, nothing to revoke).
func isExpected(err error) bool {
	var lock *store.LockoutError
	return errors.As(err, &lock) || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrAlreadyApproved)
}

// checkViewMatchesStore: the allowlist the gate answers from holds exactly
// the senders the store has allowed.
func checkViewMatchesStore(t *testing.T, ctx context.Context, svc *Service, st store.Store, now time.Time) {
	t.Helper()
	want := map[store.Scope]map[string]bool{}
	n := 0
	if _, err := st.ScanAllowed(ctx, func(scope store.Scope, sender string) error {
		if want[scope] == nil {
			want[scope] = map[string]bool{}
		}
		want[scope][sender] = true
		n++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	got := 0
	for scope, set := range *svc.view.scopes.Load() {
		for i := range set.shards {
			m := set.shards[i].Load()
			if m == nil {
				continue
			}
			for sender := range *m {
				got++
				if !want[scope][sender] {
					t.Fatalf("%v: %s %s is admitted from memory but not allowed in the store", now, scope, sender)
				}
			}
		}
	}
	if got != n {
		t.Fatalf("%v: %d senders in memory, %d allowed in the store", now, got, n)
	}
}

func dbSize(path string) uint64 {
	var total uint64
	for _, p := range []string{path, path + "-wal"} {
		if fi, err := os.Stat(p); err == nil {
			total += uint64(fi.Size())
		}
	}
	return total
}
