package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/pairgate/pairgate/store"
)

const requestCols = `id, channel, account, sender, name, code_hash, created_at, expires_at, last_sent_at`

func scanRequest(row scanner) (store.Request, error) {
	var r store.Request
	var created, expires, sent int64
	err := row.Scan(&r.ID, &r.Scope.Channel, &r.Scope.Account, &r.Sender, &r.Name, &r.CodeHash, &created, &expires, &sent)
	r.CreatedAt, r.ExpiresAt, r.LastSentAt = fromMS(created), fromMS(expires), fromMS(sent)
	return r, err
}

// deleteRequests deletes the requests matched by where and returns them.
func deleteRequests(ctx context.Context, tx *Tx, where string, args ...any) ([]store.Request, error) {
	rows, err := tx.QueryContext(ctx, `DELETE FROM requests WHERE `+where+` RETURNING `+requestCols, args...)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanRequest)
}

// expire deletes the requests matched by cond that are expired at now and
// records KindExpired for each.
func expire(ctx context.Context, tx *Tx, now time.Time, cond string, args ...any) (int, error) {
	gone, err := deleteRequests(ctx, tx, `expires_at <= ? AND `+cond, append([]any{ms(now)}, args...)...)
	if err != nil {
		return 0, err
	}
	for _, r := range gone {
		err := appendChange(ctx, tx, store.Change{At: now, Kind: store.KindExpired, Scope: r.Scope, Sender: r.Sender,
			RequestID: r.ID, Actor: store.Actor{Name: "pairgate", Source: "expiry"}})
		if err != nil {
			return 0, err
		}
	}
	return len(gone), nil
}

// CreateRequest implements store.Store.
func (s *Store) CreateRequest(ctx context.Context, p store.CreateRequestParams) (store.Request, error) {
	r := p.Request
	r.CreatedAt = fromMS(ms(r.CreatedAt))
	r.ExpiresAt = fromMS(ms(r.ExpiresAt))
	if r.LastSentAt = fromMS(ms(r.LastSentAt)); r.LastSentAt.Before(r.CreatedAt) {
		r.LastSentAt = r.CreatedAt
	}
	now := r.CreatedAt
	var existing store.Request
	err := s.write(ctx, "create pairing request", func(tx *Tx) error {
		if _, err := expire(ctx, tx, now, `channel = ? AND account = ?`, r.Scope.Channel, r.Scope.Account); err != nil {
			return err
		}
		// One statement for the allow entry and the scope's count; the
		// count stops at the cap, so its work is bounded by MaxPending.
		var allowed bool
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT
			EXISTS (SELECT 1 FROM allowed WHERE channel = ? AND account = ? AND sender = ? AND revoked_at IS NULL),
			(SELECT COUNT(*) FROM (SELECT 1 FROM requests WHERE channel = ? AND account = ? LIMIT ?) AS capped)`,
			r.Scope.Channel, r.Scope.Account, r.Sender, r.Scope.Channel, r.Scope.Account, p.MaxPending).Scan(&allowed, &n); err != nil {
			return err
		}
		if allowed {
			return store.ErrAllowed
		}
		pending := func() error {
			var err error
			existing, err = scanRequest(tx.QueryRowContext(ctx, `SELECT `+requestCols+` FROM requests
				WHERE channel = ? AND account = ? AND sender = ?`, r.Scope.Channel, r.Scope.Account, r.Sender))
			if err == nil {
				return store.ErrPending
			}
			if errors.Is(err, sql.ErrNoRows) {
				return nil
			}
			return err
		}
		if n >= p.MaxPending {
			// The sender's own request counts towards the cap: a sender
			// who has one hears of it, not of the cap.
			if err := pending(); err != nil {
				return err
			}
			return fmt.Errorf("%d of %d pending on %s: %w", n, p.MaxPending, r.Scope, store.ErrCapReached)
		}
		// The unique indexes on the sender and on the code hash decide the
		// rest in the insert itself: the common case is one statement, and
		// only a conflict costs the reads that say which it was.
		inserted, err := insertRequest(ctx, tx, r)
		if err != nil || !inserted {
			if err == nil {
				err = pending()
			}
			if err != nil {
				return err
			}
			// The code's holder: a live request (a conflict), or an
			// expired one of another scope, which goes now.
			gone, err := expire(ctx, tx, now, `code_hash = ?`, r.CodeHash)
			if err != nil {
				return err
			}
			if gone == 0 {
				return store.ErrCodeConflict
			}
			if inserted, err = insertRequest(ctx, tx, r); err != nil {
				return err
			}
			if !inserted {
				return store.ErrCodeConflict
			}
		}
		if _, err := appendOutbound(ctx, tx, now, p.Outbound); err != nil {
			return err
		}
		return appendChange(ctx, tx, store.Change{At: now, Kind: store.KindRequested, Scope: r.Scope,
			Sender: r.Sender, RequestID: r.ID, Actor: p.Actor,
			Data: store.ChangeData{Name: r.Name, Expires: ms(r.ExpiresAt)}})
	})
	if errors.Is(err, store.ErrPending) {
		return existing, err
	}
	if err != nil {
		return store.Request{}, err
	}
	return r, nil
}

// insertRequest inserts r unless it conflicts with a request of the same
// sender or code hash (the unique indexes), and reports whether it did.
func insertRequest(ctx context.Context, tx *Tx, r store.Request) (bool, error) {
	res, err := tx.ExecContext(ctx, `INSERT INTO requests (`+requestCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT DO NOTHING`,
		r.ID, r.Scope.Channel, r.Scope.Account, r.Sender, r.Name, r.CodeHash,
		ms(r.CreatedAt), ms(r.ExpiresAt), ms(r.LastSentAt))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// PendingFor implements store.Store.
func (s *Store) PendingFor(ctx context.Context, scope store.Scope, sender string, now time.Time, limit int) (store.Request, bool, int, error) {
	tx, err := s.readTx(ctx)
	if err != nil {
		return store.Request{}, false, 0, s.fail("read pending", err)
	}
	defer tx.Rollback()
	r, err := scanRequest(tx.QueryRowContext(ctx, `SELECT `+requestCols+` FROM requests
		WHERE channel = ? AND account = ? AND sender = ? AND expires_at > ?`, scope.Channel, scope.Account, sender, ms(now)))
	found := err == nil
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return store.Request{}, false, 0, s.fail("read pending", err)
	}
	var live int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM
		(SELECT 1 FROM requests WHERE channel = ? AND account = ? AND expires_at > ? LIMIT ?) AS capped`,
		scope.Channel, scope.Account, ms(now), limit).Scan(&live); err != nil {
		return store.Request{}, false, 0, s.fail("read pending", err)
	}
	if !found {
		r = store.Request{}
	}
	return r, found, live, nil
}

// GateState implements store.Store: one prepared statement instead of the
// four reads (three round trips, two statements compiled on every call)
// that LockedUntil, DeclinedSince and PendingFor make.
func (s *Store) GateState(ctx context.Context, scope store.Scope, sender string, now, declinedSince time.Time, limit int) (store.GateState, error) {
	var g store.GateState
	var until int64
	var declines int
	var id, channel, account, rsender, name sql.NullString
	var code []byte
	var created, expires, sent sql.NullInt64
	err := s.queryRow(ctx, `SELECT
		COALESCE((SELECT until FROM lockouts WHERE channel = ? AND account = ? AND until > ?), 0),
		(SELECT COUNT(*) FROM declines WHERE channel = ? AND account = ? AND sender = ? AND declined_at >= ?),
		(SELECT COUNT(*) FROM (SELECT 1 FROM requests WHERE channel = ? AND account = ? AND expires_at > ? LIMIT ?) AS capped),
		r.id, r.channel, r.account, r.sender, r.name, r.code_hash, r.created_at, r.expires_at, r.last_sent_at
		FROM (SELECT 1 AS one) AS o LEFT JOIN requests AS r
			ON r.channel = ? AND r.account = ? AND r.sender = ? AND r.expires_at > ?`,
		scope.Channel, scope.Account, ms(now),
		scope.Channel, scope.Account, sender, ms(declinedSince),
		scope.Channel, scope.Account, ms(now), limit,
		scope.Channel, scope.Account, sender, ms(now)).Scan(&until, &declines, &g.Live,
		&id, &channel, &account, &rsender, &name, &code, &created, &expires, &sent)
	if err != nil {
		return store.GateState{}, s.fail("read gate state", err)
	}
	if until > 0 {
		g.LockedUntil = fromMS(until)
	}
	g.Declined = declines > 0
	if id.Valid {
		g.Found = true
		g.Request = store.Request{ID: id.String, Scope: store.Scope{Channel: channel.String, Account: account.String}, Sender: rsender.String,
			Name: name.String, CodeHash: code, CreatedAt: fromMS(created.Int64), ExpiresAt: fromMS(expires.Int64), LastSentAt: fromMS(sent.Int64)}
	}
	return g, nil
}

// MarkRequestSent implements store.Store.
func (s *Store) MarkRequestSent(ctx context.Context, id string, notAfter, now time.Time, out ...store.OutboundMessage) (bool, error) {
	var n int64
	err := s.write(ctx, "mark request sent", func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE requests SET last_sent_at = ?
			WHERE id = ? AND last_sent_at <= ? AND expires_at > ?`, ms(now), id, ms(notAfter), ms(now))
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil || n != 1 {
			return err
		}
		_, err = appendOutbound(ctx, tx, now, out)
		return err
	})
	return n == 1, err
}

// ListRequests implements store.Store.
func (s *Store) ListRequests(ctx context.Context, f store.RequestFilter, now time.Time) ([]store.Request, error) {
	where, args := filterSQL(f)
	return list(ctx, s, "list requests", "requests", `SELECT `+requestCols+` FROM requests WHERE `+where+
		` AND expires_at > ? ORDER BY created_at, id`, scanRequest, append(args, ms(now))...)
}

// takeRequest deletes and returns the live request matched by code hash or
// id. DELETE … RETURNING finds and removes in one statement, so a request
// can be taken once.
func takeRequest(ctx context.Context, tx *Tx, p store.ApproveParams) (store.Request, error) {
	match, key := "id = ?", any(p.RequestID)
	if p.RequestID == "" {
		match, key = "code_hash = ?", any(p.CodeHash)
	}
	if p.RequestID == "" && len(p.CodeHash) == 0 {
		return store.Request{}, fmt.Errorf("neither code nor request id given: %w", store.ErrNotFound)
	}
	r, err := scanRequest(tx.QueryRowContext(ctx, `DELETE FROM requests
		WHERE channel = ? AND account = ? AND `+match+` AND expires_at > ? RETURNING `+requestCols,
		p.Scope.Channel, p.Scope.Account, key, ms(p.Now)))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Request{}, fmt.Errorf("no live pairing request on %s matches: %w", p.Scope, store.ErrNotFound)
	}
	return r, err
}

// approvedRequest returns the request of the scope matched by code hash or
// id that was approved and is still within its lifetime, or ErrNotFound.
func approvedRequest(ctx context.Context, tx *Tx, p store.ApproveParams) (store.Request, error) {
	match, key := "id = ?", any(p.RequestID)
	if p.RequestID == "" {
		match, key = "code_hash = ?", any(p.CodeHash)
	}
	r, err := scanRequest(tx.QueryRowContext(ctx, `SELECT `+requestCols+` FROM approvals
		WHERE channel = ? AND account = ? AND `+match+` AND expires_at > ? ORDER BY approved_at DESC LIMIT 1`,
		p.Scope.Channel, p.Scope.Account, key, ms(p.Now)))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Request{}, fmt.Errorf("no live pairing request on %s matches: %w", p.Scope, store.ErrNotFound)
	}
	return r, err
}

// FindApproved implements store.Store.
func (s *Store) FindApproved(ctx context.Context, codeHash []byte, id string, now time.Time) (store.Request, error) {
	match, key := "id = ?", any(id)
	if codeHash != nil {
		match, key = "code_hash = ?", any(codeHash)
	}
	r, err := scanRequest(s.queryRow(ctx, `SELECT `+requestCols+` FROM approvals
		WHERE `+match+` AND expires_at > ? ORDER BY approved_at DESC LIMIT 1`, key, ms(now)))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Request{}, fmt.Errorf("no request approved within its lifetime matches: %w", store.ErrNotFound)
	}
	if err != nil {
		return store.Request{}, s.fail("find approved request", err)
	}
	return r, nil
}

// takeOrApproved is takeRequest, except that a request approved within its
// lifetime is returned with ErrAlreadyApproved.
func takeOrApproved(ctx context.Context, tx *Tx, p store.ApproveParams) (store.Request, error) {
	r, err := takeRequest(ctx, tx, p)
	if !errors.Is(err, store.ErrNotFound) || (p.RequestID == "" && len(p.CodeHash) == 0) {
		return r, err
	}
	if r, err = approvedRequest(ctx, tx, p); err != nil {
		return store.Request{}, err
	}
	return r, fmt.Errorf("request %s on %s: %w", r.ID, p.Scope, store.ErrAlreadyApproved)
}

// Approve implements store.Store.
func (s *Store) Approve(ctx context.Context, p store.ApproveParams) (store.Approved, error) {
	var req store.Request
	var entry store.AllowEntry
	var seq int64
	err := s.write(ctx, "approve", func(tx *Tx) error {
		if err := lockedErr(ctx, tx, p.Scope, p.Now); err != nil {
			return err
		}
		var err error
		req, err = takeOrApproved(ctx, tx, p)
		if errors.Is(err, store.ErrAlreadyApproved) {
			// Nothing changes: the caller learns the entry as it is now.
			e, eerr := scanAllowed(tx.QueryRowContext(ctx, `SELECT `+allowCols+` FROM allowed
				WHERE channel = ? AND account = ? AND sender = ?`, p.Scope.Channel, p.Scope.Account, req.Sender))
			if eerr != nil {
				return eerr
			}
			entry = e
			return err
		}
		if err != nil {
			return err
		}
		via := store.ViaCode
		if p.RequestID != "" {
			via = store.ViaRequest
		}
		entry = store.AllowEntry{Scope: p.Scope, Sender: req.Sender, Name: req.Name,
			ApprovedAt: fromMS(ms(p.Now)), ApprovedBy: p.Actor.Name, Via: via}
		if err := upsertAllowed(ctx, tx, entry); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM declines WHERE channel = ? AND account = ? AND sender = ?`,
			p.Scope.Channel, p.Scope.Account, req.Sender); err != nil {
			return err
		}
		// Remembered until the code would have expired, so approving it
		// again is answered, not counted; expired ones go now (a bounded
		// range of the expiry index).
		if _, err := tx.ExecContext(ctx, `DELETE FROM approvals WHERE expires_at <= ?`, ms(p.Now)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO approvals (`+requestCols+`, approved_at, approved_by)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			req.ID, req.Scope.Channel, req.Scope.Account, req.Sender, req.Name, req.CodeHash,
			ms(req.CreatedAt), ms(req.ExpiresAt), ms(req.LastSentAt), ms(p.Now), p.Actor.Name); err != nil {
			return err
		}
		detail := "via " + string(via)
		if p.Notify {
			detail += ", notify"
		}
		if err := appendFor(ctx, tx, p, req); err != nil {
			return err
		}
		err = appendChange(ctx, tx, store.Change{At: p.Now, Kind: store.KindApproved, Scope: p.Scope,
			Sender: req.Sender, RequestID: req.ID, Actor: p.Actor, Detail: detail,
			Data: store.ChangeData{Via: via, Notify: p.Notify}})
		seq = tx.seq
		return err
	})
	if errors.Is(err, store.ErrAlreadyApproved) {
		return store.Approved{Request: req, Entry: entry}, err
	}
	if err != nil {
		return store.Approved{}, err
	}
	return store.Approved{Request: req, Entry: entry, Seq: seq}, nil
}

func upsertAllowed(ctx context.Context, tx *Tx, e store.AllowEntry) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO allowed
		(channel, account, sender, name, approved_at, approved_by, via, revoked_at, revoked_by)
		VALUES (?, ?, ?, ?, ?, ?, ?, NULL, '')
		ON CONFLICT (channel, account, sender) DO UPDATE SET
			name = CASE WHEN excluded.name = '' THEN allowed.name ELSE excluded.name END,
			approved_at = excluded.approved_at, approved_by = excluded.approved_by,
			via = excluded.via, revoked_at = NULL, revoked_by = ''`,
		e.Scope.Channel, e.Scope.Account, e.Sender, e.Name, ms(e.ApprovedAt), e.ApprovedBy, string(e.Via))
	return err
}

func lockedErr(ctx context.Context, tx *Tx, scope store.Scope, now time.Time) error {
	var until int64
	var failures int
	err := tx.QueryRowContext(ctx, `SELECT until, failures FROM lockouts WHERE channel = ? AND account = ? AND until > ?`,
		scope.Channel, scope.Account, ms(now)).Scan(&until, &failures)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	return &store.LockoutError{Scope: scope, Until: fromMS(until), Failures: failures}
}

// appendFor records the messages p.Outbound makes for req.
func appendFor(ctx context.Context, tx *Tx, p store.ApproveParams, req store.Request) error {
	if p.Outbound == nil {
		return nil
	}
	_, err := appendOutbound(ctx, tx, p.Now, p.Outbound(req))
	return err
}

// Reject implements store.Store.
func (s *Store) Reject(ctx context.Context, p store.ApproveParams) (store.Request, error) {
	var req store.Request
	err := s.write(ctx, "reject", func(tx *Tx) error {
		var err error
		if req, err = takeOrApproved(ctx, tx, p); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO declines (channel, account, sender, declined_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (channel, account, sender) DO UPDATE SET declined_at = excluded.declined_at`,
			p.Scope.Channel, p.Scope.Account, req.Sender, ms(p.Now)); err != nil {
			return err
		}
		if err := appendFor(ctx, tx, p, req); err != nil {
			return err
		}
		return appendChange(ctx, tx, store.Change{At: p.Now, Kind: store.KindRejected, Scope: p.Scope,
			Sender: req.Sender, RequestID: req.ID, Actor: p.Actor})
	})
	if errors.Is(err, store.ErrAlreadyApproved) {
		return req, err
	}
	if err != nil {
		return store.Request{}, err
	}
	return req, nil
}

// ClearRequests implements store.Store.
func (s *Store) ClearRequests(ctx context.Context, f store.RequestFilter, actor store.Actor, now time.Time) (int, error) {
	where, args := filterSQL(f)
	n := 0
	err := s.write(ctx, "clear pending requests", func(tx *Tx) error {
		n = 0
		gone, err := deleteRequests(ctx, tx, where, args...)
		if err != nil {
			return err
		}
		for _, r := range gone {
			kind := store.KindCleared
			if !r.ExpiresAt.After(now) {
				kind = store.KindExpired
			} else {
				n++
			}
			if err := appendChange(ctx, tx, store.Change{At: now, Kind: kind, Scope: r.Scope, Sender: r.Sender,
				RequestID: r.ID, Actor: actor}); err != nil {
				return err
			}
		}
		return nil
	})
	return n, err
}

// ExpireRequests implements store.Store.
func (s *Store) ExpireRequests(ctx context.Context, now time.Time) (int, error) {
	n := 0
	err := s.write(ctx, "expire requests", func(tx *Tx) error {
		var err error
		if n, err = expire(ctx, tx, now, "TRUE"); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM approvals WHERE expires_at <= ?`, ms(now))
		return err
	})
	return n, err
}

const allowCols = `channel, account, sender, name, approved_at, approved_by, via, revoked_at, revoked_by`

func scanAllowed(row scanner) (store.AllowEntry, error) {
	var e store.AllowEntry
	var approved int64
	var revoked sql.NullInt64
	var via string
	err := row.Scan(&e.Scope.Channel, &e.Scope.Account, &e.Sender, &e.Name, &approved, &e.ApprovedBy, &via, &revoked, &e.RevokedBy)
	e.ApprovedAt, e.RevokedAt, e.Via = fromMS(approved), fromNullMS(revoked), store.Via(via)
	return e, err
}

// Allow implements store.Store.
func (s *Store) Allow(ctx context.Context, p store.AllowParams) ([]store.AllowResult, error) {
	if len(p.Senders) == 0 {
		return nil, fmt.Errorf("allow on %s: no sender given", p.Scope)
	}
	var out []store.AllowResult
	err := s.write(ctx, "allow", func(tx *Tx) error {
		out = make([]store.AllowResult, 0, len(p.Senders))
		for _, a := range p.Senders {
			r, err := allowOne(ctx, tx, p, a)
			if err != nil {
				return err
			}
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func allowOne(ctx context.Context, tx *Tx, p store.AllowParams, a store.AllowSender) (store.AllowResult, error) {
	cur, err := scanAllowed(tx.QueryRowContext(ctx, `SELECT `+allowCols+` FROM allowed
		WHERE channel = ? AND account = ? AND sender = ?`, p.Scope.Channel, p.Scope.Account, a.Sender))
	if err == nil && (cur.Active() || p.KeepRevoked || a.Revoked) {
		return store.AllowResult{Entry: cur}, nil
	}
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return store.AllowResult{}, err
	}
	entry := store.AllowEntry{Scope: p.Scope, Sender: a.Sender, Name: a.Name,
		ApprovedAt: fromMS(ms(p.Now)), ApprovedBy: p.Actor.Name, Via: p.Via}
	if entry.Name == "" {
		entry.Name = cur.Name
	}
	if a.Revoked {
		entry.RevokedAt, entry.RevokedBy = entry.ApprovedAt, p.Actor.Name
		err := insertRevoked(ctx, tx, entry)
		if err == nil {
			err = appendChange(ctx, tx, store.Change{At: p.Now, Kind: store.KindRevoked, Scope: p.Scope,
				Sender: a.Sender, Actor: p.Actor, Detail: "via " + string(p.Via) + ", revoked in its source", Data: store.ChangeData{Via: p.Via}})
		}
		return store.AllowResult{Entry: entry, Changed: true}, err
	}
	if err := upsertAllowed(ctx, tx, entry); err != nil {
		return store.AllowResult{}, err
	}
	var stale string
	err = tx.QueryRowContext(ctx, `DELETE FROM requests WHERE channel = ? AND account = ? AND sender = ? RETURNING id`,
		p.Scope.Channel, p.Scope.Account, a.Sender).Scan(&stale)
	if err == nil {
		if err := appendChange(ctx, tx, store.Change{At: p.Now, Kind: store.KindCleared, Scope: p.Scope,
			Sender: a.Sender, RequestID: stale, Actor: p.Actor, Detail: "sender allowed"}); err != nil {
			return store.AllowResult{}, err
		}
	} else if !errors.Is(err, sql.ErrNoRows) {
		return store.AllowResult{}, err
	}
	err = appendChange(ctx, tx, store.Change{At: p.Now, Kind: store.KindAllowed, Scope: p.Scope,
		Sender: a.Sender, Actor: p.Actor, Detail: "via " + string(p.Via), Data: store.ChangeData{Via: p.Via}})
	return store.AllowResult{Entry: entry, Changed: true}, err
}

// insertRevoked writes an entry that is revoked from the start (see
// store.AllowSender.Revoked).
func insertRevoked(ctx context.Context, tx *Tx, e store.AllowEntry) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO allowed
		(channel, account, sender, name, approved_at, approved_by, via, revoked_at, revoked_by)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.Scope.Channel, e.Scope.Account, e.Sender, e.Name, ms(e.ApprovedAt), e.ApprovedBy, string(e.Via), ms(e.RevokedAt), e.RevokedBy)
	return err
}

// Revoke implements store.Store.
func (s *Store) Revoke(ctx context.Context, scope store.Scope, sender string, actor store.Actor, now time.Time, out ...store.OutboundMessage) (store.AllowEntry, error) {
	var entry store.AllowEntry
	err := s.write(ctx, "revoke", func(tx *Tx) error {
		var err error
		entry, err = scanAllowed(tx.QueryRowContext(ctx, `UPDATE allowed SET revoked_at = ?, revoked_by = ?
			WHERE channel = ? AND account = ? AND sender = ? AND revoked_at IS NULL RETURNING `+allowCols,
			ms(now), actor.Name, scope.Channel, scope.Account, sender))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%s is not on the allowlist of %s: %w", sender, scope, store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		if _, err := appendOutbound(ctx, tx, now, out); err != nil {
			return err
		}
		return appendChange(ctx, tx, store.Change{At: now, Kind: store.KindRevoked, Scope: scope,
			Sender: sender, Actor: actor})
	})
	if err != nil {
		return store.AllowEntry{}, err
	}
	return entry, nil
}

// ListAllowed implements store.Store.
func (s *Store) ListAllowed(ctx context.Context, f store.RequestFilter, includeRevoked bool) ([]store.AllowEntry, error) {
	where, args := filterSQL(f)
	if !includeRevoked {
		where += " AND revoked_at IS NULL"
	}
	return list(ctx, s, "list allowed", "allowed", `SELECT `+allowCols+` FROM allowed WHERE `+where+
		` ORDER BY channel, account, sender`, scanAllowed, args...)
}

// ScanAllowed implements store.Store. The read transaction pins one WAL
// snapshot, so the sequence number and the rows agree.
func (s *Store) ScanAllowed(ctx context.Context, fn func(store.Scope, string) error) (int64, error) {
	tx, err := s.readTx(ctx)
	if err != nil {
		return 0, s.fail("scan allowed", err)
	}
	defer tx.Rollback()
	if err := s.eng.CheckTable(ctx, tx, "scan allowed", "allowed"); err != nil {
		return 0, err
	}
	var seq int64
	// The counter, not MAX(seq): it is the log's position even when
	// retention has pruned the changes themselves.
	if err := tx.QueryRowContext(ctx, `SELECT last_seq FROM change_log WHERE id = 1`).Scan(&seq); err != nil {
		return 0, s.fail("scan allowed", err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT channel, account, sender FROM allowed WHERE revoked_at IS NULL ORDER BY channel, account`)
	if err != nil {
		return 0, s.fail("scan allowed", err)
	}
	defer rows.Close()
	// Rows come grouped by scope; reuse one Scope value per group so a
	// million entries do not carry a million copies of "telegram".
	var scope store.Scope
	var ch, acct, sender string
	for rows.Next() {
		if err := rows.Scan(&ch, &acct, &sender); err != nil {
			return 0, s.fail("scan allowed", err)
		}
		if ch != scope.Channel || acct != scope.Account {
			scope = store.Scope{Channel: ch, Account: acct}
		}
		if err := fn(scope, sender); err != nil {
			return 0, err
		}
	}
	if err := rows.Err(); err != nil {
		return 0, s.fail("scan allowed", err)
	}
	return seq, nil
}

// DeclinedSince implements store.Store.
func (s *Store) DeclinedSince(ctx context.Context, scope store.Scope, sender string, since time.Time) (bool, error) {
	var n int
	err := s.queryRow(ctx, `SELECT COUNT(*) FROM declines
		WHERE channel = ? AND account = ? AND sender = ? AND declined_at >= ?`,
		scope.Channel, scope.Account, sender, ms(since)).Scan(&n)
	return n > 0, s.fail("read declines", err)
}

// LockedUntil implements store.Store.
func (s *Store) LockedUntil(ctx context.Context, scope store.Scope, now time.Time) (time.Time, error) {
	var until int64
	err := s.queryRow(ctx, `SELECT until FROM lockouts WHERE channel = ? AND account = ? AND until > ?`,
		scope.Channel, scope.Account, ms(now)).Scan(&until)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, s.fail("read lockout", err)
	}
	return fromMS(until), nil
}

// RecordApprovalFailure implements store.Store.
func (s *Store) RecordApprovalFailure(ctx context.Context, scope store.Scope, actor store.Actor, now time.Time, p store.LockoutPolicy) (time.Time, error) {
	var until time.Time
	err := s.write(ctx, "record failed approval", func(tx *Tx) error {
		until = time.Time{}
		if _, err := tx.ExecContext(ctx, `INSERT INTO failures (channel, account, at) VALUES (?, ?, ?)`,
			scope.Channel, scope.Account, ms(now)); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM failures WHERE channel = ? AND account = ? AND at > ?`,
			scope.Channel, scope.Account, ms(now.Add(-p.Window))).Scan(&n); err != nil {
			return err
		}
		if err := appendChange(ctx, tx, store.Change{At: now, Kind: store.KindApproveFailed, Scope: scope, Actor: actor,
			Detail: "failure " + strconv.Itoa(n) + " of " + strconv.Itoa(p.MaxFailures),
			Data:   store.ChangeData{Failures: n, MaxFailures: p.MaxFailures}}); err != nil {
			return err
		}
		if n < p.MaxFailures {
			return nil
		}
		until = fromMS(ms(now.Add(p.LockFor)))
		if _, err := tx.ExecContext(ctx, `INSERT INTO lockouts (channel, account, until, failures) VALUES (?, ?, ?, ?)
			ON CONFLICT (channel, account) DO UPDATE SET until = excluded.until, failures = excluded.failures`,
			scope.Channel, scope.Account, ms(until), n); err != nil {
			return err
		}
		// The lock starts a new count: failures before it are spent.
		if _, err := tx.ExecContext(ctx, `DELETE FROM failures WHERE channel = ? AND account = ?`,
			scope.Channel, scope.Account); err != nil {
			return err
		}
		return appendChange(ctx, tx, store.Change{At: now, Kind: store.KindLockedOut, Scope: scope, Actor: actor,
			Detail: strconv.Itoa(n) + " failed approvals within " + p.Window.String() + ", locked for " + p.LockFor.String(),
			Data:   store.ChangeData{Failures: n, Until: ms(until)}})
	})
	return until, err
}

// Lockouts implements store.Store.
func (s *Store) Lockouts(ctx context.Context, f store.RequestFilter, now time.Time) ([]store.Lockout, error) {
	where, args := filterSQL(f)
	return list(ctx, s, "list lockouts", "lockouts", `SELECT channel, account, until, failures FROM lockouts WHERE `+where+
		` AND until > ? ORDER BY channel, account`, scanLockout, append(args, ms(now))...)
}

func scanLockout(row scanner) (store.Lockout, error) {
	var l store.Lockout
	var until int64
	err := row.Scan(&l.Scope.Channel, &l.Scope.Account, &until, &l.Failures)
	l.Until = fromMS(until)
	return l, err
}

// Unlock implements store.Store.
func (s *Store) Unlock(ctx context.Context, scope store.Scope, actor store.Actor, now time.Time) (store.Lockout, error) {
	var l store.Lockout
	err := s.write(ctx, "unlock approvals", func(tx *Tx) error {
		var err error
		l, err = scanLockout(tx.QueryRowContext(ctx, `DELETE FROM lockouts WHERE channel = ? AND account = ? AND until > ?
			RETURNING channel, account, until, failures`, scope.Channel, scope.Account, ms(now)))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("approvals on %s are not locked: %w", scope, store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM failures WHERE channel = ? AND account = ?`, scope.Channel, scope.Account); err != nil {
			return err
		}
		return appendChange(ctx, tx, store.Change{At: now, Kind: store.KindUnlocked, Scope: scope, Actor: actor,
			Detail: "lifted the lock until " + l.Until.Format(time.RFC3339) + " after " + strconv.Itoa(l.Failures) + " failed approvals",
			Data:   store.ChangeData{Failures: l.Failures, Until: ms(l.Until)}})
	})
	if err != nil {
		return store.Lockout{}, err
	}
	return l, nil
}

// MarkNotice implements store.Store.
func (s *Store) MarkNotice(ctx context.Context, scope store.Scope, sender, kind string, notAfter, now time.Time, out ...store.OutboundMessage) (bool, error) {
	// Most calls come from a sender who was told recently; answer those
	// from a read so a flood of messages does not take the write lock.
	var at int64
	err := s.queryRow(ctx, `SELECT at FROM notices WHERE channel = ? AND account = ? AND sender = ? AND kind = ?`,
		scope.Channel, scope.Account, sender, kind).Scan(&at)
	switch {
	case err == nil && at > ms(notAfter):
		return false, nil
	case err != nil && !errors.Is(err, sql.ErrNoRows):
		return false, s.fail("read notice", err)
	}
	var n int64
	err = s.write(ctx, "mark notice", func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO notices (channel, account, sender, kind, at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (channel, account, sender, kind) DO UPDATE SET at = excluded.at WHERE notices.at <= ?`,
			scope.Channel, scope.Account, sender, kind, ms(now), ms(notAfter))
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil || n != 1 {
			return err
		}
		_, err = appendOutbound(ctx, tx, now, out)
		return err
	})
	return n == 1, err
}
