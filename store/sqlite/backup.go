package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Backup writes a consistent copy of the database to path, with VACUUM
// INTO: it reads one snapshot in a single read transaction, so it runs
// while this and other processes (a running serve, the CLI) go on writing,
// and the copy holds every transaction committed before the snapshot and
// none after. The copy is one self-contained file (no -wal beside it),
// created with mode 0600, synced to disk, and checked with quick_check.
// An existing file at path is never overwritten.
//
// Backup is SQLite's, not part of store.Store: other backends have their
// own tools.
func (s *Store) Backup(ctx context.Context, path string) (err error) {
	path, err = filepath.Abs(path)
	if err != nil {
		return err
	}
	// VACUUM INTO writes into an empty file as it finds it, so creating it
	// here gives it its mode from the start (SQLite would make it 0644 less
	// the umask), and O_EXCL refuses a file that is there already.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("back up to %s: the file exists; choose another name (a backup never overwrites a file)", path)
	}
	if err != nil {
		return fmt.Errorf("back up: %w", err)
	}
	f.Close()
	defer func() {
		if err != nil {
			os.Remove(path)
		}
	}()
	if _, err := s.r.ExecContext(ctx, `VACUUM INTO ?`, path); err != nil {
		return s.fail("back up to "+path, err)
	}
	if err := syncFile(path); err != nil {
		return fmt.Errorf("back up: %w", err)
	}
	return checkCopy(ctx, path)
}

// syncFile makes the file at path, and its name in its directory, durable.
func syncFile(path string) error {
	for _, p := range []string{path, filepath.Dir(path)} {
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		err = f.Sync()
		f.Close()
		if err != nil {
			return fmt.Errorf("sync %s: %w", p, err)
		}
	}
	return nil
}

// checkCopy runs quick_check on a backup, read-only.
func checkCopy(ctx context.Context, path string) error {
	db, err := OpenReadOnly(ctx, path)
	if err != nil {
		return fmt.Errorf("the backup: %w", err)
	}
	return db.Close()
}

// OpenReadOnly opens the SQLite file at path read-only (a backup, or
// another program's database) and runs quick_check on it, so a damaged
// file is an error naming it before anything is read from it.
func OpenReadOnly(ctx context.Context, path string) (*sql.DB, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, err
	}
	db, err := sql.Open("sqlite", "file:"+escapePath(path)+"?mode=ro")
	if err != nil {
		return nil, err
	}
	var result string
	if err := db.QueryRowContext(ctx, `PRAGMA quick_check`).Scan(&result); err != nil {
		db.Close()
		return nil, fmt.Errorf("check %s: %w", path, err)
	}
	if result != "ok" {
		db.Close()
		return nil, fmt.Errorf("%s fails its integrity check: %s", path, result)
	}
	return db, nil
}
