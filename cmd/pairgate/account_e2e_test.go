package main_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pairgate/pairgate/api"
)

// TestAccountNames drives the binary with account names SPEC section 1
// refuses (exit 2, a message that names the account and the rule, not the
// sender) and with names it folds (Work is work, on the command line and
// in the config alike).
func TestAccountNames(t *testing.T) {
	home := t.TempDir()
	const rule = "want 1–64 characters of a-z, 0-9, _ and -"
	refused := []struct {
		args    []string
		account string
	}{
		{[]string{"admit", "telegram", "42", "--account", "*"}, "*"},
		{[]string{"admit", "telegram", "42", "--account", "a.b"}, "a.b"},
		{[]string{"pairing", "allow", "telegram", "42", "--account", "../x"}, "../x"},
		{[]string{"pairing", "approve", "telegram", "ABCD2345", "--account", ">"}, ">"},
		{[]string{"pairing", "revoke", "telegram", "42", "--account", "a b"}, "a b"},
		{[]string{"pairing", "list", "telegram", "--account", "wörk"}, "wörk"},
	}
	for _, tt := range refused {
		r := run(t, home, tt.args...)
		if r.code != 2 {
			t.Errorf("pairgate %q: exit %d, want 2 (stderr %q)", tt.args, r.code, r.stderr)
		}
		for _, want := range []string{`account "` + tt.account + `"`, rule} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("pairgate %q: stderr %q does not say %q", tt.args, r.stderr, want)
			}
		}
		if strings.Contains(r.stderr, "42") || strings.Contains(r.stderr, "sender") {
			t.Errorf("pairgate %q: stderr %q blames the sender for the account", tt.args, r.stderr)
		}
	}
	var allowed struct{ Allowed []api.AllowedSender }
	runJSON(t, home, &allowed, "pairing", "allowed", "--include-revoked")
	if len(allowed.Allowed) != 0 {
		t.Fatalf("a refused account let a sender in: %+v", allowed.Allowed)
	}

	// Allowed on Work, admitted on work, listed as work.
	if r := run(t, home, "pairing", "allow", "telegram", "42", "--account", "Work"); r.code != 0 {
		t.Fatalf("allow --account Work: exit %d %s", r.code, r.stderr)
	}
	var d api.Decision
	runJSON(t, home, &d, "admit", "telegram", "42", "--account", "work")
	if d.Verdict != api.Admit {
		t.Errorf("allowed on Work, admit on work: %+v", d)
	}
	runJSON(t, home, &allowed, "pairing", "allowed", "telegram", "--account", "WORK")
	if len(allowed.Allowed) != 1 || allowed.Allowed[0].Account != "work" {
		t.Errorf("allowed on WORK: %+v, want sender 42 on work", allowed.Allowed)
	}

	// A config that names the account Work applies to --account work.
	cfg := "pairing:\n  channels:\n    telegram:\n      accounts:\n        Work: {policy: open}\n"
	if err := os.WriteFile(filepath.Join(home, "pairgate.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	runJSON(t, home, &d, "admit", "telegram", "7", "--account", "work")
	if d.Verdict != api.Admit || d.Reason != api.ReasonOpen {
		t.Errorf("config Work is open, admit --account work: %+v", d)
	}
	// Two spellings of one account in the config are refused, naming both.
	cfg = "pairing:\n  channels:\n    telegram:\n      accounts:\n        Work: {policy: open}\n        work: {policy: disabled}\n"
	if err := os.WriteFile(filepath.Join(home, "pairgate.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	r := run(t, home, "admit", "telegram", "7", "--account", "work")
	if r.code != 2 || !strings.Contains(r.stderr, "accounts.work") || !strings.Contains(r.stderr, "Work") {
		t.Errorf("config with Work and work: exit %d, stderr %q; want exit 2 naming both", r.code, r.stderr)
	}
}
