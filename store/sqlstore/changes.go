package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pairgate/pairgate/store"
)

// The change log is an outbox: every change is appended in the
// transaction that makes it, under a sequence number taken from a counter
// row in that same transaction. The counter is what makes the log safe to
// follow by position:
//   - numbers are handed out and committed in order (a writer holds the
//     engine's write lock from its first statement), so a follower reading
//     seq > after never skips a change that commits late;
//   - a transaction that rolls back takes its number back, so there are no
//     gaps;
//   - pruning old changes never resets the counter.
//
// change_log also remembers how far retention pruned (pruned_through): a
// follower asking for changes before that gets store.ErrCompacted.

const changeCols = `seq, at, kind, channel, account, sender, request_id, device_id, actor, source, detail, data`

// appendChange writes one record of the change log inside tx.
func appendChange(ctx context.Context, tx *Tx, c store.Change) error {
	var seq int64
	if err := tx.QueryRowContext(ctx, `UPDATE change_log SET last_seq = last_seq + 1 WHERE id = 1 RETURNING last_seq`).Scan(&seq); err != nil {
		return fmt.Errorf("take a sequence number: %w", err)
	}
	data, err := encodeData(c.Data)
	if err != nil {
		return err
	}
	if _, err = tx.ExecContext(ctx, `INSERT INTO changes
		(seq, at, kind, channel, account, sender, request_id, device_id, actor, source, detail, data)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		seq, ms(c.At), string(c.Kind), c.Scope.Channel, c.Scope.Account, c.Sender, c.RequestID, c.DeviceID,
		c.Actor.Name, c.Actor.Source, c.Detail, data); err != nil {
		return err
	}
	tx.seq = seq
	if !tx.appended {
		tx.appended = true
		return tx.eng.Appended(ctx, tx)
	}
	return nil
}

// encodeData writes a change's payload: "" for none.
func encodeData(d store.ChangeData) (string, error) {
	if d == (store.ChangeData{}) {
		return "", nil
	}
	d.Version = store.ChangeDataVersion
	b, err := json.Marshal(d)
	return string(b), err
}

func scanChange(row scanner) (store.Change, error) {
	var c store.Change
	var at int64
	var kind, data string
	if err := row.Scan(&c.Seq, &at, &kind, &c.Scope.Channel, &c.Scope.Account, &c.Sender, &c.RequestID, &c.DeviceID,
		&c.Actor.Name, &c.Actor.Source, &c.Detail, &data); err != nil {
		return c, err
	}
	c.At, c.Kind = fromMS(at), store.ChangeKind(kind)
	if data != "" {
		if err := json.Unmarshal([]byte(data), &c.Data); err != nil {
			return c, fmt.Errorf("change %d: payload: %w", c.Seq, err)
		}
	}
	return c, nil
}

// Changes implements store.Store. It reads the pruning mark and the
// changes in one snapshot, so a position pruned meanwhile is reported as
// such rather than as a silent gap.
func (s *Store) Changes(ctx context.Context, after int64, limit int) ([]store.Change, error) {
	tx, err := s.readTx(ctx)
	if err != nil {
		return nil, s.fail("read change log", err)
	}
	defer tx.Rollback()
	var pruned int64
	if err := tx.QueryRowContext(ctx, `SELECT pruned_through FROM change_log WHERE id = 1`).Scan(&pruned); err != nil {
		return nil, s.fail("read change log", err)
	}
	if after < pruned {
		return nil, fmt.Errorf("changes after %d: the log holds only those after %d: %w", after, pruned, store.ErrCompacted)
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+changeCols+` FROM changes WHERE seq > ? ORDER BY seq LIMIT ?`, after, limit)
	if err != nil {
		return nil, s.fail("read change log", err)
	}
	out, err := collect(rows, scanChange)
	return out, s.fail("read change log", err)
}

// RecentChanges implements store.Store. The query walks the seq primary
// key backwards from q.Before, skipping the changes a filter refuses, until
// q.Limit matched: unfiltered, that reads exactly q.Limit rows. There is no
// index per filter, on purpose: each would be written on every change
// appended, for a page an operator reads now and then. A filter that
// matches often stops early; a rare kind or actor reads the rest of the log
// once per page, which retention (90 days by default) keeps small. Should
// that become slow, an index on (kind, seq) is the one to add first.
func (s *Store) RecentChanges(ctx context.Context, q store.ChangeQuery) ([]store.Change, error) {
	if q.Limit < 1 {
		return nil, fmt.Errorf("read change log: limit %d: want at least 1", q.Limit)
	}
	if q.Before < 0 {
		return nil, fmt.Errorf("read change log: before %d: want 0 (the newest) or a sequence number", q.Before)
	}
	var conds []string
	var args []any
	if q.Before > 0 {
		conds = append(conds, "seq < ?")
		args = append(args, q.Before)
	}
	if q.Kind != "" {
		conds = append(conds, "kind = ?")
		args = append(args, string(q.Kind))
	}
	if q.Channel != "" {
		conds = append(conds, "channel = ?")
		args = append(args, q.Channel)
	}
	if q.Actor != "" {
		conds = append(conds, "actor = ?")
		args = append(args, q.Actor)
	}
	where := "TRUE"
	if len(conds) > 0 {
		where = strings.Join(conds, " AND ")
	}
	args = append(args, q.Limit)
	return list(ctx, s, "read change log", "", `SELECT `+changeCols+` FROM changes WHERE `+where+` ORDER BY seq DESC LIMIT ?`,
		scanChange, args...)
}

// Cursor implements store.Store.
func (s *Store) Cursor(ctx context.Context, name string) (int64, bool, error) {
	return s.cursor(ctx, "cursors", name)
}

// SetCursor implements store.Store. It appends no change and wakes no
// follower: a cursor is bookkeeping about the log, not a change to it.
// Setting the same position again refreshes it: the consumer is alive
// (StaleCursor).
func (s *Store) SetCursor(ctx context.Context, name string, seq int64, now time.Time) error {
	return s.setCursor(ctx, "cursors", name, seq, now)
}

// cursor and setCursor read and move a consumer's position in table
// (cursors for the change log, outbound_cursors for outbound messages).
func (s *Store) cursor(ctx context.Context, table, name string) (int64, bool, error) {
	var seq int64
	err := s.queryRow(ctx, `SELECT seq FROM `+table+` WHERE name = ?`, name).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, s.fail("read cursor "+name, err)
	}
	return seq, true, nil
}

func (s *Store) setCursor(ctx context.Context, table, name string, seq int64, now time.Time) error {
	return s.writeQuiet(ctx, "set cursor "+name, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO `+table+` (name, seq, updated_at) VALUES (?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET seq = excluded.seq, updated_at = excluded.updated_at
			WHERE `+table+`.seq <= excluded.seq`, name, seq, ms(now))
		return err
	})
}
