package main_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pairgate/pairgate/api"
)

func writeConfig(t *testing.T, home, yaml string) string {
	t.Helper()
	if err := os.MkdirAll(home, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(home, "pairgate.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// A sender admitted by allow_from is listed by pairing allowed (via
// config), and pairing revoke says it has to go from the config file.
func TestAllowFromInListings(t *testing.T) {
	home := t.TempDir()
	cfg := writeConfig(t, home, "pairing:\n  channels:\n    telegram:\n      allow_from: [\"tg:42\"]\n      accounts:\n        work: {allow_from: [\"43\"]}\n")
	if r := run(t, home, "pairing", "allow", "telegram", "50"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	r := run(t, home, "pairing", "allowed")
	rows := regexp.MustCompile(`(?m)^telegram +\* +42 +- +- +- +config +-$`)
	if r.code != 0 || !rows.MatchString(r.stdout) || !regexp.MustCompile(`(?m)^telegram +work +43 +- +- +- +config +-$`).MatchString(r.stdout) ||
		!regexp.MustCompile(`(?m)^telegram +default +50 +- +\d{4}`).MatchString(r.stdout) ||
		!strings.Contains(r.stdout, "VIA config: admitted by allow_from in "+cfg) {
		t.Errorf("pairing allowed: exit %d\n%s", r.code, r.stdout)
	}
	var list struct{ Allowed []api.AllowedSender }
	runJSON(t, home, &list, "pairing", "allowed", "telegram", "--account", "work")
	if len(list.Allowed) != 2 || list.Allowed[0].Via != api.ViaConfig || list.Allowed[0].Config != "pairing.channels.telegram.allow_from" ||
		list.Allowed[1].Sender != "43" || list.Allowed[1].Config != "pairing.channels.telegram.accounts.work.allow_from" {
		t.Errorf("pairing allowed telegram --account work --json: %+v", list.Allowed)
	}

	r = run(t, home, "pairing", "revoke", "telegram", "42")
	for _, want := range []string{"42 on telegram/default is admitted by pairing.channels.telegram.allow_from in the configuration", "remove them there", cfg} {
		if r.code != 1 || !strings.Contains(r.stderr, want) {
			t.Errorf("revoke of a config sender: exit %d, stderr %q; want exit 1 mentioning %q", r.code, r.stderr, want)
		}
	}
	var d api.Decision
	runJSON(t, home, &d, "admit", "telegram", "42", "--account", "work")
	if d.Reason != api.ReasonAllowed {
		t.Errorf("admit of a config sender: %+v", d)
	}
}

// Revoking a sender who is in the store and in allow_from revokes the
// store's entry and says the config still admits them.
func TestRevokeOfASenderAlsoInTheConfig(t *testing.T) {
	home := t.TempDir()
	cfg := writeConfig(t, home, "pairing:\n  channels:\n    telegram:\n      allow_from: [\"42\"]\n")
	run(t, home, "pairing", "allow", "telegram", "42")
	r := run(t, home, "pairing", "revoke", "telegram", "42")
	want := "Revoked 42 on telegram/default in the store, but they are still admitted by pairing.channels.telegram.allow_from in " + cfg + ": remove them there too.\n"
	if r.code != 0 || r.stdout != want {
		t.Errorf("revoke: exit %d, stdout %q; want %q", r.code, r.stdout, want)
	}
}

// config check prints every problem of a file at once, each with
// file:line:col, in file order, and exits 2; a good file is "ok" with a
// summary; no file at all is fine (the defaults).
func TestConfigCheck(t *testing.T) {
	home := t.TempDir()
	r := run(t, home, "config", "check")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "ok: no config file at "+filepath.Join(home, "pairgate.yaml")) {
		t.Errorf("config check without a file: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}

	path := writeConfig(t, home, `pairing:
  polcy: open
  limits:
    max_pending: three
    lockout: 0s
  channels:
    telegram:
      allow_from: ["123", bob]
server: {lisen: ":1"}
`)
	r = run(t, home, "config", "check")
	want := "pairgate: " + path + " has 5 problems:\n" +
		path + `:2:3: unknown key "polcy" in pairing (valid: storage, setup_code, public_url, ws_cleartext_allow, policy, limits, channels)` + "\n" +
		path + `:4:18: pairing.limits.max_pending: expected a whole number, got "three"` + "\n" +
		path + `:5:5: pairing.limits.lockout: must be positive, got 0s` + "\n" +
		path + `:8:27: pairing.channels.telegram.allow_from[1]: telegram sender "bob": want a numeric Telegram user id such as 123456789: invalid sender` + "\n" +
		path + `:9:10: unknown key "lisen" in server (valid: listen)` + "\n"
	if r.code != 2 || r.stderr != want || r.stdout != "" {
		t.Errorf("config check of a broken file: exit %d\nstdout %q\nstderr:\n%s\nwant exit 2 and stderr:\n%s", r.code, r.stdout, r.stderr, want)
	}
	var out struct {
		OK       bool
		File     string
		Problems []string
	}
	jr := run(t, home, "config", "check", "--json")
	if jr.code != 2 {
		t.Errorf("config check --json of a broken file: exit %d", jr.code)
	}
	if err := json.Unmarshal([]byte(jr.stdout), &out); err != nil || out.OK || len(out.Problems) != 5 || out.File != path {
		t.Errorf("config check --json: %+v, %v\n%s", out, err, jr.stdout)
	}

	good := writeConfig(t, home, "pairing:\n  channels:\n    telegram: {policy: allowlist, allow_from: [\"42\", \"43\"]}\n")
	r = run(t, home, "--config", good, "config", "check")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "ok: "+good+"\n  policy:     pairing (telegram: allowlist)\n  allow_from: 2 senders on 1 channel\n") {
		t.Errorf("config check of a good file: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := run(t, home, "--config", filepath.Join(home, "missing.yaml"), "config", "check"); r.code != 2 || !strings.Contains(r.stderr, "no such file") {
		t.Errorf("config check of a missing --config file: exit %d, %q", r.code, r.stderr)
	}
}
