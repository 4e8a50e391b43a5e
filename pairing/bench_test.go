package pairing_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/pairgate/pairgate/api"
	"github.com/pairgate/pairgate/config"
	"github.com/pairgate/pairgate/pairing"
	"github.com/pairgate/pairgate/secret"
	"github.com/pairgate/pairgate/store/sqlite"
)

// seedAllowed writes n allowed telegram senders ("1".."n") straight into the
// database in one statement: the benchmarks measure reading them, and n
// separate durable transactions would take minutes at a million.
func seedAllowed(tb testing.TB, path string, n int) {
	tb.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_busy_timeout=10000")
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	_, err = db.Exec(`WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?)
		INSERT INTO allowed (channel, account, sender, name, approved_at, approved_by, via)
		SELECT 'telegram', 'default', CAST(x AS TEXT), '', 0, 'bench', 'import' FROM c`, n)
	if err != nil {
		tb.Fatal(err)
	}
}

func BenchmarkAdmitAllowed(b *testing.B) {
	for _, n := range []int{10, 10_000, 1_000_000} {
		e := newEnv(b, nil)
		seedAllowed(b, e.path, n)
		if err := e.svc.Load(ctx); err != nil {
			b.Fatal(err)
		}
		in := pairing.Inbound{Channel: "telegram", Sender: strconv.Itoa(n / 2)}
		if d := e.svc.Admit(ctx, in); d.Verdict != api.Admit {
			b.Fatal(d)
		}
		b.Run(fmt.Sprintf("allowed=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				e.svc.Admit(ctx, in)
			}
		})
		b.Run(fmt.Sprintf("allowed=%d/parallel", n), func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					e.svc.Admit(ctx, in)
				}
			})
		})
	}
}

// BenchmarkNewChallenge: distinct unknown senders, each a durable
// transaction (synchronous=FULL), with the cap out of the way.
func BenchmarkNewChallenge(b *testing.B) {
	e := newEnv(b, func(c *config.Config) { c.Pairing.Limits.MaxPending = 1 << 30 })
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		i++
		if d := e.svc.Admit(ctx, pairing.Inbound{Channel: "telegram", Sender: strconv.Itoa(i)}); d.Verdict != api.Challenge {
			b.Fatal(d)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "challenges/s")
}

// BenchmarkApprove approves by code with 10,000 senders already allowed.
func BenchmarkApprove(b *testing.B) {
	e := newEnv(b, func(c *config.Config) { c.Pairing.Limits.MaxPending = 1 << 30 })
	seedAllowed(b, e.path, 10_000)
	if err := e.svc.Load(ctx); err != nil {
		b.Fatal(err)
	}
	codes := make([]string, b.N)
	for i := range codes {
		d := e.svc.Admit(ctx, pairing.Inbound{Channel: "telegram", Sender: strconv.Itoa(100_000 + i)})
		if d.Verdict != api.Challenge {
			b.Fatal(d)
		}
		codes[i] = d.Code
	}
	b.ResetTimer()
	for i := range codes {
		if _, err := e.svc.Approve(ctx, pairing.Target{Channel: "telegram", CodeOrID: codes[i]}, false, operator); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "approvals/s")
}

// BenchmarkOpenMillion opens a store holding 1,000,000 allowed senders and
// loads the gate's view: what a gateway does at start-up. "serve" opens as
// the daemon does, with a full integrity check of the file first; "embedded"
// without it.
func BenchmarkOpenMillion(b *testing.B) {
	path := filepath.Join(b.TempDir(), "pairgate.db")
	st, err := sqlite.Open(ctx, sqlite.Options{Path: path})
	if err != nil {
		b.Fatal(err)
	}
	st.Close()
	seedAllowed(b, path, 1_000_000)
	sec, _ := secret.FromBytes(testKey)
	for _, c := range []struct {
		name  string
		check time.Duration
	}{{"serve", time.Minute}, {"embedded", 0}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				st, err := sqlite.Open(context.Background(), sqlite.Options{Path: path, IntegrityCheck: c.check})
				if err != nil {
					b.Fatal(err)
				}
				svc, err := pairing.New(pairing.Options{Store: st, Secret: sec})
				if err != nil {
					b.Fatal(err)
				}
				if err := svc.Load(ctx); err != nil {
					b.Fatal(err)
				}
				if d := svc.Admit(ctx, pairing.Inbound{Channel: "telegram", Sender: "999999"}); d.Verdict != api.Admit {
					b.Fatal(d)
				}
				st.Close()
			}
		})
	}
}
