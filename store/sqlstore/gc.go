package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/pairgate/pairgate/store"
)

// GarbageCollect implements store.Store. It runs in one write transaction:
// every deletion is by an indexed condition on time, and the change log is
// pruned by at most store.GCBatch changes per call.
func (s *Store) GarbageCollect(ctx context.Context, now time.Time, p store.GCPolicy) (store.GCResult, error) {
	var r store.GCResult
	err := s.write(ctx, "garbage collect", func(tx *Tx) error {
		r = store.GCResult{}
		var err error
		if r.Requests, err = expire(ctx, tx, now, "TRUE"); err != nil {
			return err
		}
		del := func(n *int, query string, args ...any) {
			if err != nil {
				return
			}
			var res sql.Result
			if res, err = tx.ExecContext(ctx, query, args...); err == nil {
				var k int64
				k, err = res.RowsAffected()
				*n = int(k)
			}
		}
		before := func(d time.Duration) int64 { return ms(now.Add(-d)) }
		del(&r.Approvals, `DELETE FROM approvals WHERE expires_at <= ?`, ms(now))
		del(&r.Lockouts, `DELETE FROM lockouts WHERE until <= ?`, ms(now))
		if p.RateWindow > 0 {
			del(&r.Notices, `DELETE FROM notices WHERE at <= ?`, before(p.RateWindow))
		}
		if p.FailureWindow > 0 {
			del(&r.Failures, `DELETE FROM failures WHERE at <= ?`, before(p.FailureWindow))
		}
		if p.DeclineWindow > 0 {
			del(&r.Declines, `DELETE FROM declines WHERE declined_at < ?`, before(p.DeclineWindow))
		}
		if p.SetupTokens > 0 {
			del(&r.SetupTokens, `DELETE FROM setup_tokens WHERE expires_at <= ?`, before(p.SetupTokens))
		}
		if p.DeviceRequests > 0 {
			// Decided ones by when they were decided, pending ones once
			// expired that long ago.
			del(&r.DeviceRequests, `DELETE FROM device_requests
				WHERE (status <> 'pending' AND decided_at <= ?) OR (status = 'pending' AND expires_at <= ?)`,
				before(p.DeviceRequests), before(p.DeviceRequests))
		}
		if err != nil {
			return err
		}
		if p.Retention > 0 {
			r.Changes, err = prune(ctx, tx, now, p)
		}
		return err
	})
	return r, err
}

// prune deletes the changes older than the retention that every live
// cursor has passed, at most store.GCBatch of them, and records how far the
// log is pruned.
func prune(ctx context.Context, tx *Tx, now time.Time, p store.GCPolicy) (int, error) {
	var pruned, last int64
	if err := tx.QueryRowContext(ctx, `SELECT pruned_through, last_seq FROM change_log WHERE id = 1`).Scan(&pruned, &last); err != nil {
		return 0, err
	}
	// The newest change old enough to go.
	var through sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT MAX(seq) FROM changes WHERE at < ?`, ms(now.Add(-p.Retention))).Scan(&through); err != nil {
		return 0, err
	}
	if !through.Valid {
		return 0, nil
	}
	to := through.Int64
	// No further than a live cursor has got.
	cursorQuery, args := `SELECT MIN(seq) FROM cursors`, []any(nil)
	if p.StaleCursor > 0 {
		cursorQuery, args = `SELECT MIN(seq) FROM cursors WHERE updated_at > ?`, []any{ms(now.Add(-p.StaleCursor))}
	}
	var lowest sql.NullInt64
	if err := tx.QueryRowContext(ctx, cursorQuery, args...).Scan(&lowest); err != nil {
		return 0, err
	}
	if lowest.Valid && lowest.Int64 < to {
		to = lowest.Int64
	}
	to = min(to, pruned+store.GCBatch, last)
	if to <= pruned {
		return 0, nil
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM changes WHERE seq <= ?`, to)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE change_log SET pruned_through = ? WHERE id = 1`, to); err != nil {
		return 0, err
	}
	return int(n), nil
}
