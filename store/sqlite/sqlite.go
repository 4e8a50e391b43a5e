// Package sqlite is the embedded store backend: one SQLite file in WAL mode,
// shared safely by a running gateway, the CLI and any number of other
// processes on the same machine.
//
// Writes go through one connection per process and open with BEGIN
// IMMEDIATE, so every transaction that must be atomic (the pending cap,
// approve-once, the lockout counter) holds SQLite's single write lock from
// its first statement; busy_timeout makes other processes wait for it instead
// of failing. synchronous=FULL makes a returned write durable.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pairgate/pairgate/store"
	"github.com/pairgate/pairgate/store/sqlstore"
	sqlite3 "modernc.org/sqlite"
	sqlite3lib "modernc.org/sqlite/lib"
)

// Options configure Open.
type Options struct {
	// Path of the database file. Its directory is created 0700 and the file
	// 0600 when they do not exist.
	Path string
	// PollInterval is how often the store looks for changes committed by
	// other processes. Default 100ms; it bounds how late Changed fires for
	// them.
	PollInterval time.Duration
	// BusyTimeout is how long a write waits for another process's write
	// lock. Default 10s.
	BusyTimeout time.Duration
	// Logger receives warnings from the background poller. Default: discard.
	Logger *slog.Logger
	// IntegrityCheck, when set, makes Open refuse a damaged file (a full
	// quick_check) and repeats the check at this interval, so Ping reports
	// damage that no query has run into yet. A daemon sets it; a short-lived
	// command relies on the checks listings make of their own tables.
	IntegrityCheck time.Duration
	// MaxBatch is the most writes of this process that share one
	// transaction and one fsync (group commit; see store/sqlstore/writer.go). Default 16;
	// 1 commits every write on its own.
	MaxBatch int
}

// Store is the SQLite backend of store.Store: the shared SQL store
// (package sqlstore) over one file, plus what only SQLite has (Backup,
// CheckIntegrity).
type Store struct {
	*sqlstore.Store
	path  string
	ident os.FileInfo // the file opened, to notice it deleted or replaced
	r     *sql.DB     // readers, for Backup
	log   *slog.Logger

	integrityEvery time.Duration
	hmu            sync.Mutex
	h              health
}

var _ store.Store = (*Store)(nil)

//go:embed migrations/*.sql
var migrations embed.FS

// Open opens (creating if needed) the database at opts.Path and brings its
// schema up to date. A file that exists but is not a pairgate database, or
// cannot be read, is an error wrapping store.ErrUnavailable and is left
// untouched: it is never treated as empty.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if opts.Path == "" {
		return nil, errors.New("sqlite: no database path set")
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 100 * time.Millisecond
	}
	if opts.BusyTimeout <= 0 {
		opts.BusyTimeout = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	ms, err := loadMigrations(migrations)
	if err != nil {
		return nil, err
	}
	if err := inspect(ctx, opts.Path, latest(ms), opts.BusyTimeout); err != nil {
		return nil, err
	}
	if err := createFile(opts.Path); err != nil {
		return nil, err
	}
	ident, err := os.Stat(opts.Path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
	w, err := openDB(opts.Path, opts.BusyTimeout, true)
	if err != nil {
		return nil, err
	}
	w.SetMaxOpenConns(1)
	r, err := openDB(opts.Path, opts.BusyTimeout, false)
	if err != nil {
		w.Close()
		return nil, err
	}
	r.SetMaxOpenConns(4)
	s := &Store{path: opts.Path, ident: ident, r: r, log: opts.Logger, integrityEvery: opts.IntegrityCheck}
	closeDBs := func() { r.Close(); w.Close() }
	if err := s.migrate(ctx, w, ms); err != nil {
		closeDBs()
		return nil, err
	}
	if opts.IntegrityCheck > 0 {
		if err := s.CheckIntegrity(ctx); err != nil {
			closeDBs()
			return nil, err
		}
	}
	s.Store, err = sqlstore.New(ctx, sqlstore.Options{Writer: w, Reader: r, Engine: engine{s}, MaxBatch: opts.MaxBatch, PollInterval: opts.PollInterval,
		Logger: opts.Logger, Name: "sqlite " + opts.Path})
	if err != nil {
		closeDBs()
		return nil, err
	}
	return s, nil
}

// createFile makes the database's directory (0700) and file (0600) with
// their final modes at creation, so there is no window in which another
// user could open them. Existing ones are left as they are.
func createFile(path string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create database directory %s: %w", dir, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create database file %s: %w", path, err)
	}
	return f.Close()
}

func openDB(path string, busy time.Duration, writer bool) (*sql.DB, error) {
	q := url.Values{}
	q.Set("_busy_timeout", strconv.FormatInt(busy.Milliseconds(), 10))
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", "FULL")
	q.Set("_foreign_keys", "1")
	// The file exists (createFile): a connection opened later, after the
	// file was deleted, must fail rather than create an empty one.
	q.Set("mode", "rw")
	if writer {
		q.Set("_txlock", "immediate")
	}
	// SQLite creates the -wal and -shm files with the database file's
	// mode, so they are 0600 too.
	db, err := sql.Open("sqlite", "file:"+escapePath(path)+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("%w: open %s: %w", store.ErrUnavailable, path, err)
	}
	return db, nil
}

// escapePath writes a file path for a SQLite URI filename.
func escapePath(path string) string { return (&url.URL{Path: path}).EscapedPath() }

// fail wraps a database error so callers can test for ErrUnavailable, and
// names the file so the operator knows where to look.
func (s *Store) fail(what string, err error) error {
	err, damaged := wrapErr(s.path, what, err)
	if damaged {
		s.noteDamaged(err)
	}
	return err
}

// wrapErr wraps a database error in ErrUnavailable with the file's name and
// what to do, and reports whether it says the file is damaged.
func wrapErr(path, what string, err error) (error, bool) {
	if err == nil {
		return nil, false
	}
	var se *sqlite3.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3lib.SQLITE_NOTADB, sqlite3lib.SQLITE_CORRUPT:
			return fmt.Errorf("%w: %s: %s is damaged or not a pairgate database (%w); restore it from a backup or move it aside", store.ErrUnavailable, what, path, err), true
		case sqlite3lib.SQLITE_CANTOPEN, sqlite3lib.SQLITE_PERM, sqlite3lib.SQLITE_READONLY:
			return fmt.Errorf("%w: %s: cannot open %s for writing (%w); check its owner and mode", store.ErrUnavailable, what, path, err), false
		}
	}
	return fmt.Errorf("%w: %s: %w", store.ErrUnavailable, what, err), false
}

// migration is one schema step: migrations/NNNN_what.sql brings the schema
// to version NNNN.
type migration struct {
	version int
	file    string
}

// loadMigrations reads the migration files of fsys (a "migrations"
// folder), ordered by version.
//
// The schema version (PRAGMA user_version) is the number of the last file
// applied, not a count of files: branches reserve numbers, so the files of
// one build may have gaps (0004, 0006) that a merge fills (0005). Counted,
// "5" would mean 0001-0004+0006 on one branch and 0001-0005 on another; by
// number, a database at 5 gets 0006 from either, and one at 6 is refused by
// a build that knows only up to 5 instead of being taken as current.
func loadMigrations(fsys fs.FS) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, "migrations")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v < 1 || !strings.HasSuffix(e.Name(), ".sql") {
			return nil, fmt.Errorf("migration file %s: want NNNN_what.sql with NNNN from 0001", e.Name())
		}
		ms = append(ms, migration{version: v, file: e.Name()})
	}
	if len(ms) == 0 {
		return nil, errors.New("no migration files")
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i := 1; i < len(ms); i++ {
		if ms[i].version == ms[i-1].version {
			return nil, fmt.Errorf("migration files %s and %s have the same number", ms[i-1].file, ms[i].file)
		}
	}
	return ms, nil
}

func latest(ms []migration) int { return ms[len(ms)-1].version }

// migrate brings the schema up to date in one IMMEDIATE transaction, and
// marks the file as pairgate's. SQLite DDL is transactional, so two
// processes opening a new file at once serialise here and the second finds
// the work done.
func (s *Store) migrate(ctx context.Context, w *sql.DB, ms []migration) error {
	if err := s.fileErr(); err != nil {
		return err
	}
	tx, err := w.BeginTx(ctx, nil)
	if err != nil {
		return s.fail("migrate schema", err)
	}
	defer tx.Rollback()
	if err := applyMigrations(ctx, tx, migrations, ms); err != nil {
		return s.fail("migrate schema", err)
	}
	var app int64
	if err := tx.QueryRowContext(ctx, `PRAGMA application_id`).Scan(&app); err != nil {
		return s.fail("migrate schema", err)
	}
	if app != applicationID {
		if _, err := tx.ExecContext(ctx, `PRAGMA application_id = `+strconv.Itoa(applicationID)); err != nil {
			return s.fail("migrate schema", err)
		}
	}
	return s.fail("migrate schema", tx.Commit())
}

// applyMigrations applies, inside tx, every migration numbered above the
// schema version and sets the version to the last one's number.
func applyMigrations(ctx context.Context, tx *sql.Tx, fsys fs.FS, ms []migration) error {
	var version int
	if err := tx.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
		return err
	}
	if version > latest(ms) {
		return fmt.Errorf("database schema version %d is newer than this pairgate knows (%d): upgrade pairgate", version, latest(ms))
	}
	for _, m := range ms {
		if m.version <= version {
			continue
		}
		body, err := fs.ReadFile(fsys, "migrations/"+m.file)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, string(body)); err != nil {
			return fmt.Errorf("migration %s: %w", m.file, err)
		}
	}
	if version != latest(ms) {
		if _, err := tx.ExecContext(ctx, `PRAGMA user_version = `+strconv.Itoa(latest(ms))); err != nil {
			return err
		}
	}
	return nil
}
