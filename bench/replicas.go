package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pairgate/pairgate/api"
	"github.com/pairgate/pairgate/client"
)

// revocation is how long a revocation on one replica took to be refused
// by another, over rounds revocations.
type revocation struct {
	rounds        int
	p50, p99, max time.Duration
}

// measureRevocation starts two `pairgate serve` on one fresh PostgreSQL
// schema (one home, as replicas share their secret and config), allows
// rounds senders on a channel whose policy is allowlist (so probing it
// writes nothing) and, one sender at a time, revokes on replica A and asks
// replica B every millisecond until it refuses. Each time runs from the
// revoke request to B's first refusal.
func measureRevocation(ctx context.Context, bin, dir, dsn string, rounds int) (*revocation, error) {
	schemaDSN, drop, err := newSchema(ctx, dsn)
	if err != nil {
		return nil, err
	}
	defer drop()
	home := filepath.Join(dir, "home-replicas")
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, err
	}
	cfg := "pairing:\n  storage:\n    driver: postgres\n    dsn: " + strconv.Quote(schemaDSN) + "\n  channels:\n    discord: {policy: allowlist}\n"
	if err := os.WriteFile(filepath.Join(home, "pairgate.yaml"), []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	env := pairgateEnv()
	var replicas [2]*client.Client
	for i := range replicas {
		s, _, err := startServe(ctx, bin, home, env)
		if err != nil {
			return nil, fmt.Errorf("replica %d: %w", i+1, err)
		}
		defer s.stop()
		token, err := s.adminToken()
		if err != nil {
			return nil, err
		}
		if replicas[i], err = client.New(s.url, token); err != nil {
			return nil, err
		}
	}
	a, b := replicas[0], replicas[1]

	senders := make([]string, rounds)
	for i := range senders {
		senders[i] = fmt.Sprint(100_000_000_000_000_000 + i)
		if _, err := a.Allow(ctx, "discord", "", senders[i]); err != nil {
			return nil, fmt.Errorf("allow on replica 1: %w", err)
		}
	}
	took := make([]time.Duration, 0, rounds)
	for _, s := range senders {
		if _, err := waitVerdict(ctx, b, s, api.Admit); err != nil {
			return nil, fmt.Errorf("replica 2 before the revocation: %w", err)
		}
		start := time.Now()
		if _, err := a.Revoke(ctx, "discord", "", s); err != nil {
			return nil, fmt.Errorf("revoke on replica 1: %w", err)
		}
		if _, err := waitVerdict(ctx, b, s, api.Drop); err != nil {
			return nil, fmt.Errorf("replica 2 after the revocation: %w", err)
		}
		took = append(took, time.Since(start))
	}
	slices.Sort(took)
	return &revocation{rounds: rounds, p50: took[len(took)/2], p99: took[(len(took)*99+99)/100-1], max: took[len(took)-1]}, nil
}

// waitVerdict asks c about sender on discord every millisecond until it
// answers want, for at most 5 s.
func waitVerdict(ctx context.Context, c *client.Client, sender string, want api.Verdict) (time.Duration, error) {
	start := time.Now()
	for {
		d, err := c.Admit(ctx, api.AdmitRequest{Channel: "discord", Sender: sender})
		if err != nil {
			return 0, err
		}
		if d.Verdict == want {
			return time.Since(start), nil
		}
		if time.Since(start) > 5*time.Second {
			return 0, fmt.Errorf("sender %s still %s (%s) after 5 s, want %s", sender, d.Verdict, d.Reason, want)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
}

// newSchema creates a schema of the run's own in the database at dsn and
// returns a DSN whose search_path selects it, and a func that drops it.
func newSchema(ctx context.Context, dsn string) (string, func(), error) {
	var b [6]byte
	rand.Read(b[:])
	schema := "bench_" + hex.EncodeToString(b[:])
	exec := func(ctx context.Context, sql string) error {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			return err
		}
		defer conn.Close(context.Background())
		_, err = conn.Exec(ctx, sql)
		return err
	}
	if err := exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		return "", nil, fmt.Errorf("PostgreSQL at -postgres: create schema: %w", err)
	}
	drop := func() { exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE") }
	return withSearchPath(dsn, schema), drop, nil
}

// withSearchPath adds search_path to a URL or keyword/value DSN.
func withSearchPath(dsn, schema string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		if u, err := url.Parse(dsn); err == nil {
			q := u.Query()
			q.Set("search_path", schema)
			u.RawQuery = q.Encode()
			return u.String()
		}
	}
	return dsn + " search_path=" + schema
}
