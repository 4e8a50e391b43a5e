package importer

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/pairgate/pairgate/channel"
)

// Nexo reads nexo's pairing.db at path (the file, or the directory holding
// it): pairing_allow_from (channel, account_id, sender_id, approved_at,
// approved_via, revoked_at) gives the senders, revoked ones (revoked_at
// set) to come over revoked; pairing_pending (channel, account_id,
// sender_id, code, created_at, meta_json) the pending requests, with
// their codes (see Pending). A file that is no SQLite database, is
// damaged or lacks those tables is an error naming it.
func Nexo(ctx context.Context, path string, reg *channel.Registry) (Plan, error) {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		path = filepath.Join(path, "pairing.db")
	}
	db, err := openSource(ctx, path, "pairing_allow_from", "pairing_pending")
	if err != nil {
		return Plan{}, err
	}
	if db == nil {
		return Plan{}, fmt.Errorf("%s: %w (want nexo's pairing.db, or the directory holding it)", path, ErrNoSource)
	}
	defer db.Close()
	p := Plan{Source: "nexo", Files: []string{path}}
	err = eachRow(ctx, db, path, `SELECT channel, account_id, sender_id, approved_at, revoked_at FROM pairing_allow_from
		ORDER BY channel, account_id, sender_id`, func(r []any) error {
		ch, account, sender := text(r[0]), text(r[1]), text(r[2])
		if ad, account, ok := p.scope(reg, path, ch+"/"+account+" "+sender, ch, account); ok {
			p.add(ad, Sender{Channel: ch, Account: account, ApprovedAt: sqlTime(r[3]), Revoked: revoked(r[4]), From: path}, sender)
		}
		return nil
	}, 5)
	if err != nil {
		return Plan{}, err
	}
	err = p.pendingRows(ctx, db, path, reg, `SELECT channel, account_id, sender_id, meta_json, code, created_at FROM pairing_pending
		ORDER BY channel, account_id, sender_id`)
	if err != nil {
		return Plan{}, err
	}
	p.sort()
	return p, nil
}

// revoked reads revoked_at: NULL (or an empty or zero value) while the
// sender is allowed; any other value revokes them.
func revoked(v any) bool {
	s := text(v)
	return s != "" && s != "0"
}
