package secret_test

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/pairgate/pairgate/secret"
)

func TestLoadOrCreate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "home")
	path := filepath.Join(dir, "pairing.key")
	// Eight racing first starts all end up with the one secret.
	keys := make([][]byte, 8)
	var wg sync.WaitGroup
	for i := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := secret.LoadOrCreate(path)
			if err != nil {
				t.Error(err)
				return
			}
			keys[i] = s.Derive("test")
		}()
	}
	wg.Wait()
	for _, k := range keys[1:] {
		if !bytes.Equal(k, keys[0]) {
			t.Fatal("racing creators saw different secrets")
		}
	}
	for p, want := range map[string]os.FileMode{dir: 0o700, path: 0o600} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %04o, want %04o", p, fi.Mode().Perm(), want)
		}
	}
	if data, _ := os.ReadFile(path); len(data) != secret.Size {
		t.Errorf("secret holds %d bytes", len(data))
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}

func TestRefusals(t *testing.T) {
	dir := t.TempDir()
	loose := filepath.Join(dir, "loose.key")
	os.WriteFile(loose, bytes.Repeat([]byte{1}, secret.Size), 0o644)
	if _, err := secret.Load(loose); !errors.Is(err, secret.ErrInsecure) || !strings.Contains(err.Error(), "chmod 600 "+loose) {
		t.Errorf("world-readable secret: %v", err)
	}
	short := filepath.Join(dir, "short.key")
	os.WriteFile(short, []byte("abc"), 0o600)
	if _, err := secret.Load(short); err == nil || !strings.Contains(err.Error(), "exactly 32 bytes") {
		t.Errorf("short secret: %v", err)
	}
	if _, err := secret.Load(filepath.Join(dir, "missing.key")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing secret: %v", err)
	}
	if err := secret.WriteNew(short, []byte("new")); !errors.Is(err, fs.ErrExist) {
		t.Errorf("WriteNew over an existing file: %v", err)
	}
	if data, _ := os.ReadFile(short); string(data) != "abc" {
		t.Error("WriteNew replaced an existing file")
	}
}

func TestDerive(t *testing.T) {
	s, err := secret.FromBytes(bytes.Repeat([]byte{3}, secret.Size))
	if err != nil {
		t.Fatal(err)
	}
	a, b := s.Derive("pairgate/v1/a"), s.Derive("pairgate/v1/b")
	if len(a) != 32 || bytes.Equal(a, b) || !bytes.Equal(a, s.Derive("pairgate/v1/a")) {
		t.Fatal("subkeys must be 32 bytes, stable, and distinct per purpose")
	}
	if _, err := secret.FromBytes([]byte("short")); err == nil {
		t.Fatal("FromBytes accepted a short key")
	}
}
