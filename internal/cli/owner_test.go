package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A config file that changes between being read and being replaced keeps
// the other change: the edit is refused, not written over it.
func TestConfigEditRefusesAFileChangedMeanwhile(t *testing.T) {
	home := t.TempDir()
	path := filepath.Join(home, "pairgate.yaml")
	if err := os.WriteFile(path, []byte("owner:\n  senders:\n    telegram: [\"7\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	a := &app{home: home}
	f, err := a.readConfigForEdit()
	if err != nil {
		t.Fatal(err)
	}
	other := "owner:\n  senders:\n    telegram: [\"8\"]\n"
	if err := os.WriteFile(path, []byte(other), 0o644); err != nil {
		t.Fatal(err)
	}
	err = f.write([]byte("owner:\n  senders:\n    telegram: [\"7\", \"42\"]\n"))
	if err == nil || !strings.Contains(err.Error(), "changed while it was being edited") {
		t.Fatalf("write over a file changed meanwhile: %v", err)
	}
	if data, _ := os.ReadFile(path); string(data) != other {
		t.Errorf("the other change was lost:\n%s", data)
	}
	if left, _ := filepath.Glob(filepath.Join(home, ".pairgate.yaml.tmp-*")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}

	// Read again, the edit goes through, with the file's mode.
	if f, err = a.readConfigForEdit(); err != nil {
		t.Fatal(err)
	}
	if err := f.write([]byte("owner:\n  senders:\n    telegram: [\"8\", \"42\"]\n")); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("the replaced file: %v, %v; want mode 0644", fi.Mode(), err)
	}
}
