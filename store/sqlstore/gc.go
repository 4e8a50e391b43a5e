package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/pairgate/pairgate/store"
)

// GarbageCollect implements store.Store. It runs in one write transaction,
// and every kind of row is deleted store.GCBatch at a time at most, by an
// indexed condition on time: one call holds the write lock briefly however
// much there is to collect, and store.RunGC calls again at once while there
// is more.
func (s *Store) GarbageCollect(ctx context.Context, now time.Time, p store.GCPolicy) (store.GCResult, error) {
	var r store.GCResult
	err := s.write(ctx, "garbage collect", func(tx *Tx) error {
		r = store.GCResult{}
		var err error
		// Expired requests go through expire, which records each.
		if r.Requests, err = expire(ctx, tx, now, `id IN (SELECT id FROM requests WHERE expires_at <= ? LIMIT ?)`, ms(now), store.GCBatch); err != nil {
			return err
		}
		del := func(n *int, query string, args ...any) {
			if err != nil {
				return
			}
			var res sql.Result
			if res, err = tx.ExecContext(ctx, query, append(args, store.GCBatch)...); err == nil {
				var k int64
				k, err = res.RowsAffected()
				*n = int(k)
			}
		}
		before := func(d time.Duration) int64 { return ms(now.Add(-d)) }
		del(&r.Approvals, `DELETE FROM approvals WHERE id IN (SELECT id FROM approvals WHERE expires_at <= ? LIMIT ?)`, ms(now))
		del(&r.Lockouts, `DELETE FROM lockouts WHERE (channel, account) IN
			(SELECT channel, account FROM lockouts WHERE until <= ? LIMIT ?)`, ms(now))
		if p.RateWindow > 0 {
			del(&r.Notices, `DELETE FROM notices WHERE (channel, account, sender, kind) IN
				(SELECT channel, account, sender, kind FROM notices WHERE at <= ? LIMIT ?)`, before(p.RateWindow))
		}
		if p.FailureWindow > 0 {
			del(&r.Failures, `DELETE FROM failures WHERE id IN (SELECT id FROM failures WHERE at <= ? LIMIT ?)`, before(p.FailureWindow))
		}
		if p.DeclineWindow > 0 {
			del(&r.Declines, `DELETE FROM declines WHERE (channel, account, sender) IN
				(SELECT channel, account, sender FROM declines WHERE declined_at < ? LIMIT ?)`, before(p.DeclineWindow))
		}
		if p.SetupTokens > 0 {
			del(&r.SetupTokens, `DELETE FROM setup_tokens WHERE id IN (SELECT id FROM setup_tokens WHERE expires_at <= ? LIMIT ?)`, before(p.SetupTokens))
		}
		if p.DeviceRequests > 0 {
			// Decided ones by when they were decided, pending ones once
			// expired that long ago.
			del(&r.DeviceRequests, `DELETE FROM device_requests WHERE id IN (SELECT id FROM device_requests
				WHERE (status <> 'pending' AND decided_at <= ?) OR (status = 'pending' AND expires_at <= ?) LIMIT ?)`,
				before(p.DeviceRequests), before(p.DeviceRequests))
		}
		// Web sessions and sign-in links are no use once expired: WebSession
		// and RedeemWebLink already ignore them.
		del(&r.WebSessions, `DELETE FROM web_sessions WHERE hash IN (SELECT hash FROM web_sessions WHERE expires_at <= ? LIMIT ?)`, ms(now))
		if p.Outbound > 0 {
			// The counter row keeps numbering where it was: a message
			// deleted here is never numbered again.
			del(&r.Outbound, `DELETE FROM outbound WHERE seq IN (SELECT seq FROM outbound WHERE at <= ? LIMIT ?)`, before(p.Outbound))
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

// prune deletes the oldest changes, at most store.GCBatch of them: those
// before the first change still younger than the retention (times need not
// rise with sequence numbers: replicas' clocks differ), before the lowest
// live cursor, and never the newest change, so that the log's head is
// always a change that can be read. It records how far the log is pruned.
func prune(ctx context.Context, tx *Tx, now time.Time, p store.GCPolicy) (int, error) {
	var pruned, last int64
	if err := tx.QueryRowContext(ctx, `SELECT pruned_through, last_seq FROM change_log WHERE id = 1`).Scan(&pruned, &last); err != nil {
		return 0, err
	}
	to := min(last-1, pruned+store.GCBatch)
	var young sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT MIN(seq) FROM changes WHERE seq > ? AND seq <= ? AND at >= ?`,
		pruned, to, ms(now.Add(-p.Retention))).Scan(&young); err != nil {
		return 0, err
	}
	if young.Valid {
		to = young.Int64 - 1
	}
	cursorQuery, args := `SELECT MIN(seq) FROM cursors`, []any(nil)
	if p.StaleCursor > 0 {
		cursorQuery, args = `SELECT MIN(seq) FROM cursors WHERE updated_at > ?`, []any{ms(now.Add(-p.StaleCursor))}
	}
	var lowest sql.NullInt64
	if err := tx.QueryRowContext(ctx, cursorQuery, args...).Scan(&lowest); err != nil {
		return 0, err
	}
	if lowest.Valid {
		to = min(to, lowest.Int64)
	}
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
