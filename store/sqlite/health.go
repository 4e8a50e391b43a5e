package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pairgate/pairgate/store"
	"github.com/pairgate/pairgate/store/sqlstore"
)

// applicationID marks a SQLite file as pairgate's (PRAGMA application_id,
// bytes 68-71 of the file header): "PGT1".
const applicationID = 0x50475431

// pairgateTables are the tables a pairgate database holds or held
// (used_jtis until schema version 5); a database made before files were
// marked with applicationID is recognised by them.
var pairgateTables = []string{
	"allowed", "api_tokens", "approvals", "change_log", "changes", "cursors", "declines", "device_requests", "devices",
	"failures", "health", "leases", "lockouts", "notices", "outbound", "outbound_cursors", "outbound_log", "requests", "setup_tokens", "signing_keys", "sqlite_sequence", "used_jtis", "web_sessions",
}

// Health timings.
const (
	// damagedRecheck is how often a store found damaged checks itself
	// again, so it is usable again by itself once the file is repaired.
	damagedRecheck = 5 * time.Second
)

// inspect decides, before anything is written to it, whether the file at
// path may be opened as pairgate's database: a missing or empty file (to be
// created), a file marked as pairgate's, or a pairgate database from before
// the mark. Anything else is refused and left untouched, in particular not
// switched to WAL mode. known is the latest schema version this build has.
func inspect(ctx context.Context, path string, known int, busy time.Duration) error {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && fi.Size() == 0) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
	db, err := sql.Open("sqlite", "file:"+escapePath(path)+"?mode=ro&_busy_timeout="+strconv.FormatInt(busy.Milliseconds(), 10))
	if err != nil {
		return fmt.Errorf("%w: open %s: %w", store.ErrUnavailable, path, err)
	}
	defer db.Close()
	notOurs := func(why string) error {
		return fmt.Errorf("%w: %s is not a pairgate database (%s); pairgate leaves it untouched: point pairing.storage.path at pairgate's own file, or at a new one", store.ErrUnavailable, path, why)
	}
	fail := func(err error) error {
		err, _ = wrapErr(path, "inspect database", err)
		return err
	}
	var app int64
	if err := db.QueryRowContext(ctx, `PRAGMA application_id`).Scan(&app); err != nil {
		return fail(err)
	}
	switch {
	case app == applicationID:
		return nil
	case app != 0:
		return notOurs(fmt.Sprintf("its application_id is %#x", app))
	}
	var version int
	if err := db.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
		return fail(err)
	}
	rows, err := db.QueryContext(ctx, `SELECT type, name FROM sqlite_master ORDER BY name`)
	if err != nil {
		return fail(err)
	}
	defer rows.Close()
	var tables, foreign []string
	for rows.Next() {
		var typ, name string
		if err := rows.Scan(&typ, &name); err != nil {
			return fail(err)
		}
		if typ != "table" {
			continue
		}
		tables = append(tables, name)
		if !slices.Contains(pairgateTables, name) {
			foreign = append(foreign, name)
		}
	}
	if err := rows.Err(); err != nil {
		return fail(err)
	}
	switch {
	case len(tables) == 0 && version == 0:
		return nil // an empty database: ours to initialise
	case len(foreign) > 0:
		return notOurs("it holds tables " + strings.Join(foreign, ", "))
	case version < 1 || version > known || !slices.Contains(tables, "changes") || !slices.Contains(tables, "allowed"):
		return notOurs(fmt.Sprintf("schema version %d with tables %s", version, strings.Join(tables, ", ")))
	}
	return nil // pairgate's, made before databases were marked; migrate marks it
}

// fileErr compares the file now at the store's path with the one the store
// opened. A database whose file was deleted or replaced while open would
// take writes that no later process can see: they must not be acknowledged.
func (s *Store) fileErr() error {
	fi, err := os.Stat(s.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w: the database file %s was deleted while pairgate had it open; no write is accepted, since none would be kept: put the file back (or restore it from a backup and restart pairgate)", store.ErrUnavailable, s.path)
	case err != nil:
		return fmt.Errorf("%w: check the database file %s: %w", store.ErrUnavailable, s.path, err)
	case !os.SameFile(fi, s.ident):
		return fmt.Errorf("%w: the database file %s was replaced by another file while pairgate had it open; no write is accepted, since none would reach the new file: restart pairgate to open it", store.ErrUnavailable, s.path)
	}
	return nil
}

// health is what the store knows of its own state, from its writes, its
// poller and its integrity checks.
type health struct {
	lost      error     // the file was deleted or replaced (fileErr)
	damaged   error     // a read or check found the file damaged
	checkedAt time.Time // last integrity check
	passedAt  time.Time // last integrity check that found nothing
}

// noteFile records the outcome of a fileErr check, logging a change.
func (s *Store) noteFile(err error) {
	s.hmu.Lock()
	was := s.h.lost
	s.h.lost = err
	s.hmu.Unlock()
	switch {
	case err != nil && was == nil:
		s.log.Error("sqlite: database file lost; refusing writes", "path", s.path, "err", err)
	case err == nil && was != nil:
		s.log.Info("sqlite: database file is back; accepting writes", "path", s.path)
	}
}

// noteDamaged records that a read found the file damaged.
func (s *Store) noteDamaged(err error) {
	s.hmu.Lock()
	was := s.h.damaged
	s.h.damaged = err
	s.hmu.Unlock()
	if was == nil {
		s.log.Error("sqlite: database damaged", "path", s.path, "err", err)
	}
}

// CheckIntegrity runs SQLite's quick_check over the whole file on a fresh
// connection, so pages cached by the store's own connections cannot hide
// damage on disk. A damaged file is reported as an error wrapping
// store.ErrUnavailable that quotes SQLite's first finding.
func (s *Store) CheckIntegrity(ctx context.Context) error {
	db, err := openDB(s.path, time.Second, false)
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	err = quickCheck(ctx, db, "")
	s.hmu.Lock()
	s.h.checkedAt = time.Now()
	s.hmu.Unlock()
	if err != nil {
		err = s.damage("integrity check", err)
		s.noteDamaged(err)
		return err
	}
	s.hmu.Lock()
	was := s.h.damaged
	s.h.damaged, s.h.passedAt = nil, s.h.checkedAt
	s.hmu.Unlock()
	if was != nil {
		s.log.Info("sqlite: database passes its integrity check again", "path", s.path)
	}
	return nil
}

// errDamaged carries quick_check's findings.
type errDamaged struct{ finding string }

func (e *errDamaged) Error() string { return "quick_check: " + e.finding }

// quickCheck runs PRAGMA quick_check, of one table when table is set, on q.
func quickCheck(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, table string) error {
	stmt := `PRAGMA quick_check`
	if table != "" {
		stmt += `(` + table + `)`
	}
	rows, err := q.QueryContext(ctx, stmt)
	if err != nil {
		return err
	}
	defer rows.Close()
	var findings []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return err
		}
		findings = append(findings, strings.TrimPrefix(line, "*** in database main ***\n"))
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if len(findings) == 1 && findings[0] == "ok" {
		return nil
	}
	first := "no result"
	if len(findings) > 0 {
		first = strings.SplitN(findings[0], "\n", 2)[0]
	}
	return &errDamaged{finding: first}
}

// checkTable runs quick_check on one table inside tx. A whole-file check
// that passed within the last second covers it: serve's start-up checks the
// file and then loads the allowlist, and need not read it twice. While the
// file is known to be damaged, it fails.
func (s *Store) checkTable(ctx context.Context, tx *sqlstore.Tx, what, table string) error {
	if table == "" {
		return nil
	}
	s.hmu.Lock()
	damaged, covered := s.h.damaged, time.Since(s.h.passedAt) < time.Second
	s.hmu.Unlock()
	if damaged != nil {
		// Known damage fails every listing, whichever table it is in:
		// a list read through cached pages may look whole when it is not.
		return damaged
	}
	if covered {
		return nil
	}
	err := quickCheck(ctx, tx, table)
	var d *errDamaged
	if errors.As(err, &d) {
		err = s.damage(what, err)
		s.noteDamaged(err)
		return err
	}
	return s.fail(what, err)
}

// damage wraps a finding of damage the way fail wraps SQLITE_CORRUPT.
func (s *Store) damage(what string, err error) error {
	return fmt.Errorf("%w: %s: %s is damaged (%w); restore it from a backup, or move it aside to start empty", store.ErrUnavailable, what, s.path, err)
}

// checkHealth is the poller's part in keeping health current: the file's
// identity every tick, and integrity checks when due.
func (s *Store) checkHealth(ctx context.Context) {
	s.noteFile(s.fileErr())
	s.hmu.Lock()
	damaged, since := s.h.damaged != nil, time.Since(s.h.checkedAt)
	s.hmu.Unlock()
	every := s.integrityEvery
	if damaged && (every <= 0 || every > damagedRecheck) {
		every = damagedRecheck
	}
	if every > 0 && since >= every {
		s.CheckIntegrity(ctx)
	}
}

// engine is what the SQLite backend supplies to the shared SQL store.
type engine struct{ s *Store }

// Rebind implements sqlstore.Engine: SQLite takes ? placeholders.
func (engine) Rebind(query string) string { return query }

// Begin implements sqlstore.Engine: BEGIN IMMEDIATE takes SQLite's write
// lock at once.
func (engine) Begin(ctx context.Context, conn *sql.Conn) error {
	_, err := conn.ExecContext(ctx, `BEGIN IMMEDIATE`)
	return err
}

// BeginRead implements sqlstore.Engine: a SQLite transaction reads one
// WAL snapshot from its first read.
func (engine) BeginRead(ctx context.Context, db *sql.DB) (*sql.Tx, error) {
	return db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
}

// Fail implements sqlstore.Engine.
func (e engine) Fail(what string, err error) error { return e.s.fail(what, err) }

// CheckWrite implements sqlstore.Engine: the file is still the database at
// the store's path, before a write and after its commit.
func (e engine) CheckWrite() error {
	err := e.s.fileErr()
	e.s.noteFile(err)
	return err
}

// CheckTable implements sqlstore.Engine with quick_check.
func (e engine) CheckTable(ctx context.Context, tx *sqlstore.Tx, what, table string) error {
	return e.s.checkTable(ctx, tx, what, table)
}

// Health implements sqlstore.Engine: the file is there, is the one opened,
// and is not known to be damaged.
func (e engine) Health() error {
	if err := e.CheckWrite(); err != nil {
		return err
	}
	e.s.hmu.Lock()
	defer e.s.hmu.Unlock()
	return e.s.h.damaged
}

// Appended implements sqlstore.Engine: other processes on the file learn
// of commits by polling (a single index descent every 100 ms).
func (engine) Appended(context.Context, *sqlstore.Tx) error { return nil }

// Tick implements sqlstore.Engine: the poller checks the file's identity
// every tick, and its integrity when due.
func (e engine) Tick(ctx context.Context) { e.s.checkHealth(ctx) }
