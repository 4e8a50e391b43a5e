package apitoken_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pairgate/pairgate/apitoken"
	"github.com/pairgate/pairgate/secret"
)

// TestAdminTokenReadableByOthers: the refusal names the admin token, not
// the pairing secret, and says how to fix it.
func TestAdminTokenReadableByOthers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "admin.token")
	if _, err := apitoken.LoadOrCreateAdmin(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := apitoken.LoadOrCreateAdmin(path)
	if !errors.Is(err, secret.ErrInsecure) {
		t.Fatalf("LoadOrCreateAdmin of a 0644 file: %v, want ErrInsecure", err)
	}
	msg := err.Error()
	for _, want := range []string{"admin token " + path + " has mode 0644", "chmod 600 " + path} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q does not say %q", msg, want)
		}
	}
	if strings.Contains(msg, "pairing secret") {
		t.Errorf("message %q calls the admin token the pairing secret", msg)
	}
}
