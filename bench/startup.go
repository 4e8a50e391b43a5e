package main

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // the driver the store uses, to seed its file

	"github.com/pairgate/pairgate/api"
	"github.com/pairgate/pairgate/client"
)

// millionAllowed is the allowlist of the start-up target.
const millionAllowed = 1_000_000

// startup is `pairgate serve` started on a home whose database holds
// millionAllowed allowed senders: how long until /healthz answers, and the
// daemon's peak RSS by then, once per start.
type startup struct {
	seconds sample
	peakMB  sample // 10^6 bytes
}

// measureStartup creates a home under dir, puts a million senders on its
// allowlist and starts `pairgate serve` on it starts times.
func measureStartup(ctx context.Context, bin, dir string, starts int) (*startup, error) {
	env := pairgateEnv()
	home := filepath.Join(dir, "home-million")
	// Any command creates the home and its database.
	if _, err := runCmd(ctx, env, filepath.Join(bin, "pairgate"), "--home", home, "pairing", "allowed"); err != nil {
		return nil, err
	}
	if err := seedAllowed(ctx, filepath.Join(home, "pairgate.db"), millionAllowed); err != nil {
		return nil, err
	}
	res := &startup{}
	for range starts {
		s, ready, err := startServe(ctx, bin, home, env)
		if err != nil {
			return nil, err
		}
		rss, err := s.peakRSS()
		if err == nil {
			err = checkAdmitted(ctx, s, fmt.Sprint(millionAllowed-1))
		}
		if serr := s.stop(); err == nil {
			err = serr
		}
		if err != nil {
			return nil, err
		}
		res.seconds = append(res.seconds, ready.Seconds())
		res.peakMB = append(res.peakMB, float64(rss)/1e6)
	}
	return res, nil
}

// seedAllowed writes n allowed telegram senders ("1".."n") straight into
// the database in one statement, as pairing's BenchmarkOpenMillion does: a
// million durable approvals would take minutes, and start-up only reads
// them.
func seedAllowed(ctx context.Context, path string, n int) error {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return fmt.Errorf("seed %s: %w", path, err)
	}
	defer db.Close()
	_, err = db.ExecContext(ctx, `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?)
		INSERT INTO allowed (channel, account, sender, name, approved_at, approved_by, via)
		SELECT 'telegram', 'default', CAST(x AS TEXT), '', 0, 'bench', 'import' FROM c`, n)
	if err != nil {
		return fmt.Errorf("seed %d allowed senders into %s: %w", n, path, err)
	}
	return nil
}

// checkAdmitted makes sure the daemon that answered /healthz has loaded
// the allowlist: a start-up time without it would flatter.
func checkAdmitted(ctx context.Context, s *serve, sender string) error {
	token, err := s.adminToken()
	if err != nil {
		return err
	}
	c, err := client.New(s.url, token)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	d, err := c.Admit(ctx, api.AdmitRequest{Channel: "telegram", Sender: sender})
	if err != nil {
		return fmt.Errorf("admit allowed sender %s: %w", sender, err)
	}
	if d.Verdict != api.Admit {
		return fmt.Errorf("allowed sender %s: %s (%s), want admit: the allowlist was not loaded", sender, d.Verdict, d.Reason)
	}
	return nil
}
