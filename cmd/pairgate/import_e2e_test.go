package main_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pairgate/pairgate/api"
	"github.com/pairgate/pairgate/internal/sqlitetest"
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
	sqlitetest.Create(t, filepath.Join(src, "state", "openclaw.sqlite"),
		sqlitetest.OpenClawState,
		`INSERT INTO channel_pairing_allow_entries VALUES ('discord', 'default', '123456789012345678', 0, 1764000000000)`)
	if err := os.MkdirAll(filepath.Join(src, "devices"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "devices", "paired.json"), []byte(`{"d1": {"deviceId": "d1", "displayName": "Ana's phone",
		"platform": "ios", "approvedAtMs": 1764000000000, "tokens": {"operator": {"token": "tok-SECRET", "role": "operator"}}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	dry := run(t, home, "import", "openclaw", src)
	for _, want := range []string{"would import from openclaw (5 files)", "telegram/default: 2 new", "whatsapp/work: 1 new",
		"discord/default: 1 new", `refused * in`, "set the channel's policy to open", "pending telegram/default 555",
		"device Ana's phone (ios, d1): pair it again with a setup code (pairgate setup-code)"} {
		if !strings.Contains(dry.stdout, want) {
			t.Errorf("dry run output lacks %q:\n%s%s", want, dry.stdout, dry.stderr)
		}
	}
	if js := run(t, home, "import", "openclaw", src, "--json"); strings.Contains(dry.stdout+js.stdout, "tok-SECRET") {
		t.Errorf("a device token of OpenClaw's is in import's output:\n%s", js.stdout)
	}
	if r := run(t, home, "import", "openclaw", src, "--apply"); r.code != 0 {
		t.Fatalf("--apply: exit %d\n%s", r.code, r.stderr)
	}
	want := []string{"discord/default 123456789012345678 ", "telegram/default 123456789 ", "telegram/default 987654321 ", "whatsapp/work +15550102000 "}
	if diff := cmp.Diff(want, allowed(t, home)); diff != "" {
		t.Errorf("allowlist after --apply (-want +got):\n%s", diff)
	}
}

// pairgate import nexo reads pairing.db in its documented shape: a sender
// nexo had revoked comes over revoked (on record, never admitted); one
// pairgate allows already stays allowed, with a hint; a second run
// changes nothing; a damaged file stops it with its path.
func TestImportNexo(t *testing.T) {
	db := filepath.Join(t.TempDir(), "memory", "pairing.db")
	sqlitetest.Create(t, db,
		sqlitetest.NexoPairing,
		`INSERT INTO pairing_allow_from VALUES
			('whatsapp', 'personal', '+573110000001', '2026-04-25T13:21:00Z', 'cli', NULL),
			('whatsapp', 'personal', '+573110000002', '2026-04-25T13:22:00Z', 'seed', '2026-05-01T09:00:00Z'),
			('telegram', 'default', '42', '2026-04-25T13:22:00Z', 'cli', '2026-05-01T09:00:00Z')`,
		`INSERT INTO pairing_pending VALUES ('whatsapp', 'personal', '+573110000003', 'K7M9PQ2X', '2026-04-25T13:21:00Z', NULL),
			('whatsapp', 'personal', '+573110000004', 'HJKM2345', strftime('%Y-%m-%dT%H:%M:%SZ', 'now', '-5 minutes'), '{"name": "Ivo"}')`)
	home := t.TempDir()
	if r := run(t, home, "pairing", "allow", "telegram", "42"); r.code != 0 {
		t.Fatalf("allow: exit %d\n%s", r.code, r.stderr)
	}
	dry := run(t, home, "import", "nexo", filepath.Dir(db))
	for _, want := range []string{
		"would import from nexo (1 file)",
		"whatsapp/personal: 1 new, 0 already allowed, 0 revoked in pairgate (left revoked), 1 revoked in nexo (recorded revoked)",
		"kept telegram/default 42 allowed: nexo had revoked them (pairgate pairing revoke telegram 42 --account default, if it should stand)",
		"pending whatsapp/personal +573110000003: ask them to write again (its code expired at 2026-04-25T14:21:00Z, code_ttl (1h0m0s) after it was made)",
		"pending whatsapp/personal +573110000004: comes over with the code they hold, valid until",
	} {
		if !strings.Contains(dry.stdout, want) {
			t.Errorf("dry run output lacks %q:\n%s%s", want, dry.stdout, dry.stderr)
		}
	}
	apply := run(t, home, "import", "nexo", db, "--apply")
	if apply.code != 0 || !strings.Contains(apply.stdout, "pending whatsapp/personal +573110000004: came over with the code they hold") {
		t.Fatalf("--apply: exit %d\n%s%s", apply.code, apply.stdout, apply.stderr)
	}
	for _, out := range []string{dry.stdout, apply.stdout, run(t, home, "import", "nexo", db, "--json").stdout} {
		if strings.Contains(out, "HJKM2345") || strings.Contains(out, "K7M9PQ2X") {
			t.Errorf("a code of nexo's is in import's output:\n%s", out)
		}
	}
	// The owner approves the imported request with the code nexo gave.
	var a api.Approval
	runJSON(t, home, &a, "pairing", "approve", "whatsapp", "hjkm-2345", "--account", "personal")
	if a.Allowed.Sender != "+573110000004" || a.Allowed.Account != "personal" || a.Allowed.Name != "Ivo" {
		t.Errorf("approve with nexo's code: %+v", a)
	}
	state := func() []string {
		var out []string
		for _, e := range allowedSenders(t, home) {
			line := e.Channel + "/" + e.Account + " " + e.Sender + " via " + string(e.Via)
			if e.RevokedAt != nil {
				line += " revoked by " + e.RevokedBy
			}
			out = append(out, line)
		}
		return out
	}
	want := []string{"telegram/default 42 via manual", "whatsapp/personal +573110000001 via import",
		"whatsapp/personal +573110000002 via import revoked by import:nexo", "whatsapp/personal +573110000004 via code"}
	if diff := cmp.Diff(want, state()); diff != "" {
		t.Errorf("allowlist after --apply (-want +got):\n%s", diff)
	}
	var d api.Decision
	runJSON(t, home, &d, "admit", "whatsapp", "+573110000002", "--account", "personal")
	if d.Verdict == api.Admit {
		t.Errorf("a sender nexo had revoked is admitted after the import: %+v", d)
	}
	again := run(t, home, "import", "nexo", db, "--apply", "--json")
	var rep struct {
		Senders []struct{ Sender, State string }
	}
	if err := json.Unmarshal([]byte(again.stdout), &rep); err != nil {
		t.Fatalf("second --apply --json: %v\n%s%s", err, again.stdout, again.stderr)
	}
	for _, s := range rep.Senders {
		if s.State != "already allowed" && s.State != "revoked in pairgate" {
			t.Errorf("second --apply: %s is %q; want nothing changed", s.Sender, s.State)
		}
	}
	if diff := cmp.Diff(want, state()); diff != "" {
		t.Errorf("allowlist after a second --apply (-want +got):\n%s", diff)
	}

	// A damaged file: exit 2 naming it, nothing written.
	data, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	broken := filepath.Join(t.TempDir(), "pairing.db")
	os.WriteFile(broken, data[:len(data)/2], 0o600)
	fresh := t.TempDir()
	if r := run(t, fresh, "import", "nexo", broken, "--apply"); r.code != 2 || !strings.Contains(r.stderr, broken) {
		t.Errorf("import of a damaged pairing.db: exit %d, stderr %q; want 2 naming it", r.code, r.stderr)
	}
	if got := allowed(t, fresh); len(got) != 0 {
		t.Errorf("an import stopped by a damaged file wrote: %v", got)
	}
}
