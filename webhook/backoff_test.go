package webhook

import (
	"testing"
	"time"

	"github.com/pairgate/pairgate/store/sqlite"
)

// The default schedule: the wait after the n-th failure is drawn from
// [0, min(1s·2^(n-1), 10min)] (full jitter), and the draws spread over the
// whole range.
func TestBackoffSchedule(t *testing.T) {
	st, err := sqlite.Open(t.Context(), sqlite.Options{Path: t.TempDir() + "/pairgate.db"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	p, err := New(Options{Store: st, URL: "https://hooks.example.com/x", Key: []byte("k")})
	if err != nil {
		t.Fatal(err)
	}
	ceilings := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 32 * time.Second,
		64 * time.Second, 128 * time.Second, 256 * time.Second, 512 * time.Second, 10 * time.Minute, 10 * time.Minute}
	for i, ceiling := range append(ceilings, make([]time.Duration, 300)...) {
		attempt := i + 1
		if ceiling == 0 {
			ceiling = 10 * time.Minute // and so on, for a day's worth of tries
		}
		var lo, hi time.Duration = ceiling, 0
		for range 200 {
			d := p.backoff(attempt)
			if d < 0 || d > ceiling {
				t.Fatalf("after failure %d: wait %v, want within [0, %v]", attempt, d, ceiling)
			}
			lo, hi = min(lo, d), max(hi, d)
		}
		if lo > ceiling/4 || hi < ceiling*3/4 {
			t.Errorf("after failure %d: 200 waits within [%v, %v]; want them spread over [0, %v]", attempt, lo, hi, ceiling)
		}
	}
	if p.opts.RetryFor != 24*time.Hour || p.opts.Timeout != 10*time.Second {
		t.Errorf("defaults: retry for %v, timeout %v; want 24h and 10s", p.opts.RetryFor, p.opts.Timeout)
	}
}
