package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/pairgate/pairgate/store"
)

// Outbound messages are a log of their own, numbered like the change log
// (a counter row taken inside the writing transaction, under the engine's
// write lock): no gaps, committed in order, so a gateway that passes the
// last seq it delivered never skips one. Appending one wakes the followers
// of the store (Changed, and NOTIFY on PostgreSQL) like a change does.

const outboundCols = `seq, at, channel, account, recipient, kind, text, png, parse_mode, template, ref, expires_at, cause`

// appendOutbound records msgs inside tx at now and returns them numbered.
func appendOutbound(ctx context.Context, tx *Tx, now time.Time, msgs []store.OutboundMessage) ([]store.OutboundMessage, error) {
	out := make([]store.OutboundMessage, 0, len(msgs))
	for _, m := range msgs {
		if err := checkOutbound(m); err != nil {
			return nil, err
		}
		if err := tx.QueryRowContext(ctx, `UPDATE outbound_log SET last_seq = last_seq + 1 WHERE id = 1 RETURNING last_seq`).Scan(&m.Seq); err != nil {
			return nil, fmt.Errorf("take an outbound sequence number: %w", err)
		}
		m.At = now
		var expires sql.NullInt64
		if !m.ExpiresAt.IsZero() {
			expires = sql.NullInt64{Int64: ms(m.ExpiresAt), Valid: true}
		}
		var png []byte
		if len(m.PNG) > 0 {
			png = m.PNG
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO outbound (`+outboundCols+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			m.Seq, ms(now), m.Channel, m.Account, m.To, string(m.Kind), m.Text, png, m.ParseMode,
			string(m.Template), m.Ref, expires, m.Cause); err != nil {
			return nil, err
		}
		m.At = fromMS(ms(now))
		m.ExpiresAt = fromNullMS(expires)
		out = append(out, m)
	}
	if len(out) > 0 && !tx.appended {
		tx.appended = true
		if err := tx.eng.Appended(ctx, tx); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// errBadOutbound marks a message the store refuses to record: a caller's
// mistake, which rolls the whole transaction back.
var errBadOutbound = errors.New("sqlstore: outbound message")

func checkOutbound(m store.OutboundMessage) error {
	switch {
	case m.Channel == "" || m.Account == "" || m.To == "":
		return fmt.Errorf("%w: channel, account and to are required", errBadOutbound)
	case m.Kind != store.OutboundText && m.Kind != store.OutboundImage:
		return fmt.Errorf("%w: kind %q: want text or image", errBadOutbound, m.Kind)
	case m.Template != store.TemplateNone && m.Ref == "":
		return fmt.Errorf("%w: template %s without a ref", errBadOutbound, m.Template)
	case m.Cause == "":
		return fmt.Errorf("%w: a cause is required", errBadOutbound)
	}
	return nil
}

func scanOutbound(row scanner) (store.OutboundMessage, error) {
	var m store.OutboundMessage
	var at int64
	var expires sql.NullInt64
	var kind, template string
	if err := row.Scan(&m.Seq, &at, &m.Channel, &m.Account, &m.To, &kind, &m.Text, &m.PNG, &m.ParseMode,
		&template, &m.Ref, &expires, &m.Cause); err != nil {
		return m, err
	}
	m.At, m.ExpiresAt = fromMS(at), fromNullMS(expires)
	m.Kind, m.Template = store.OutboundKind(kind), store.OutboundTemplate(template)
	return m, nil
}

// AppendOutbound implements store.Store.
func (s *Store) AppendOutbound(ctx context.Context, msgs []store.OutboundMessage, now time.Time) ([]store.OutboundMessage, error) {
	var out []store.OutboundMessage
	err := s.write(ctx, "record outbound messages", func(tx *Tx) error {
		var err error
		out, err = appendOutbound(ctx, tx, now, msgs)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Outbound implements store.Store.
func (s *Store) Outbound(ctx context.Context, after int64, limit int) ([]store.OutboundMessage, error) {
	if limit < 1 {
		return nil, fmt.Errorf("read outbound messages: limit %d: want at least 1", limit)
	}
	return list(ctx, s, "read outbound messages", "outbound",
		`SELECT `+outboundCols+` FROM outbound WHERE seq > ? ORDER BY seq LIMIT ?`, scanOutbound, after, limit)
}

// OutboundHead implements store.Store.
func (s *Store) OutboundHead(ctx context.Context) (int64, error) {
	var seq int64
	if err := s.queryRow(ctx, `SELECT last_seq FROM outbound_log WHERE id = 1`).Scan(&seq); err != nil {
		return 0, s.fail("read outbound head", err)
	}
	return seq, nil
}

// OutboundCursor implements store.Store.
func (s *Store) OutboundCursor(ctx context.Context, name string) (int64, bool, error) {
	return s.cursor(ctx, "outbound_cursors", name)
}

// SetOutboundCursor implements store.Store.
func (s *Store) SetOutboundCursor(ctx context.Context, name string, seq int64, now time.Time) error {
	return s.setCursor(ctx, "outbound_cursors", name, seq, now)
}
