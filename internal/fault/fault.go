// Package fault injects the storage faults pairgate's tests prove it
// survives: a full disk, a damaged database page. It is for tests only.
package fault

import (
	"bytes"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	_ "modernc.org/sqlite" // the "sqlite" driver, to find pages to damage
)

// Tmpfs mounts a tmpfs of size bytes on a new directory and returns it,
// unmounting at the end of the test. Mounting needs root: elsewhere the test
// is skipped, except in CI (CI set), where it fails.
func Tmpfs(t testing.TB, size int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tmpfs")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d,mode=0700", size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		msg := fmt.Sprintf("cannot mount a tmpfs to fill (needs root): %v %s", err, bytes.TrimSpace(out))
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

// Fill writes a file in dir until its file system is full and returns a
// func that removes it again.
func Fill(t testing.TB, dir string) (release func()) {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	chunk := bytes.Repeat([]byte{0xff}, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			break
		}
	}
	// Whatever a last partial write left in the page cache is on the
	// disk's books already; the close error is the one we expect.
	f.Close()
	return func() {
		if err := os.Remove(path); err != nil {
			t.Error(err)
		}
	}
}

// DamageLeaf lowers the cell count of one leaf page of table in the SQLite
// file at path (checkpointed: its WAL is empty). SQLite then reads the page
// as holding one row, so a range scan over the table ends early without an
// error; only an integrity check notices. The func it returns puts the
// overwritten bytes back.
func DamageLeaf(t testing.TB, path, table string) (repair func()) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	var page, size int64
	err = db.QueryRow(`SELECT pageno FROM dbstat WHERE name = ? AND pagetype = 'leaf' ORDER BY pageno LIMIT 1 OFFSET 20`, table).Scan(&page)
	if err == nil {
		err = db.QueryRow(`PRAGMA page_size`).Scan(&size)
	}
	db.Close()
	if err != nil {
		t.Fatalf("find a leaf page of %s in %s: %v", table, path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// Bytes 3-4 of a b-tree page header count its cells.
	off := (page-1)*size + 3
	was := make([]byte, 2)
	if _, err := f.ReadAt(was, off); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{0, 1}, off); err != nil {
		t.Fatal(err)
	}
	return func() {
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteAt(was, off); err != nil {
			t.Fatal(err)
		}
	}
}
