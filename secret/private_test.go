package secret_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pairgate/pairgate/secret"
)

// TestReadPrivateNamesTheFile: a file others can read is refused with a
// message that says which file it is and what it holds, and the fix.
func TestReadPrivateNamesTheFile(t *testing.T) {
	dir := t.TempDir()
	tok := filepath.Join(dir, "admin.token")
	os.WriteFile(tok, []byte("pga_0123456789abcdefghijklmnopqrstuvwxyz\n"), 0o644)
	_, err := secret.ReadPrivate(tok, "admin token")
	want := "admin token " + tok + " has mode 0644, readable by group or others: fix it with: chmod 600 " + tok
	if !errors.Is(err, secret.ErrInsecure) || err.Error() != want {
		t.Errorf("ReadPrivate of a 0644 admin token:\n got %v\nwant %s (wrapping ErrInsecure)", err, want)
	}

	key := filepath.Join(dir, "pairing.key")
	os.WriteFile(key, make([]byte, secret.Size), 0o640)
	_, err = secret.Load(key)
	want = "pairing secret " + key + " has mode 0640, readable by group or others: fix it with: chmod 600 " + key
	if !errors.Is(err, secret.ErrInsecure) || err.Error() != want {
		t.Errorf("Load of a 0640 pairing secret:\n got %v\nwant %s (wrapping ErrInsecure)", err, want)
	}

	if _, err := secret.ReadPrivate(dir, "admin token"); err == nil || !strings.HasPrefix(err.Error(), "admin token "+dir+" is not a regular file") {
		t.Errorf("ReadPrivate of a directory: %v", err)
	}
	big := filepath.Join(dir, "big.token")
	os.WriteFile(big, make([]byte, 65<<10), 0o600)
	if _, err := secret.ReadPrivate(big, "admin token"); err == nil || !strings.HasPrefix(err.Error(), "admin token "+big+" is larger than") {
		t.Errorf("ReadPrivate of a large file: %v", err)
	}
}
