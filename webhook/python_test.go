package webhook_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pairgate/pairgate/secret"
	"github.com/pairgate/pairgate/webhook"
)

// python3 returns the interpreter, or skips the test without one (and
// fails it in CI, where it must run).
func python3(t *testing.T) string {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("python3 is not on PATH; CI runs the README's Python receiver check")
		}
		t.Skip("python3 is not on PATH: the README's Python receiver check (testdata/verify.py) is not run")
	}
	return py
}

// runPy runs a testdata script with args and stdin, and returns its exit
// code and stderr.
func runPy(t *testing.T, py, script string, stdin []byte, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(py, append([]string{filepath.Join("testdata", script)}, args...)...)
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String(), errb.String()
	case errors.As(err, &exit):
		return exit.ExitCode(), out.String(), errb.String()
	}
	t.Fatalf("python3 %s: %v", script, err)
	return 0, "", ""
}

// The README's receiver check in Python (testdata/verify.py), with the key
// from the README's derivation (testdata/webhook_key.py), accepts a notice
// as the publisher posted it and refuses it changed, signed with another
// key, stale or with a broken header.
func TestPythonReceiver(t *testing.T) {
	py := python3(t)
	raw := bytes.Repeat([]byte{9}, secret.Size)
	keyFile := filepath.Join(t.TempDir(), "pairing.key")
	if err := os.WriteFile(keyFile, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := runPy(t, py, "webhook_key.py", nil, keyFile)
	if code != 0 || strings.TrimSpace(out) != hex.EncodeToString(testKey(t)) {
		t.Fatalf("webhook_key.py: exit %d, printed %q (%s); want the webhook key %x", code, out, stderr, testKey(t))
	}
	keyHex := strings.TrimSpace(out)

	f := newFixture(t)
	rcv := newReceiver(t, func(string, int) int { return http.StatusOK })
	logs, _ := start(t, f.st, webhook.Options{URL: rcv.srv.URL})
	f.dm("", "1000", "Alice")
	f.device("1")
	posted := rcv.waitAccepted(t, 2, logs)

	key := testKey(t)
	for _, h := range posted {
		body, sig := h.body, h.header.Get(webhook.SignatureHeader)
		tampered := bytes.Replace(body, []byte(`"sender":"1000"`), []byte(`"sender":"1001"`), 1)
		if bytes.Equal(tampered, body) {
			tampered = bytes.Replace(body, []byte(`"check_code":"482913"`), []byte(`"check_code":"000000"`), 1)
		}
		stale := webhook.Sign(key, time.Now().Add(-10*time.Minute), body)
		for _, tt := range []struct {
			name, key, header string
			body              []byte
			want              int
		}{
			{"as posted", keyHex, sig, body, 0},
			{"tampered body", keyHex, sig, tampered, 1},
			{"another key", strings.Repeat("ab", 32), sig, body, 1},
			{"stale", keyHex, stale, body, 1},
			{"no v1", keyHex, strings.Split(sig, ",")[0], body, 1},
			{"malformed", keyHex, "t=now,v1=ü", body, 1},
		} {
			code, _, stderr := runPy(t, py, "verify.py", tt.body, tt.key, tt.header)
			if code != tt.want || stderr != "" {
				t.Errorf("verify.py, %s (%s): exit %d, want %d; stderr: %s", tt.name, body, code, tt.want, stderr)
			}
		}
	}
}

// README.md shows the two Python scripts the tests run: the copies there
// are the scripts as they stand, so the README cannot drift from what is
// tested.
func TestREADMEShowsThePythonScripts(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"testdata/verify.py", "testdata/webhook_key.py"} {
		script, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(readme), "```python\n"+string(script)+"```") {
			t.Errorf("README.md does not show %s as it is", name)
		}
	}
}
