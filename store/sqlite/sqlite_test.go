package sqlite_test

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pairgate/pairgate/store"
	"github.com/pairgate/pairgate/store/sqlite"
	"github.com/pairgate/pairgate/store/storetest"
)

func TestMain(m *testing.M) {
	storetest.ChildMain(backend())
	os.Exit(m.Run())
}

func open(ctx context.Context, path string) (store.Store, error) {
	s, err := sqlite.Open(ctx, sqlite.Options{Path: path})
	if err != nil {
		return nil, err // not a typed nil in an interface
	}
	return s, nil
}

func backend() storetest.Backend {
	return storetest.NewBackend(open, func(t *testing.T) string { return filepath.Join(t.TempDir(), "pairgate.db") })
}

func TestConformance(t *testing.T) {
	storetest.Run(t, backend())
}

func checkMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Errorf("stat %s: %v", path, err)
		return
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s has mode %#o, want %#o", path, got, want)
	}
}

// The database holds who may talk to the assistant: only its owner may read
// or write it, from the moment it exists.
func TestFileModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	path := filepath.Join(dir, "pairgate.db")
	s, err := sqlite.Open(t.Context(), sqlite.Options{Path: path})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	checkMode(t, dir, 0o700)
	checkMode(t, path, 0o600)

	// A write makes the WAL (and its shared-memory index) exist.
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if _, err := s.Allow(t.Context(), store.AllowParams{
		Scope: store.Scope{Channel: "telegram", Account: "default"}, Senders: []store.AllowSender{{Sender: "1"}},
		Via: store.ViaManual, Actor: store.Actor{Name: "test", Source: "test"}, Now: now,
	}); err != nil {
		t.Fatalf("Allow: %v", err)
	}
	for _, suffix := range []string{"-wal", "-shm"} {
		p := path + suffix
		if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
			t.Logf("%s does not exist after a write", p)
			continue
		}
		checkMode(t, p, 0o600)
	}
}

// A file that is not a SQLite database must be refused, and left exactly as
// it was: never read as an empty allowlist that the next approval would
// overwrite (hermes #71654).
func TestOpenNotADatabase(t *testing.T) {
	random := make([]byte, 8192)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range random {
		random[i] = byte(rng.UintN(256))
	}
	for _, c := range []struct {
		name string
		data []byte
	}{
		{"text", []byte("telegram:12345\ntelegram:67890\nthis is an allowlist, not a database\n")},
		{"random", random},
		{"bad header", append([]byte("SQLite format 2\x00"), random[:4080]...)},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "pairgate.db")
			if err := os.WriteFile(path, c.data, 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := sqlite.Open(t.Context(), sqlite.Options{Path: path})
			if err == nil {
				s.Close()
				t.Error("Open of a file that is not a database succeeded")
			} else if !errors.Is(err, store.ErrUnavailable) {
				t.Errorf("Open of a file that is not a database: %v, want an error wrapping %q", err, store.ErrUnavailable)
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, c.data) {
				t.Errorf("Open changed the file: %d bytes before, %d after", len(c.data), len(got))
			}
		})
	}
}

// A database the process cannot read must be refused, not treated as empty.
func TestOpenUnreadable(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("running as root: file modes do not stop root")
	}
	path := filepath.Join(t.TempDir(), "pairgate.db")
	s, err := sqlite.Open(t.Context(), sqlite.Options{Path: path})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(path, 0o600) })
	s, err = sqlite.Open(t.Context(), sqlite.Options{Path: path})
	if err == nil {
		s.Close()
		t.Fatal("Open of an unreadable database succeeded")
	}
	if !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Open of an unreadable database: %v, want an error wrapping %q", err, store.ErrUnavailable)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("Open of an unreadable database changed it")
	}
}

// Devices paired before devices kept their label get it from the request
// they paired with when the schema is brought up to date.
func TestDeviceLabelMigration(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "pairgate.db")
	s, err := sqlite.Open(ctx, sqlite.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	now := time.UnixMilli(1_795_510_800_000).UTC()
	actor := store.Actor{Name: "test", Source: "test"}
	r := store.DeviceRequest{ID: "dreq_old", DeviceID: "56475aa75463474c0285df5dbf2bcab73da651358839e9b77481b2eab107708c",
		PublicKey: make([]byte, 32), Name: "Pixel", Platform: "android", Role: "node", Label: "Ana's phone", CheckCode: "012345",
		CreatedAt: now, ExpiresAt: now.Add(10 * time.Minute), Status: store.DevicePending}
	tok := store.SetupToken{ID: "00112233445566778899aabb", KID: 1, Role: "node", Label: r.Label, URL: "wss://gw.example.com/pair",
		CreatedAt: now, ExpiresAt: now.Add(10 * time.Minute)}
	if err := s.CreateSetupToken(ctx, tok, now.Add(-time.Hour), actor); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateDeviceRequest(ctx, r, tok.ID, actor); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DecideDeviceRequest(ctx, r.ID, true, actor, now); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeliverDeviceToken(ctx, r.ID, make([]byte, 32), now); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// Schema version 4: the devices table had no label.
	sqlExec(t, path, append(schemaV4, `PRAGMA user_version = 4`)...)
	s, err = sqlite.Open(ctx, sqlite.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	d, err := s.GetDevice(ctx, r.DeviceID)
	if err != nil || d.Label != "Ana's phone" {
		t.Errorf("after the migration: label %q, %v; want the request's, \"Ana's phone\"", d.Label, err)
	}
}

// A database from before the outbox (schema version 4 to 7) keeps its
// change log: old changes read back without a payload, and numbering goes
// on after the highest number ever handed out, also when that change is no
// longer there (AUTOINCREMENT remembered it), so a follower's position
// never comes to name another change.
func TestOutboxMigration(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "pairgate.db")
	s := mustOpen(t, sqlite.Options{Path: path})
	if err := allow(ctx, s, "1", "2", "3"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	sqlExec(t, path, append(append([]string{`DELETE FROM changes WHERE seq = 3`}, schemaV4...), `PRAGMA user_version = 4`)...)

	s = mustOpen(t, sqlite.Options{Path: path})
	cs, err := s.Changes(ctx, 0, 10)
	if err != nil || len(cs) != 2 || cs[0].Seq != 1 || cs[1].Seq != 2 {
		t.Fatalf("changes after migrating = %+v, %v; want Seq 1 and 2", cs, err)
	}
	for _, c := range cs {
		if c.Kind != store.KindAllowed || c.Data != (store.ChangeData{}) {
			t.Errorf("change %d after migrating: %s with payload %+v; want pairing.allowed without one", c.Seq, c.Kind, c.Data)
		}
	}
	if err := allow(ctx, s, "4"); err != nil {
		t.Fatal(err)
	}
	if cs, err := s.Changes(ctx, 2, 10); err != nil || len(cs) != 1 || cs[0].Seq != 4 || cs[0].Data.Via != store.ViaManual {
		t.Errorf("the first change after migrating = %+v, %v; want Seq 4 (3 was handed out before), with its payload", cs, err)
	}
}
