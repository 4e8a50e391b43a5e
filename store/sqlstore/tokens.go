package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/pairgate/pairgate/store"
)

const tokenCols = `id, name, scope, hash, created_at, created_by, revoked_at`

func scanToken(row scanner) (store.APIToken, error) {
	var t store.APIToken
	var created int64
	var revoked sql.NullInt64
	var scope string
	err := row.Scan(&t.ID, &t.Name, &scope, &t.Hash, &created, &t.CreatedBy, &revoked)
	t.Scope, t.CreatedAt, t.RevokedAt = store.TokenScope(scope), fromMS(created), fromNullMS(revoked)
	return t, err
}

func tokenChange(kind store.ChangeKind, t store.APIToken, actor store.Actor, at time.Time) store.Change {
	return store.Change{At: at, Kind: kind, Actor: actor,
		Detail: "token " + t.ID + " (" + t.Name + ", " + string(t.Scope) + ")", Data: store.ChangeData{TokenScope: t.Scope}}
}

// CreateToken implements store.Store.
func (s *Store) CreateToken(ctx context.Context, t store.APIToken, actor store.Actor) error {
	return s.write(ctx, "create API token", func(tx *Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO api_tokens (`+tokenCols+`) VALUES (?, ?, ?, ?, ?, ?, NULL)`,
			t.ID, t.Name, string(t.Scope), t.Hash, ms(t.CreatedAt), t.CreatedBy); err != nil {
			return err
		}
		return appendChange(ctx, tx, tokenChange(store.KindTokenCreated, t, actor, t.CreatedAt))
	})
}

// ListTokens implements store.Store.
func (s *Store) ListTokens(ctx context.Context, includeRevoked bool) ([]store.APIToken, error) {
	where := "revoked_at IS NULL"
	if includeRevoked {
		where = "TRUE"
	}
	return list(ctx, s, "list API tokens", "api_tokens", `SELECT `+tokenCols+` FROM api_tokens WHERE `+where+` ORDER BY created_at, id`, scanToken)
}

// RevokeToken implements store.Store.
func (s *Store) RevokeToken(ctx context.Context, id string, actor store.Actor, now time.Time) (store.APIToken, error) {
	var t store.APIToken
	err := s.write(ctx, "revoke API token", func(tx *Tx) error {
		var err error
		t, err = scanToken(tx.QueryRowContext(ctx, `UPDATE api_tokens SET revoked_at = ?
			WHERE id = ? AND revoked_at IS NULL RETURNING `+tokenCols, ms(now), id))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("no active API token %q: %w", id, store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		return appendChange(ctx, tx, tokenChange(store.KindTokenRevoked, t, actor, now))
	})
	return t, err
}
