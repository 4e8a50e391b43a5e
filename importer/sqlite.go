package importer

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/pairgate/pairgate/channel"
	"github.com/pairgate/pairgate/store/sqlite"
)

// openSource opens another system's SQLite database at path read-only,
// after an integrity check, and checks it has the tables named. No file at
// path is (nil, nil); a file that is no SQLite database, is damaged or
// lacks a table is an error naming it.
func openSource(ctx context.Context, path string, tables ...string) (*sql.DB, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	db, err := sqlite.OpenReadOnly(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	for _, t := range tables {
		var n int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?`, t).Scan(&n); err != nil || n == 0 {
			db.Close()
			return nil, fmt.Errorf("read %s: it has no table %s (%v)", path, t, err)
		}
	}
	return db, nil
}

// eachRow calls fn with each row of query, its n columns as database/sql
// gives them (int64, float64, string, []byte or nil), so a column of an
// unexpected type is read, not refused.
func eachRow(ctx context.Context, db *sql.DB, path, query string, fn func([]any) error, n int) error {
	rows, err := db.QueryContext(ctx, query)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	defer rows.Close()
	vals := make([]any, n)
	ptrs := make([]any, n)
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return fmt.Errorf("read %s: %w", path, err)
		}
		if err := fn(vals); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	return nil
}

// pendingRows adds the pending requests query reads: its columns are the
// channel, the account, the sender, the request's meta (JSON), its code
// and when it was made.
func (p *Plan) pendingRows(ctx context.Context, db *sql.DB, path string, reg *channel.Registry, query string) error {
	return eachRow(ctx, db, path, query, func(r []any) error {
		ch, account, sender := text(r[0]), text(r[1]), text(r[2])
		if _, account, ok := p.scope(reg, path, ch+"/"+account+" "+sender, ch, account); ok {
			p.Pending = append(p.Pending, Pending{Channel: ch, Account: account, Sender: sender, Name: metaName(text(r[3])),
				Code: text(r[4]), CreatedAt: sqlTime(r[5]), From: path})
		}
		return nil
	}, 6)
}

// text is a column as text: "" for NULL.
func text(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case []byte:
		return string(v)
	case int64:
		return strconv.FormatInt(v, 10)
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	default:
		return fmt.Sprint(v)
	}
}

// sqlTime reads a time column: Unix seconds or milliseconds (told apart by
// size), as a number or in text, or RFC 3339 text (or SQLite's
// "YYYY-MM-DD HH:MM:SS"); zero otherwise.
func sqlTime(v any) time.Time {
	var f float64
	switch v := v.(type) {
	case int64:
		f = float64(v)
	case float64:
		f = v
	case string, []byte:
		s := strings.TrimSpace(text(v))
		if n, err := strconv.ParseFloat(s, 64); err == nil {
			f = n
			break
		}
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05", "2006-01-02T15:04:05"} {
			if t, err := time.Parse(layout, s); err == nil {
				return t.UTC()
			}
		}
		return time.Time{}
	default:
		return time.Time{}
	}
	switch {
	case f <= 0 || f >= 1e15:
		return time.Time{}
	case f >= 1e11: // milliseconds (1e11 s is the year 5138)
		return time.UnixMilli(int64(f)).UTC()
	default:
		return time.Unix(int64(f), 0).UTC()
	}
}
