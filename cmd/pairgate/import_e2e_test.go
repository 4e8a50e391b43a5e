package main_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/pairgate/pairgate/api"
)

// hermesHome writes a hermes-agent home in the documented shape of its
// pairing files: {platform}-approved.json ({user_id: {user_name,
// approved_at}}) and {platform}-pending.json under platforms/pairing/, and
// a profile's under profiles/<name>/platforms/pairing/.
func hermesHome(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	write := func(rel, body string) {
		t.Helper()
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("platforms/pairing/telegram-approved.json",
		`{"123456789": {"user_name": "Alice", "approved_at": 1764000000.5}, "987654321": {"user_name": "Bob", "approved_at": 1764000001}, "@carol": {"user_name": "Carol"}}`)
	write("platforms/pairing/telegram-pending.json", `{"ABCD2345": {"user_id": "555", "user_name": "Dan", "created_at": 1764000002}}`)
	write("platforms/pairing/irc-approved.json", `{"x": {"user_name": "Eve"}}`)
	write("profiles/Work/platforms/pairing/whatsapp-approved.json", `{"+1 (555) 010-2000": {"user_name": "Fay", "approved_at": "2026-11-01T10:00:00Z"}}`)
	return dir
}

// pairgate import hermes: a dry run by default that names what it would
// do (senders per channel and account, ids normalised, entries refused and
// why, pending requests to ask again); --apply allows the senders via
// import; a second run changes nothing; a sender revoked in pairgate stays
// revoked; a broken source file stops it with its path and nothing written.
func TestImportHermes(t *testing.T) {
	src := hermesHome(t)
	home := t.TempDir()

	dry := run(t, home, "import", "hermes", src)
	if dry.code != 0 {
		t.Fatalf("dry run: exit %d\n%s", dry.code, dry.stderr)
	}
	for _, want := range []string{
		"would import from hermes (4 files)",
		"telegram/default: 2 new",
		"whatsapp/work: 1 new",
		"normalised whatsapp/work +1 (555) 010-2000 -> +15550102000",
		`refused x in ` + filepath.Join(src, "platforms/pairing/irc-approved.json") + `: platform "irc" has no pairgate channel`,
		"refused @carol",
		"pending telegram/default 555: ask them to write again",
		"Nothing was written",
	} {
		if !strings.Contains(dry.stdout, want) {
			t.Errorf("dry run output lacks %q:\n%s", want, dry.stdout)
		}
	}
	if got := allowed(t, home); len(got) != 0 {
		t.Fatalf("the dry run wrote: %v", got)
	}

	if r := run(t, home, "import", "hermes", src, "--apply"); r.code != 0 || !strings.Contains(r.stdout, "imported from hermes") {
		t.Fatalf("--apply: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	want := []string{"telegram/default 123456789 Alice", "telegram/default 987654321 Bob", "whatsapp/work +15550102000 Fay"}
	if diff := cmp.Diff(want, allowed(t, home)); diff != "" {
		t.Errorf("allowlist after --apply (-want +got):\n%s", diff)
	}
	var l struct{ Allowed []api.AllowedSender }
	runJSON(t, home, &l, "pairing", "allowed")
	for _, e := range l.Allowed {
		if e.Via != api.ViaImport || e.ApprovedBy != "import:hermes" {
			t.Errorf("%s/%s %s: via %q by %q, want via import by import:hermes (the audit trail's source)", e.Channel, e.Account, e.Sender, e.Via, e.ApprovedBy)
		}
	}

	// Revoked in pairgate after the import: a second run leaves it so,
	// and changes nothing else.
	if r := run(t, home, "pairing", "revoke", "telegram", "987654321"); r.code != 0 {
		t.Fatalf("revoke: exit %d\n%s", r.code, r.stderr)
	}
	again := run(t, home, "import", "hermes", src, "--apply")
	if again.code != 0 || !strings.Contains(again.stdout, "telegram/default: 0 new, 1 already allowed, 1 revoked in pairgate (left revoked)") {
		t.Errorf("second --apply: exit %d\n%s%s", again.code, again.stdout, again.stderr)
	}
	if diff := cmp.Diff([]string{"telegram/default 123456789 Alice", "whatsapp/work +15550102000 Fay"}, allowed(t, home)); diff != "" {
		t.Errorf("allowlist after a second --apply (-want +got):\n%s", diff)
	}

	// A broken file: exit 2 naming it, nothing written.
	broken := filepath.Join(src, "platforms/pairing/signal-approved.json")
	if err := os.WriteFile(broken, []byte(`{"+15550100000": {"user_name": "Gus"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	fresh := t.TempDir()
	r := run(t, fresh, "import", "hermes", src, "--apply")
	if r.code != 2 || !strings.Contains(r.stderr, broken) || !strings.Contains(r.stderr, "nothing imported") {
		t.Errorf("import with a broken file: exit %d, stderr %q; want 2 naming %s", r.code, r.stderr, broken)
	}
	if got := allowed(t, fresh); len(got) != 0 {
		t.Errorf("an import stopped by a broken file wrote: %v", got)
	}

	for _, args := range [][]string{{"import", "nexo", src}, {"import", "hermes", t.TempDir()}} {
		if r := run(t, home, args...); r.code != 2 {
			t.Errorf("pairgate %v: exit %d, want 2\n%s", args, r.code, r.stderr)
		}
	}
}

// pairgate import openclaw reads the JSON era's credentials/ files in
// their documented shape: <channel>[-<account>]-allowFrom.json and
// <channel>-pairing.json.
func TestImportOpenClaw(t *testing.T) {
	src := t.TempDir()
	cred := filepath.Join(src, "credentials")
	if err := os.MkdirAll(cred, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{
		"telegram-allowFrom.json":      `{"version": 1, "allowFrom": ["123456789", 987654321, "*"]}`,
		"whatsapp-work-allowFrom.json": `{"version": 1, "allowFrom": ["+1 (555) 010-2000"]}`,
		"telegram-pairing.json":        `{"version": 1, "requests": [{"id": "555", "code": "ABCD2345", "createdAt": "2026-11-01T10:00:00Z", "lastSeenAt": "2026-11-01T10:00:00Z", "meta": {}}]}`,
	} {
		if err := os.WriteFile(filepath.Join(cred, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	home := t.TempDir()
	dry := run(t, home, "import", "openclaw", src)
	for _, want := range []string{"would import from openclaw (3 files)", "telegram/default: 2 new", "whatsapp/work: 1 new",
		`refused * in`, "set the channel's policy to open", "pending telegram/default 555"} {
		if !strings.Contains(dry.stdout, want) {
			t.Errorf("dry run output lacks %q:\n%s%s", want, dry.stdout, dry.stderr)
		}
	}
	if r := run(t, home, "import", "openclaw", src, "--apply"); r.code != 0 {
		t.Fatalf("--apply: exit %d\n%s", r.code, r.stderr)
	}
	want := []string{"telegram/default 123456789 ", "telegram/default 987654321 ", "whatsapp/work +15550102000 "}
	if diff := cmp.Diff(want, allowed(t, home)); diff != "" {
		t.Errorf("allowlist after --apply (-want +got):\n%s", diff)
	}
}
