package main_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// readmeBlock returns the first fenced block of lang after heading in
// README.md.
func readmeBlock(t *testing.T, heading, lang string) string {
	t.Helper()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(readme), heading+"\n")
	if !ok {
		t.Fatalf("README.md has no %q", heading)
	}
	m := regexp.MustCompile("(?s)```" + lang + "\n(.*?)```").FindStringSubmatch(after)
	if m == nil {
		t.Fatalf("no ```%s block after %q in README.md", lang, heading)
	}
	return m[1]
}

// The README's Python gateway, run as it stands against a real daemon: an
// allowed sender is handed on, an unknown one gets the challenge, and a
// wrong token is logged as an error instead of looking like an outage.
func TestREADMEPythonGateway(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("python3 is not installed")
		}
		t.Skip("python3 is not installed")
	}
	dir := t.TempDir()
	script := filepath.Join(dir, "gateway.py")
	if err := os.WriteFile(script, []byte(readmeBlock(t, "### A Python gateway", "python")), 0o600); err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	d := startServe(t, home)
	// As the README's comment says: the raw token, straight into a file.
	tok := run(t, home, "tokens", "create", "--scope", "gateway", "--name", "hermes", "--quiet")
	if tok.code != 0 || !strings.HasPrefix(tok.stdout, "pgt_") || strings.Count(tok.stdout, "\n") != 1 {
		t.Fatalf("tokens create --quiet: exit %d, stdout %q", tok.code, tok.stdout)
	}
	tokenFile := filepath.Join(dir, "pairgate.token")
	os.WriteFile(tokenFile, []byte(tok.stdout), 0o600)
	wrong := filepath.Join(dir, "wrong.token")
	os.WriteFile(wrong, []byte("pgt_not-a-token\n"), 0o600)
	if r := run(t, home, "pairing", "allow", "telegram", "123456789"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	gateway := func(token string, senders ...string) (string, string) {
		t.Helper()
		cmd := exec.Command(python, append([]string{script}, senders...)...)
		cmd.Env = append(os.Environ(), "PAIRGATE_URL="+d.url, "PAIRGATE_TOKEN_FILE="+token)
		var out, errb strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("python3 gateway.py: %v\n%s", err, errb.String())
		}
		return out.String(), errb.String()
	}
	// The token works as soon as tokens create has returned.
	out, _ := gateway(tokenFile, "123456789", "555000111")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || lines[0] != "123456789 -> hand the message to the agent" ||
		!strings.HasPrefix(lines[1], "555000111 -> reply: Access to this assistant needs the owner's approval. Your pairing code: ") {
		t.Fatalf("the README's gateway printed:\n%s", out)
	}
	out, logged := gateway(wrong, "123456789")
	if out != "123456789 -> say nothing (unavailable)\n" || !strings.Contains(logged, "ERROR pairgate refused the request: 401 ") {
		t.Fatalf("with a wrong token the gateway printed %q and logged %q", out, logged)
	}
	var e struct{ Error struct{ Code string } }
	if _, body, ok := strings.Cut(strings.TrimSpace(logged), "401 "); !ok || json.Unmarshal([]byte(body), &e) != nil || e.Error.Code != "unauthorized" {
		t.Errorf("the logged refusal does not carry the API's error: %q", logged)
	}
}
