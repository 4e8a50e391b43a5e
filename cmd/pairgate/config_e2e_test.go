package main_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pairgate/pairgate/pairing"
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
	var list struct{ Allowed []pairing.AllowedSender }
	runJSON(t, home, &list, "pairing", "allowed", "telegram", "--account", "work")
	if len(list.Allowed) != 2 || list.Allowed[0].Via != pairing.ViaConfig || list.Allowed[0].Config != "pairing.channels.telegram.allow_from" ||
		list.Allowed[1].Sender != "43" || list.Allowed[1].Config != "pairing.channels.telegram.accounts.work.allow_from" {
		t.Errorf("pairing allowed telegram --account work --json: %+v", list.Allowed)
	}

	r = run(t, home, "pairing", "revoke", "telegram", "42")
	for _, want := range []string{"42 on telegram/default is admitted by pairing.channels.telegram.allow_from in the configuration", "remove them there", cfg} {
		if r.code != 1 || !strings.Contains(r.stderr, want) {
			t.Errorf("revoke of a config sender: exit %d, stderr %q; want exit 1 mentioning %q", r.code, r.stderr, want)
		}
	}
	var d pairing.Decision
	runJSON(t, home, &d, "admit", "telegram", "42", "--account", "work")
	if d.Reason != pairing.ReasonAllowed {
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
