package main_test

// owner add|remove|list: owners live in the config file's owner.senders,
// which add and remove edit in place.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pairgate/pairgate/config"
)

const reloadHint = "A running pairgate serve takes the change when it reloads its config (kill -HUP <pid>, systemctl reload pairgate).\n"

// ownerJSON is owner list --json, decoded strictly.
type ownerJSON struct {
	Owners []ownerRow `json:"owners"`
}

type ownerRow struct {
	Channel string `json:"channel"`
	Sender  string `json:"sender"`
	Notices bool   `json:"notices"`
}

// readFile returns the file's text and permission bits.
func readFile(t *testing.T, path string) (string, os.FileMode) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data), fi.Mode().Perm()
}

// No config file: owner add creates one, 0600 in a 0700 directory, holding
// only the entry, with the sender in its canonical form; nothing else is
// created.
func TestOwnerAddCreatesTheConfig(t *testing.T) {
	home := filepath.Join(t.TempDir(), "home")
	path := filepath.Join(home, "pairgate.yaml")
	r := devRun(t, home, quietEnv(), "owner", "add", "telegram", "tg:42")
	if want := "owner telegram 42 added to " + path + " (a new file, mode 0600)\n" + reloadHint; r.code != 0 || r.stdout != want || r.stderr != "" {
		t.Fatalf("owner add: exit %d, stderr %q\n%s", r.code, r.stderr, cmp.Diff(want, r.stdout))
	}
	text, mode := readFile(t, path)
	if want := "owner:\n  senders:\n    telegram:\n      - \"42\"\n"; text != want || mode != 0o600 {
		t.Errorf("the new file, mode %04o:\n%s\nwant mode 0600 and\n%s", mode, text, want)
	}
	if fi, err := os.Stat(home); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("the home directory: %v, %v; want mode 0700", fi.Mode(), err)
	}
	cfg, err := config.Load(path)
	if err != nil || !cfg.Owner.IsOwner("telegram", "42") {
		t.Fatalf("the new file does not load with telegram 42 as an owner: %v %+v", err, cfg)
	}
	entries, _ := os.ReadDir(home)
	if len(entries) != 1 {
		t.Errorf("owner add made more than the config file: %v", entries)
	}
	if r := devRun(t, home, quietEnv(), "config", "check"); r.code != 0 {
		t.Errorf("config check of the new file: exit %d\n%s", r.code, r.stderr)
	}
}

// An existing file is edited in place: the entry is added and every other
// byte (comments, blank lines, key order, the file's mode) stays; adding
// an owner again, in any spelling, changes nothing; removing both gives
// the file back as it was.
func TestOwnerAddKeepsTheFile(t *testing.T) {
	home := t.TempDir()
	original := `# pairgate for the kitchen bot
pairing:
  policy: pairing   # ask unknown senders for a code
  limits: {code_ttl: 30m, max_pending: 5}

server:
  listen: 127.0.0.1:7420

owner:
  senders:
    telegram: ["7"]   # Ana
  # notices go to every owner
notify:
  webhook_url: ""
`
	path := writeConfig(t, home, original)
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}

	r := devRun(t, home, quietEnv(), "owner", "add", "whatsapp", "5491155556666@s.whatsapp.net")
	if want := "owner whatsapp +5491155556666 added to " + path + "\n" + reloadHint; r.code != 0 || r.stdout != want {
		t.Fatalf("owner add whatsapp: exit %d, stderr %q\n%s", r.code, r.stderr, cmp.Diff(want, r.stdout))
	}
	want := strings.Replace(original, "    telegram: [\"7\"]   # Ana\n", "    telegram: [\"7\"]   # Ana\n    whatsapp:\n      - \"+5491155556666\"\n", 1)
	text, mode := readFile(t, path)
	if diff := cmp.Diff(want, text); diff != "" || mode != 0o640 {
		t.Fatalf("after owner add whatsapp, mode %04o (want 0640) (-want +got):\n%s", mode, diff)
	}

	r = devRun(t, home, quietEnv(), "owner", "add", "telegram", "tg:42")
	want = strings.Replace(want, `["7"]`, `["7", "42"]`, 1)
	if text, _ := readFile(t, path); r.code != 0 || text != want {
		t.Fatalf("owner add telegram tg:42: exit %d, stderr %q (-want +got):\n%s", r.code, r.stderr, cmp.Diff(want, text))
	}

	for _, sender := range []string{"42", "user:42", " 42 "} {
		var res struct {
			Channel, Sender, File string
			Changed               bool
		}
		devRunJSON(t, home, quietEnv(), &res, "owner", "add", "telegram", sender)
		if res.Changed || res.Sender != "42" || res.File != path {
			t.Errorf("owner add telegram %q again: %+v, want changed false", sender, res)
		}
		r := devRun(t, home, quietEnv(), "owner", "add", "telegram", sender)
		if r.code != 0 || r.stdout != "telegram 42 is already an owner in "+path+"; nothing changed.\n" {
			t.Errorf("owner add telegram %q again: exit %d, stdout %q", sender, r.code, r.stdout)
		}
		if text, _ := readFile(t, path); text != want {
			t.Fatalf("adding an owner again changed the file (-want +got):\n%s", cmp.Diff(want, text))
		}
	}

	r = devRun(t, home, quietEnv(), "owner", "remove", "telegram", "tg:42")
	if want := "owner telegram 42 removed from " + path + "\n" + reloadHint; r.code != 0 || r.stdout != want {
		t.Fatalf("owner remove telegram tg:42: exit %d, stderr %q\n%s", r.code, r.stderr, cmp.Diff(want, r.stdout))
	}
	if r := devRun(t, home, quietEnv(), "owner", "remove", "whatsapp", "+5491155556666"); r.code != 0 {
		t.Fatalf("owner remove whatsapp: exit %d\n%s", r.code, r.stderr)
	}
	if text, mode := readFile(t, path); text != original || mode != 0o640 {
		t.Errorf("after adding and removing both, mode %04o (-original +got):\n%s", mode, cmp.Diff(original, text))
	}
	if matches, _ := filepath.Glob(filepath.Join(home, ".pairgate.yaml.tmp-*")); len(matches) > 0 {
		t.Errorf("temporary files left behind: %v", matches)
	}
}

// Removing a sender who is not listed, or the notice chat, fails (exit 1)
// naming the owners, or the keys to edit by hand, and changes nothing;
// adding the notice chat changes nothing either: it is an owner already.
func TestOwnerRemoveRefused(t *testing.T) {
	home := t.TempDir()
	original := "owner:\n  senders:\n    telegram: [\"7\", \"42\"]\n  channel: signal\n  sender: \"+15555550100\"\n"
	path := writeConfig(t, home, original)
	tests := []struct {
		args  []string
		class string
		want  string
	}{
		{[]string{"telegram", "99"}, "not_found", "telegram 99 is not an owner in " + path + "; the owners on telegram are 42, 7"},
		{[]string{"discord", "80351110224678912"}, "not_found", "discord 80351110224678912 is not an owner in " + path + "; discord has no owners (see pairgate owner list)"},
		{[]string{"signal", "signal:+15555550100"}, "failed",
			"signal +15555550100 is the notice chat (owner.channel and owner.sender in " + path + "), which makes them an owner: change owner.sender there by hand; nothing was changed"},
	}
	for _, tt := range tests {
		args := append([]string{"owner", "remove"}, tt.args...)
		r := devRun(t, home, quietEnv(), args...)
		if r.code != 1 || r.stdout != "" || r.stderr != "pairgate: "+tt.want+"\n" {
			t.Errorf("%q: exit %d, stdout %q\n%s", args, r.code, r.stdout, cmp.Diff("pairgate: "+tt.want+"\n", r.stderr))
		}
		js := devRun(t, home, quietEnv(), append(args, "--json")...)
		var got jsonError
		if err := devStrict([]byte(js.stderr), &got); err != nil || js.code != 1 || got.Error.Code != tt.class {
			t.Errorf("%q --json: exit %d, %v, %+v; want exit 1 and code %s", args, js.code, err, got, tt.class)
		}
	}
	r := devRun(t, home, quietEnv(), "owner", "add", "signal", "+15555550100")
	if want := "signal +15555550100 is already an owner: the notice chat (owner.channel and owner.sender) in " + path + "; nothing changed.\n"; r.code != 0 || r.stdout != want {
		t.Errorf("owner add of the notice chat: exit %d, stderr %q\n%s", r.code, r.stderr, cmp.Diff(want, r.stdout))
	}
	if text, _ := readFile(t, path); text != original {
		t.Errorf("a refused remove changed the file (-want +got):\n%s", cmp.Diff(original, text))
	}
}

// A channel or sender the channel's rules refuse is a usage error (exit 2)
// that touches no file; so is a config file that does not load, which is
// left as it is.
func TestOwnerRefusesBadInput(t *testing.T) {
	home := filepath.Join(t.TempDir(), "home")
	for _, args := range [][]string{
		{"owner", "add", "telegarm", "42"},
		{"owner", "add", "telegram", "@ana"},
		{"owner", "remove", "telegram", "-100123"},
		{"owner", "list", "icq"},
	} {
		if r := devRun(t, home, quietEnv(), args...); r.code != 2 || !strings.Contains(r.stderr, "pairgate: ") {
			t.Errorf("%q: exit %d, stderr %q; want exit 2", args, r.code, r.stderr)
		}
	}
	if _, err := os.Stat(home); err == nil {
		t.Errorf("refused commands created %s", home)
	}

	broken := "owner:\n  senders:\n    telegram: [\"7\"]\n  sendr: \"7\"\n"
	path := writeConfig(t, home, broken)
	r := devRun(t, home, quietEnv(), "owner", "add", "telegram", "42")
	for _, want := range []string{path + `:4:3: unknown key "sendr" in owner`, path + " was not changed: fix it first"} {
		if r.code != 2 || !strings.Contains(r.stderr, want) {
			t.Errorf("owner add to a broken file: exit %d, stderr %q; want exit 2 saying %q", r.code, r.stderr, want)
		}
	}
	if text, _ := readFile(t, path); text != broken {
		t.Errorf("owner add changed a file that does not load:\n%s", text)
	}
}

// owner list prints one owner a line, marking where notices go; --json
// gives the same as {"owners":[…]}; with no owners it says how to add one.
func TestOwnerList(t *testing.T) {
	home := t.TempDir()
	r := devRun(t, home, quietEnv(), "owner", "list")
	if want := "No owners (there is no config file at " + filepath.Join(home, "pairgate.yaml") + "): nobody may run owner commands in chat.\nAdd one with: pairgate owner add <channel> <sender>\n"; r.code != 0 || r.stdout != want {
		t.Errorf("owner list without a config: exit %d\n%s", r.code, cmp.Diff(want, r.stdout))
	}
	r = devRun(t, home, quietEnv(), "owner", "list", "--json")
	if r.code != 0 || r.stdout != "{\n  \"owners\": []\n}\n" {
		t.Errorf("owner list --json without owners: exit %d, stdout %q", r.code, r.stdout)
	}

	writeConfig(t, home, "owner:\n  senders:\n    telegram: [\"tg:7\", \"42\"]\n    signal: [\"+15555550100\"]\n")
	r = devRun(t, home, quietEnv(), "owner", "list")
	if want := "signal    +15555550100  (notices)\ntelegram  42            (notices)\ntelegram  7             (notices)\n"; r.code != 0 || r.stdout != want {
		t.Errorf("owner list, notices to every owner: exit %d\n%s", r.code, cmp.Diff(want, r.stdout))
	}

	path := writeConfig(t, home, "owner:\n  senders:\n    telegram: [\"tg:7\", \"42\"]\n    signal: [\"+15555550100\"]\n  channel: telegram\n  account: Work\n  sender: \"7\"\n")
	r = devRun(t, home, quietEnv(), "owner", "list")
	if want := "signal    +15555550100\ntelegram  42\ntelegram  7             (notices, from account work)\n"; r.code != 0 || r.stdout != want {
		t.Errorf("owner list with a notice chat: exit %d\n%s", r.code, cmp.Diff(want, r.stdout))
	}
	var got ownerJSON
	devRunJSON(t, home, quietEnv(), &got, "owner", "list", "telegram")
	want := ownerJSON{Owners: []ownerRow{{"telegram", "42", false}, {"telegram", "7", true}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("owner list telegram --json (-want +got):\n%s", diff)
	}
	r = devRun(t, home, quietEnv(), "owner", "list", "discord")
	if want := "No owners on discord in " + path + ": nobody may run owner commands in chat.\nAdd one with: pairgate owner add discord <sender>\n"; r.code != 0 || r.stdout != want {
		t.Errorf("owner list discord: exit %d\n%s", r.code, cmp.Diff(want, r.stdout))
	}
}

// --config names the file to edit, wherever it is, created if missing; a
// symbolic link stays one, its target edited. The home's own file is not
// touched.
func TestOwnerOtherConfigFile(t *testing.T) {
	home := t.TempDir()
	homeCfg := writeConfig(t, home, "owner:\n  senders:\n    telegram: [\"7\"]\n")
	other := filepath.Join(t.TempDir(), "etc", "pairgate.yaml")

	r := devRun(t, home, quietEnv(), "--config", other, "owner", "add", "telegram", "42")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "owner telegram 42 added to "+other+" (a new file, mode 0600)\n") {
		t.Fatalf("owner add --config: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if text, mode := readFile(t, other); mode != 0o600 || text != "owner:\n  senders:\n    telegram:\n      - \"42\"\n" {
		t.Errorf("%s, mode %04o:\n%s", other, mode, text)
	}
	if fi, err := os.Stat(filepath.Dir(other)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("the directory made for --config: %v, %v; want mode 0700", fi.Mode(), err)
	}
	if text, _ := readFile(t, homeCfg); text != "owner:\n  senders:\n    telegram: [\"7\"]\n" {
		t.Errorf("the home's config changed:\n%s", text)
	}
	var got ownerJSON
	devRunJSON(t, home, quietEnv(), &got, "--config", other, "owner", "list")
	if len(got.Owners) != 1 || got.Owners[0].Sender != "42" {
		t.Errorf("owner list --config %s: %+v", other, got)
	}
	devRunJSON(t, home, quietEnv(), &got, "owner", "list")
	if len(got.Owners) != 1 || got.Owners[0].Sender != "7" {
		t.Errorf("owner list of the home: %+v", got)
	}

	link := filepath.Join(t.TempDir(), "pairgate.yaml")
	if err := os.Symlink(other, link); err != nil {
		t.Fatal(err)
	}
	if r := devRun(t, home, quietEnv(), "--config", link, "owner", "add", "telegram", "43"); r.code != 0 {
		t.Fatalf("owner add through a link: exit %d\n%s", r.code, r.stderr)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the link was replaced: %v %v", fi.Mode(), err)
	}
	if text, _ := readFile(t, other); !strings.Contains(text, `- "43"`) {
		t.Errorf("the link's target was not edited:\n%s", text)
	}
}

// owner add completes channels; owner remove the owners listed on the
// channel in the config.
func TestOwnerCompletion(t *testing.T) {
	home := t.TempDir()
	writeConfig(t, home, "owner:\n  senders:\n    telegram: [\"701\", \"tg:702\"]\n    signal: [\"+15555550100\"]\n")
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{[]string{"owner", "add", "tel"}, []string{"telegram"}},
		{[]string{"owner", "add", "telegram", ""}, nil},
		{[]string{"owner", "remove", "telegram", ""}, []string{"701", "702"}},
		{[]string{"owner", "remove", "telegram", "702"}, []string{"702"}},
		{[]string{"owner", "list", "si"}, []string{"signal"}},
	} {
		got, directive := complete(t, home, tt.args...)
		if diff := cmp.Diff(tt.want, got); diff != "" || directive != noFiles {
			t.Errorf("__complete %q: directive %d (-want +got):\n%s", tt.args, directive, diff)
		}
	}
}
