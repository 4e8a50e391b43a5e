package sqlite_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pairgate/pairgate/store"
	"github.com/pairgate/pairgate/store/sqlite"
)

// Backup makes one private, self-contained file that opens as the same
// store, and refuses to write over anything.
func TestBackup(t *testing.T) {
	ctx := t.Context()
	s := mustOpen(t, sqlite.Options{Path: filepath.Join(t.TempDir(), "pairgate.db")})
	if err := allow(ctx, s, "1", "2", "3"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "backup.db")
	if err := s.Backup(ctx, path); err != nil {
		t.Fatal(err)
	}
	checkMode(t, path, 0o600)
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"backup.db"}) {
		t.Errorf("the backup left %q in its directory, want only backup.db", names)
	}

	want, _ := s.ListAllowed(ctx, store.RequestFilter{}, true)
	copied := mustOpen(t, sqlite.Options{Path: path})
	got, err := copied.ListAllowed(ctx, store.RequestFilter{}, true)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("the backup's allowlist (-original +backup):\n%s", diff)
	}

	for _, existing := range []string{path, filepath.Join(dir, "empty.db")} {
		os.WriteFile(filepath.Join(dir, "empty.db"), nil, 0o600)
		before, _ := os.ReadFile(existing)
		err := s.Backup(ctx, existing)
		if err == nil || !strings.Contains(err.Error(), "exists") {
			t.Errorf("Backup over %s: %v, want a refusal", existing, err)
		}
		if after, _ := os.ReadFile(existing); string(after) != string(before) {
			t.Errorf("a refused backup changed %s", existing)
		}
	}
	if err := s.Backup(ctx, filepath.Join(dir, "no", "such", "dir.db")); err == nil {
		t.Error("Backup into a directory that does not exist succeeded")
	}
}
