package pairing_test

import (
	"fmt"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pairgate/pairgate/api"
	"github.com/pairgate/pairgate/config"
	"github.com/pairgate/pairgate/internal/pgtest"
	"github.com/pairgate/pairgate/pairing"
	"github.com/pairgate/pairgate/secret"
	"github.com/pairgate/pairgate/store"
	"github.com/pairgate/pairgate/store/backends"
)

// BenchmarkEngines measures the durable paths on each engine in one run:
// a new challenge from 1 and from 16 callers (distinct unknown senders,
// each on an account of their own: see admitNew) and an approval by code
// with 10,000 senders already allowed, from one caller. PostgreSQL runs
// when $PAIRGATE_TEST_POSTGRES is set.
func BenchmarkEngines(b *testing.B) {
	for _, engine := range []string{"sqlite", "postgres"} {
		open := func(b *testing.B) *pairing.Service {
			b.Helper()
			c := backends.Config{Driver: engine, Path: filepath.Join(b.TempDir(), "pairgate.db")}
			if engine == "postgres" {
				c.DSN = pgtest.DSN(b)
			}
			st, err := backends.Open(ctx, c)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { st.Close() })
			cfg := config.Default()
			cfg.Pairing.Limits.MaxPending = 1 << 30
			sec, _ := secret.FromBytes(testKey)
			svc, err := pairing.New(pairing.Options{Store: st, Secret: sec, Config: cfg})
			if err != nil {
				b.Fatal(err)
			}
			list := make([]store.AllowSender, 10_000)
			for i := range list {
				list[i].Sender = strconv.Itoa(1 + i)
			}
			if _, err := st.Allow(ctx, store.AllowParams{Scope: store.Scope{Channel: "telegram", Account: "default"}, Senders: list,
				Via: store.ViaImport, Actor: operator, Now: time.Now()}); err != nil {
				b.Fatal(err)
			}
			if err := svc.Load(ctx); err != nil {
				b.Fatal(err)
			}
			return svc
		}
		for _, callers := range []int{1, 16} {
			b.Run(fmt.Sprintf("%s/challenge/callers=%d", engine, callers), func(b *testing.B) {
				svc := open(b)
				var n atomic.Int64
				if callers == 1 {
					for b.Loop() {
						admitNew(b, svc, n.Add(1))
					}
				} else {
					b.SetParallelism(max(1, callers/runtimeProcs()))
					b.ResetTimer() // b.Loop does this for one caller
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							admitNew(b, svc, n.Add(1))
						}
					})
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "challenges/s")
			})
		}
		b.Run(engine+"/approve", func(b *testing.B) {
			svc := open(b)
			codes := make([]string, b.N)
			for i := range codes {
				d := svc.Admit(ctx, pairing.Inbound{Channel: "telegram", Sender: fmt.Sprint(2_000_000 + i)})
				if d.Verdict != api.Challenge {
					b.Fatal(d)
				}
				codes[i] = d.Code
			}
			b.ResetTimer()
			for _, code := range codes {
				if _, err := svc.Approve(ctx, pairing.Target{Channel: "telegram", CodeOrID: code}, false, operator); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "approvals/s")
		})
	}
}
