package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/pairgate/pairgate/store"
)

// SigningKeys implements store.Store.
func (s *Store) SigningKeys(ctx context.Context) ([]store.SigningKey, error) {
	return list(ctx, s, "list signing keys", "", `SELECT kid, created_at, retired_at FROM signing_keys
		ORDER BY retired_at IS NOT NULL, created_at DESC, kid`, func(row scanner) (store.SigningKey, error) {
		var k store.SigningKey
		var created int64
		var retired sql.NullInt64
		err := row.Scan(&k.KID, &created, &retired)
		k.CreatedAt, k.RetiredAt = fromMS(created), fromNullMS(retired)
		return k, err
	})
}

// RotateSigningKey implements store.Store.
func (s *Store) RotateSigningKey(ctx context.Context, k store.SigningKey, dropBefore time.Time, actor store.Actor) error {
	return s.write(ctx, "rotate signing key", func(tx *Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE signing_keys SET retired_at = ? WHERE retired_at IS NULL`, ms(k.CreatedAt)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM signing_keys WHERE retired_at <= ?`, ms(dropBefore)); err != nil {
			return err
		}
		// A number still kept (by a concurrent rotation, or not yet
		// dropped) inserts nothing: the caller takes the next one.
		res, err := tx.ExecContext(ctx, `INSERT INTO signing_keys (kid, created_at) VALUES (?, ?) ON CONFLICT (kid) DO NOTHING`, k.KID, ms(k.CreatedAt))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("setup-token key %d: %w", k.KID, store.ErrKeyInUse)
		}
		return appendChange(ctx, tx, store.Change{At: k.CreatedAt, Kind: store.KindKeyRotated, Actor: actor, Detail: fmt.Sprintf("kid %d", k.KID),
			Data: store.ChangeData{KID: int(k.KID)}})
	})
}

const setupTokenCols = `id, kid, role, scopes, label, url, created_at, expires_at, used_at`

// CreateSetupToken implements store.Store.
func (s *Store) CreateSetupToken(ctx context.Context, t store.SetupToken, purgeBefore time.Time, actor store.Actor, out ...store.OutboundMessage) error {
	detail := "role " + t.Role
	if t.Label != "" {
		detail += ", label " + t.Label
	}
	return s.write(ctx, "record setup code", func(tx *Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM setup_tokens WHERE expires_at <= ?`, ms(purgeBefore)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO setup_tokens (`+setupTokenCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)`,
			t.ID, t.KID, t.Role, scopesJSON(t.Scopes), t.Label, t.URL, ms(t.CreatedAt), ms(t.ExpiresAt)); err != nil {
			return err
		}
		if _, err := appendOutbound(ctx, tx, t.CreatedAt, out); err != nil {
			return err
		}
		return appendChange(ctx, tx, store.Change{At: t.CreatedAt, Kind: store.KindSetupIssued, Actor: actor, Detail: detail,
			Data: store.ChangeData{Role: t.Role, Label: t.Label, KID: int(t.KID)}})
	})
}

// GetSetupToken implements store.Store.
func (s *Store) GetSetupToken(ctx context.Context, id string) (store.SetupToken, error) {
	var t store.SetupToken
	var scopes string
	var created, expires int64
	var used sql.NullInt64
	err := s.queryRow(ctx, `SELECT `+setupTokenCols+` FROM setup_tokens WHERE id = ?`, id).
		Scan(&t.ID, &t.KID, &t.Role, &scopes, &t.Label, &t.URL, &created, &expires, &used)
	if errors.Is(err, sql.ErrNoRows) {
		return t, fmt.Errorf("setup token: %w", store.ErrNotFound)
	}
	if err != nil {
		return t, s.fail("read setup token", err)
	}
	t.CreatedAt, t.ExpiresAt, t.UsedAt = fromMS(created), fromMS(expires), fromNullMS(used)
	return t, s.fail("read setup token", json.Unmarshal([]byte(scopes), &t.Scopes))
}

const deviceRequestCols = `id, device_id, public_key, name, platform, role, scopes, label, check_code,
	created_at, expires_at, status, decided_at, decided_by, delivered, remote`

func scanDeviceRequest(row scanner) (store.DeviceRequest, error) {
	var r store.DeviceRequest
	var scopes, status string
	var created, expires int64
	var decided sql.NullInt64
	err := row.Scan(&r.ID, &r.DeviceID, &r.PublicKey, &r.Name, &r.Platform, &r.Role, &scopes, &r.Label, &r.CheckCode,
		&created, &expires, &status, &decided, &r.DecidedBy, &r.Delivered, &r.Remote)
	if err != nil {
		return r, err
	}
	r.CreatedAt, r.ExpiresAt, r.DecidedAt, r.Status = fromMS(created), fromMS(expires), fromNullMS(decided), store.DeviceStatus(status)
	return r, json.Unmarshal([]byte(scopes), &r.Scopes)
}

func scopesJSON(scopes []string) string {
	if scopes == nil {
		scopes = []string{}
	}
	b, _ := json.Marshal(scopes)
	return string(b)
}

// CreateDeviceRequest implements store.Store.
func (s *Store) CreateDeviceRequest(ctx context.Context, r store.DeviceRequest, tokenID string, actor store.Actor, out ...store.OutboundMessage) error {
	return s.write(ctx, "create device request", func(tx *Tx) error {
		// The conditional UPDATE is the single use: of concurrent callers
		// (in any process) exactly one finds used_at NULL.
		res, err := tx.ExecContext(ctx, `UPDATE setup_tokens SET used_at = ?
			WHERE id = ? AND used_at IS NULL AND expires_at > ?`, ms(r.CreatedAt), tokenID, ms(r.CreatedAt))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			return unusableToken(ctx, tx, tokenID)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO device_requests (`+deviceRequestCols+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', NULL, '', 0, ?)`,
			r.ID, r.DeviceID, r.PublicKey, r.Name, r.Platform, r.Role, scopesJSON(r.Scopes), r.Label, r.CheckCode,
			ms(r.CreatedAt), ms(r.ExpiresAt), r.Remote); err != nil {
			return err
		}
		if _, err := appendOutbound(ctx, tx, r.CreatedAt, out); err != nil {
			return err
		}
		return appendChange(ctx, tx, store.Change{At: r.CreatedAt, Kind: store.KindDeviceRequested, RequestID: r.ID,
			DeviceID: r.DeviceID, Actor: actor, Detail: r.Name + " (" + r.Platform + "), role " + r.Role,
			Data: store.ChangeData{Name: r.Name, Platform: r.Platform, Role: r.Role, Label: r.Label,
				Remote: r.Remote, CheckCode: r.CheckCode, Expires: ms(r.ExpiresAt)}})
	})
}

// unusableToken says why the setup token id could not be consumed.
func unusableToken(ctx context.Context, tx *Tx, id string) error {
	var used sql.NullInt64
	err := tx.QueryRowContext(ctx, `SELECT used_at FROM setup_tokens WHERE id = ?`, id).Scan(&used)
	switch {
	case err == nil && used.Valid:
		return fmt.Errorf("setup token: %w", store.ErrTokenUsed)
	case err == nil, errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("no live setup token with that id (it may have expired): %w", store.ErrNotFound)
	}
	return err
}

// GetDeviceRequest implements store.Store.
func (s *Store) GetDeviceRequest(ctx context.Context, id string) (store.DeviceRequest, error) {
	r, err := scanDeviceRequest(s.queryRow(ctx, `SELECT `+deviceRequestCols+` FROM device_requests WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("device request %s: %w", id, store.ErrNotFound)
	}
	return r, s.fail("read device request", err)
}

// ListDeviceRequests implements store.Store.
func (s *Store) ListDeviceRequests(ctx context.Context, now time.Time) ([]store.DeviceRequest, error) {
	return list(ctx, s, "list device requests", "device_requests", `SELECT `+deviceRequestCols+` FROM device_requests
		WHERE status = 'pending' AND expires_at > ? ORDER BY created_at, id`, scanDeviceRequest, ms(now))
}

// DecideDeviceRequest implements store.Store.
func (s *Store) DecideDeviceRequest(ctx context.Context, id string, approve bool, actor store.Actor, now time.Time, out ...store.OutboundMessage) (store.DeviceRequest, error) {
	status, kind := store.DeviceRejected, store.KindDeviceRejected
	if approve {
		status, kind = store.DeviceApproved, store.KindDeviceApproved
	}
	var r store.DeviceRequest
	err := s.write(ctx, "decide device request", func(tx *Tx) error {
		var err error
		r, err = scanDeviceRequest(tx.QueryRowContext(ctx, `UPDATE device_requests SET status = ?, decided_at = ?, decided_by = ?
			WHERE id = ? AND status = 'pending' AND expires_at > ? RETURNING `+deviceRequestCols,
			string(status), ms(now), actor.Name, id, ms(now)))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("no pending device request %s (it may have expired or been decided): %w", id, store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		if _, err := appendOutbound(ctx, tx, now, out); err != nil {
			return err
		}
		return appendChange(ctx, tx, store.Change{At: now, Kind: kind, RequestID: id, DeviceID: r.DeviceID, Actor: actor})
	})
	return r, err
}

const deviceCols = `device_id, public_key, name, platform, role, scopes, label, token_hash, request_id, paired_at, last_seen_at, revoked_at`

func scanDevice(row scanner) (store.Device, error) {
	var d store.Device
	var scopes string
	var paired, seen int64
	var revoked sql.NullInt64
	err := row.Scan(&d.DeviceID, &d.PublicKey, &d.Name, &d.Platform, &d.Role, &scopes, &d.Label, &d.TokenHash, &d.RequestID,
		&paired, &seen, &revoked)
	if err != nil {
		return d, err
	}
	d.PairedAt, d.LastSeenAt, d.RevokedAt = fromMS(paired), fromMS(seen), fromNullMS(revoked)
	return d, json.Unmarshal([]byte(scopes), &d.Scopes)
}

// DeliverDeviceToken implements store.Store.
func (s *Store) DeliverDeviceToken(ctx context.Context, requestID string, tokenHash []byte, now time.Time) (store.Device, error) {
	var d store.Device
	err := s.write(ctx, "deliver device token", func(tx *Tx) error {
		r, err := scanDeviceRequest(tx.QueryRowContext(ctx, `UPDATE device_requests SET delivered = 1
			WHERE id = ? AND status = 'approved' AND delivered = 0 RETURNING `+deviceRequestCols, requestID))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("device request %s is not approved or its token went out already: %w", requestID, store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		d, err = scanDevice(tx.QueryRowContext(ctx, `INSERT INTO devices (`+deviceCols+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)
			ON CONFLICT (device_id) DO UPDATE SET public_key = excluded.public_key, name = excluded.name,
				platform = excluded.platform, role = excluded.role, scopes = excluded.scopes, label = excluded.label,
				token_hash = excluded.token_hash, request_id = excluded.request_id,
				paired_at = excluded.paired_at, last_seen_at = excluded.last_seen_at, revoked_at = NULL
			RETURNING `+deviceCols,
			r.DeviceID, r.PublicKey, r.Name, r.Platform, r.Role, scopesJSON(r.Scopes), r.Label, tokenHash, r.ID, ms(now), ms(now)))
		if err != nil {
			return err
		}
		return appendChange(ctx, tx, store.Change{At: now, Kind: store.KindDevicePaired, RequestID: r.ID, DeviceID: r.DeviceID,
			Actor: store.Actor{Name: "device", Source: "pair"}})
	})
	return d, err
}

// GetDevice implements store.Store.
func (s *Store) GetDevice(ctx context.Context, deviceID string) (store.Device, error) {
	d, err := scanDevice(s.queryRow(ctx, `SELECT `+deviceCols+` FROM devices WHERE device_id = ?`, deviceID))
	if errors.Is(err, sql.ErrNoRows) {
		return d, fmt.Errorf("device %s: %w", deviceID, store.ErrNotFound)
	}
	return d, s.fail("read device", err)
}

// ListDevices implements store.Store.
func (s *Store) ListDevices(ctx context.Context) ([]store.Device, error) {
	return list(ctx, s, "list devices", "devices", `SELECT `+deviceCols+` FROM devices ORDER BY paired_at, device_id`, scanDevice)
}

// updateDevice runs one UPDATE … RETURNING on an active device and records
// kind.
func (s *Store) updateDevice(ctx context.Context, what string, kind store.ChangeKind, deviceID string, actor store.Actor, now time.Time, set string, args ...any) (store.Device, error) {
	var d store.Device
	err := s.write(ctx, what, func(tx *Tx) error {
		var err error
		d, err = scanDevice(tx.QueryRowContext(ctx, `UPDATE devices SET `+set+`
			WHERE device_id = ? AND revoked_at IS NULL RETURNING `+deviceCols, append(args, deviceID)...))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("no active device %s: %w", deviceID, store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		return appendChange(ctx, tx, store.Change{At: now, Kind: kind, DeviceID: deviceID, RequestID: d.RequestID, Actor: actor})
	})
	return d, err
}

// RotateDeviceToken implements store.Store.
func (s *Store) RotateDeviceToken(ctx context.Context, deviceID string, tokenHash []byte, actor store.Actor, now time.Time) (store.Device, error) {
	return s.updateDevice(ctx, "rotate device token", store.KindDeviceRotated, deviceID, actor, now, `token_hash = ?`, tokenHash)
}

// RevokeDevice implements store.Store.
func (s *Store) RevokeDevice(ctx context.Context, deviceID string, actor store.Actor, now time.Time) (store.Device, error) {
	return s.updateDevice(ctx, "revoke device", store.KindDeviceRevoked, deviceID, actor, now, `revoked_at = ?`, ms(now))
}

// RemoveDevice implements store.Store.
func (s *Store) RemoveDevice(ctx context.Context, deviceID string, actor store.Actor, now time.Time) error {
	return s.write(ctx, "remove device", func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM devices WHERE device_id = ?`, deviceID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("device %s: %w", deviceID, store.ErrNotFound)
		}
		return appendChange(ctx, tx, store.Change{At: now, Kind: store.KindDeviceRemoved, DeviceID: deviceID, Actor: actor})
	})
}

// TouchDevice implements store.Store.
func (s *Store) TouchDevice(ctx context.Context, deviceID string, now time.Time) error {
	return s.write(ctx, "touch device", func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE devices SET last_seen_at = ? WHERE device_id = ?`, ms(now), deviceID)
		return err
	})
}
