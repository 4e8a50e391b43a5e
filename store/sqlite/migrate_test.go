package sqlite

import (
	"database/sql"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

// files makes a migrations folder whose file NNNN creates table tNNNN.
func files(versions ...string) fstest.MapFS {
	fsys := fstest.MapFS{}
	for _, v := range versions {
		fsys["migrations/"+v+"_step.sql"] = &fstest.MapFile{Data: []byte("CREATE TABLE t" + v + " (x);")}
	}
	return fsys
}

// migrateWith applies fsys's migrations to the database at path and
// returns its schema version and tables.
func migrateWith(t *testing.T, path string, fsys fstest.MapFS) (int, []string, error) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ms, err := loadMigrations(fsys)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := db.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := applyMigrations(t.Context(), tx, fsys, ms); err != nil {
		tx.Rollback()
		return 0, nil, err
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	var version int
	if err := db.QueryRow(`PRAGMA user_version`).Scan(&version); err != nil {
		t.Fatal(err)
	}
	rows, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var tables []string
	for rows.Next() {
		var name string
		rows.Scan(&name)
		tables = append(tables, strings.TrimPrefix(name, "t"))
	}
	return version, tables, rows.Err()
}

// Branches reserve migration numbers, so a build may have a gap (0004,
// 0006) that a merge fills (0005). The schema version is the number of the
// last file applied: every database that a released build or either branch
// made migrates correctly, and none is taken as current when it is not.
func TestMigrationsAcrossAGap(t *testing.T) {
	branch := files("0001", "0002", "0003", "0004", "0006")
	colleague := files("0001", "0002", "0003", "0004", "0005")
	merged := files("0001", "0002", "0003", "0004", "0005", "0006")
	released := files("0001", "0002", "0003", "0004")
	all := []string{"0001", "0002", "0003", "0004", "0005", "0006"}

	steps := []struct {
		name   string
		builds []fstest.MapFS // applied in order to one database
		want   int
		tables []string
	}{
		{"fresh, this branch", []fstest.MapFS{branch}, 6, []string{"0001", "0002", "0003", "0004", "0006"}},
		{"released database, this branch", []fstest.MapFS{released, branch}, 6, []string{"0001", "0002", "0003", "0004", "0006"}},
		{"released database, merged", []fstest.MapFS{released, merged}, 6, all},
		{"fresh, merged", []fstest.MapFS{merged}, 6, all},
		{"the other branch's database, merged", []fstest.MapFS{colleague, merged}, 6, all},
		// Counting files, 5 would read as "up to date" here and 0006's
		// tables would be missing.
		{"the other branch's database, this branch", []fstest.MapFS{colleague, branch}, 6, []string{"0001", "0002", "0003", "0004", "0005", "0006"}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "db")
			var version int
			var tables []string
			for _, b := range s.builds {
				var err error
				if version, tables, err = migrateWith(t, path, b); err != nil {
					t.Fatalf("migrate: %v", err)
				}
			}
			if version != s.want || !slices.Equal(tables, s.tables) {
				t.Errorf("schema version %d with tables %v; want %d with %v", version, tables, s.want, s.tables)
			}
		})
	}

	// A build that knows only up to 0005 refuses a database at 6 rather
	// than taking it as current (counting files, both read as 5).
	path := filepath.Join(t.TempDir(), "db")
	if _, _, err := migrateWith(t, path, branch); err != nil {
		t.Fatal(err)
	}
	if _, _, err := migrateWith(t, path, colleague); err == nil || !strings.Contains(err.Error(), "newer than this pairgate knows") {
		t.Errorf("a build up to 0005 opening a database at 6: %v; want it refused as newer", err)
	}
}

func TestEmbeddedMigrations(t *testing.T) {
	ms, err := loadMigrations(migrations)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(ms); i++ {
		if ms[i].version <= ms[i-1].version {
			t.Errorf("migrations out of order: %s after %s", ms[i].file, ms[i-1].file)
		}
	}
	for _, bad := range []fstest.MapFS{
		{"migrations/7_x.sql": {}, "migrations/0007_y.sql": {}},
		{"migrations/init.sql": {}},
		{"migrations/0000_zero.sql": {}},
	} {
		if _, err := loadMigrations(bad); err == nil {
			t.Errorf("loadMigrations accepted %v", slices.Sorted(maps.Keys(bad)))
		}
	}
}
