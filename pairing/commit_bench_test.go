package pairing_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/pairgate/pairgate/api"
	"github.com/pairgate/pairgate/config"
	"github.com/pairgate/pairgate/pairing"
	"github.com/pairgate/pairgate/secret"
	"github.com/pairgate/pairgate/store/sqlite"
)

// BenchmarkFsync is this machine's durable write rate: a 4 KiB append and
// an fdatasync (Go's File.Sync is fsync; on Linux the difference for an
// append is the inode's times) to a file in the same temporary directory
// as the stores. Durable rates below are read as fractions of it.
func BenchmarkFsync(b *testing.B) {
	f, err := os.OpenFile(filepath.Join(b.TempDir(), "fsync"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	page := make([]byte, 4096)
	for b.Loop() {
		if _, err := f.Write(page); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "fsyncs/s")
}

// BenchmarkChallengeGroupCommit: new challenges (distinct unknown senders,
// durable) from 1 and from 16 callers at once, with each write committed
// on its own (batch=1) and with group commit (batch=16), in one run so the
// ratios compare like with like. writes/commit is what group commit
// achieved.
func BenchmarkChallengeGroupCommit(b *testing.B) {
	for _, batch := range []int{1, 16} {
		for _, callers := range []int{1, 16} {
			b.Run(fmt.Sprintf("batch=%d/callers=%d", batch, callers), func(b *testing.B) {
				st, err := sqlite.Open(context.Background(), sqlite.Options{Path: filepath.Join(b.TempDir(), "pairgate.db"), MaxBatch: batch})
				if err != nil {
					b.Fatal(err)
				}
				defer st.Close()
				cfg := config.Default()
				cfg.Pairing.Limits.MaxPending = 1 << 30
				sec, _ := secret.FromBytes(testKey)
				svc, err := pairing.New(pairing.Options{Store: st, Secret: sec, Config: cfg})
				if err != nil {
					b.Fatal(err)
				}
				if err := svc.Load(ctx); err != nil {
					b.Fatal(err)
				}
				var n atomic.Int64
				// RunParallel runs parallelism × GOMAXPROCS goroutines.
				b.SetParallelism(max(1, callers/max(1, runtimeProcs())))
				c0, w0 := st.CommitStats()
				if callers == 1 {
					for b.Loop() {
						admitNew(b, svc, n.Add(1))
					}
				} else {
					b.ResetTimer() // b.Loop does this for one caller
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							admitNew(b, svc, n.Add(1))
						}
					})
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "challenges/s")
				if c, w := st.CommitStats(); c > c0 {
					b.ReportMetric(float64(w-w0)/float64(c-c0), "writes/commit")
				}
			})
		}
	}
}

// admitNew challenges a new sender on an account of their own: the pending
// count of a scope (read by every challenge, bounded by max_pending in
// real use) stays at zero, so the benchmark measures the durable write, not
// a count that grows with b.N.
func admitNew(b *testing.B, svc *pairing.Service, i int64) {
	in := pairing.Inbound{Channel: "telegram", Account: fmt.Sprint("a", i), Sender: fmt.Sprint(5_000_000 + i)}
	if d := svc.Admit(ctx, in); d.Verdict != api.Challenge {
		b.Error(d)
	}
}

func runtimeProcs() int { return runtime.GOMAXPROCS(0) }
