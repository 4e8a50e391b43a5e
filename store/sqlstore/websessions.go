package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/pairgate/pairgate/store"
)

// Web sessions are bookkeeping, as leases are: they append no change, so
// every write here is writeQuiet.

const webSessionCols = `hash, kind, token_hash, created_at, expires_at, remote`

func scanWebSession(row scanner) (store.WebSession, error) {
	var w store.WebSession
	var kind string
	var created, expires int64
	err := row.Scan(&w.Hash, &kind, &w.TokenHash, &created, &expires, &w.Remote)
	w.Kind, w.CreatedAt, w.ExpiresAt = store.WebSessionKind(kind), fromMS(created), fromMS(expires)
	return w, err
}

// insertWebSession inserts w; a hash already stored fails on the primary
// key rather than replacing the row.
func insertWebSession(ctx context.Context, tx *Tx, w store.WebSession) error {
	// A session without a token is stored as NULL, not as an empty blob,
	// so it reads back as nil.
	var tokenHash any
	if len(w.TokenHash) > 0 {
		tokenHash = w.TokenHash
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO web_sessions (`+webSessionCols+`) VALUES (?, ?, ?, ?, ?, ?)`,
		w.Hash, string(w.Kind), tokenHash, ms(w.CreatedAt), ms(w.ExpiresAt), w.Remote)
	return err
}

// CreateWebSession implements store.Store.
func (s *Store) CreateWebSession(ctx context.Context, w store.WebSession) error {
	return s.writeQuiet(ctx, "create web session", func(tx *Tx) error {
		return insertWebSession(ctx, tx, w)
	})
}

// WebSession implements store.Store.
func (s *Store) WebSession(ctx context.Context, hash []byte, now time.Time) (store.WebSession, error) {
	w, err := scanWebSession(s.queryRow(ctx, `SELECT `+webSessionCols+` FROM web_sessions
		WHERE hash = ? AND kind = 'session' AND expires_at > ?`, hash, ms(now)))
	if errors.Is(err, sql.ErrNoRows) {
		return store.WebSession{}, fmt.Errorf("web session: %w", store.ErrNotFound)
	}
	if err != nil {
		return store.WebSession{}, s.fail("read web session", err)
	}
	return w, nil
}

// DeleteWebSession implements store.Store.
func (s *Store) DeleteWebSession(ctx context.Context, hash []byte) error {
	return s.writeQuiet(ctx, "delete web session", func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM web_sessions WHERE hash = ?`, hash)
		return err
	})
}

// RedeemWebLink implements store.Store. The conditional delete decides:
// under the write lock only one caller deletes the link, and a caller that
// deleted nothing stores nothing.
func (s *Store) RedeemWebLink(ctx context.Context, link []byte, w store.WebSession, now time.Time) error {
	return s.writeQuiet(ctx, "redeem sign-in link", func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM web_sessions WHERE hash = ? AND kind = 'link' AND expires_at > ?`, link, ms(now))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n != 1 {
			return fmt.Errorf("sign-in link: %w", store.ErrNotFound)
		}
		return insertWebSession(ctx, tx, w)
	})
}
