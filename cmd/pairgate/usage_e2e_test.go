package main_test

// Usage errors (SPEC section 4): every command, run wrong, exits 2 and names
// what is wrong; with --json the error is {"error":{"code","message"}} on
// stderr with the same message.

import (
	"bytes"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// quietEnv is devEnv without the debug log, so that stderr holds only what
// the command reports.
func quietEnv() []string {
	var env []string
	for _, kv := range devEnv() {
		if !strings.HasPrefix(kv, "PAIRGATE_LOG_LEVEL=") {
			env = append(env, kv)
		}
	}
	return env
}

// jsonError is the error object of SPEC section 4, decoded strictly.
type jsonError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// commandPaths walks the command tree as `--help` shows it and returns
// every command that does something (the leaves: "pairing approve", not
// "pairing"), plus the groups themselves, which take no arguments.
func commandPaths(t *testing.T, home string) []string {
	t.Helper()
	var paths []string
	var walk func(path []string)
	walk = func(path []string) {
		r := devRun(t, home, quietEnv(), append(slices.Clone(path), "--help")...)
		if r.code != 0 {
			t.Fatalf("pairgate %s --help: exit %d\n%s", strings.Join(path, " "), r.code, r.stderr)
		}
		_, list, found := strings.Cut(r.stdout, "Available Commands:\n")
		if len(path) > 0 {
			paths = append(paths, strings.Join(path, " "))
		}
		if !found {
			return
		}
		list, _, _ = strings.Cut(list, "\n\n")
		for _, line := range strings.Split(list, "\n") {
			if f := strings.Fields(line); len(f) > 0 {
				walk(append(slices.Clone(path), f[0]))
			}
		}
	}
	walk(nil)
	return paths
}

func TestUsageErrors(t *testing.T) {
	home := t.TempDir()
	if r := devRun(t, home, quietEnv(), "pairing", "list"); r.code != 0 { // make the home, its key and its database
		t.Fatalf("pairing list: exit %d\n%s", r.code, r.stderr)
	}
	bad := t.TempDir() + "/senders.txt"
	if err := os.WriteFile(bad, []byte("# friends\n123\n\nbob\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		cmd   string   // the command under test
		args  []string // its command line
		code  int      // exit code
		class string   // the JSON error code
		names []string // what stderr must say: the wrong argument, and the fix where there is one
		not   []string // what it must not say (the wrong argument blamed)
	}{
		{cmd: "", args: []string{}, code: 2, class: "usage", names: []string{"needs a subcommand", "pairing"}},
		{cmd: "", args: []string{"frobnicate"}, code: 2, class: "usage", names: []string{`unknown command "frobnicate"`}},
		{cmd: "", args: []string{"pairng"}, code: 2, class: "usage", names: []string{`unknown command "pairng"`, `did you mean "pairing"?`}},
		{cmd: "", args: []string{"--bogus"}, code: 2, class: "usage", names: []string{"--bogus"}},
		{cmd: "", args: []string{"--log-level", "loud", "pairing", "list"}, code: 2, class: "usage", names: []string{"--log-level", `"loud"`}},
		{cmd: "help", args: []string{"help", "frob"}, code: 2, class: "usage", names: []string{`"frob"`}},
		{cmd: "completion", args: []string{"completion"}, code: 2, class: "usage", names: []string{"needs a subcommand", "bash"}},
		{cmd: "completion", args: []string{"completion", "nosh"}, code: 2, class: "usage", names: []string{`unknown command "nosh"`}},
		{cmd: "completion bash", args: []string{"completion", "bash", "x"}, code: 2, class: "usage", names: []string{`unexpected argument "x"`}},
		{cmd: "completion zsh", args: []string{"completion", "zsh", "x"}, code: 2, class: "usage", names: []string{`unexpected argument "x"`}},
		{cmd: "completion fish", args: []string{"completion", "fish", "x"}, code: 2, class: "usage", names: []string{`unexpected argument "x"`}},
		{cmd: "completion powershell", args: []string{"completion", "powershell", "x"}, code: 2, class: "usage", names: []string{`unexpected argument "x"`}},
		{cmd: "serve", args: []string{"serve", "now"}, code: 2, class: "usage", names: []string{`unexpected argument "now"`}},
		{cmd: "serve", args: []string{"serve", "--listen"}, code: 2, class: "usage", names: []string{"--listen"}},
		{cmd: "admit", args: []string{"admit", "telegarm", "123"}, code: 2, class: "invalid_input",
			names: []string{`unknown channel "telegarm"`, "channels: telegram, whatsapp"}, not: []string{"123", "sender"}},
		{cmd: "admit", args: []string{"admit", "telegram", "bob"}, code: 2, class: "invalid_input", names: []string{`"bob"`, "numeric Telegram user id"}},
		{cmd: "admit", args: []string{"admit", "telegram", "123", "--account", "bad account"}, code: 2, class: "invalid_input",
			names: []string{`account "bad account"`}, not: []string{"123", "sender"}},
		{cmd: "admit", args: []string{"admit", "telegram"}, code: 2, class: "usage", names: []string{"missing <sender>"}},
		{cmd: "pairing", args: []string{"pairing"}, code: 2, class: "usage", names: []string{"needs a subcommand", "approve"}},
		{cmd: "pairing", args: []string{"pairing", "frob"}, code: 2, class: "usage", names: []string{`unknown command "frob" for "pairgate pairing"`}},
		{cmd: "pairing", args: []string{"pairing", "aprove"}, code: 2, class: "usage", names: []string{`did you mean "approve"?`}},
		{cmd: "pairing list", args: []string{"pairing", "list", "telegarm"}, code: 2, class: "invalid_input", names: []string{`"telegarm"`}},
		{cmd: "pairing list", args: []string{"pairing", "list", "telegram", "extra"}, code: 2, class: "usage", names: []string{`unexpected argument "extra"`}},
		{cmd: "pairing approve", args: []string{"pairing", "approve", "telegram"}, code: 2, class: "usage", names: []string{"missing <CODE|REQUEST_ID>"}},
		{cmd: "pairing approve", args: []string{"pairing", "approve", "telegram", "ABC"}, code: 2, class: "invalid_input", names: []string{"pairing code has 8 characters"}},
		{cmd: "pairing reject", args: []string{"pairing", "reject", "icq", "ABCD2345"}, code: 2, class: "invalid_input", names: []string{`unknown channel "icq"`}},
		{cmd: "pairing allow", args: []string{"pairing", "allow", "telegram"}, code: 2, class: "usage", names: []string{"missing <sender>"}},
		{cmd: "pairing allow", args: []string{"pairing", "allow", "telegram", "bob"}, code: 2, class: "invalid_input", names: []string{`"bob"`}},
		{cmd: "pairing revoke", args: []string{"pairing", "revoke", "telegram", "1", "2"}, code: 2, class: "usage", names: []string{`unexpected argument "2"`}},
		{cmd: "pairing allowed", args: []string{"pairing", "allowed", "--include-revoked=maybe"}, code: 2, class: "usage", names: []string{"--include-revoked"}},
		{cmd: "pairing clear-pending", args: []string{"pairing", "clear-pending", "--account", "work"}, code: 2, class: "invalid_input", names: []string{"--account needs a channel"}},
		{cmd: "pairing unlock", args: []string{"pairing", "unlock"}, code: 2, class: "usage", names: []string{"missing <channel>"}},
		{cmd: "pairing unlock", args: []string{"pairing", "unlock", "telegarm"}, code: 2, class: "invalid_input", names: []string{`unknown channel "telegarm"`}},
		{cmd: "config", args: []string{"config"}, code: 2, class: "usage", names: []string{"needs a subcommand", "check"}},
		{cmd: "config", args: []string{"config", "chek"}, code: 2, class: "usage", names: []string{`unknown command "chek"`, `did you mean "check"?`}},
		{cmd: "config check", args: []string{"config", "check", "extra"}, code: 2, class: "usage", names: []string{`unexpected argument "extra"`}},
		{cmd: "import", args: []string{"import", "hermes"}, code: 2, class: "usage", names: []string{"missing <path>"}},
		{cmd: "import", args: []string{"import", "peer", "/nowhere"}, code: 2, class: "usage", names: []string{`unknown source "peer"`, "hermes, openclaw, nexo"}},
		{cmd: "import", args: []string{"import", "hermes", "/nowhere"}, code: 2, class: "invalid_input", names: []string{"/nowhere", "no pairing files found"}},
		{cmd: "owner", args: []string{"owner"}, code: 2, class: "usage", names: []string{"needs a subcommand", "add"}},
		{cmd: "owner", args: []string{"owner", "ad"}, code: 2, class: "usage", names: []string{`unknown command "ad"`, `did you mean "add"?`}},
		{cmd: "owner add", args: []string{"owner", "add", "telegram"}, code: 2, class: "usage", names: []string{"missing <sender>"}},
		{cmd: "owner add", args: []string{"owner", "add", "telegarm", "42"}, code: 2, class: "invalid_input",
			names: []string{`unknown channel "telegarm"`, "channels: telegram, whatsapp"}, not: []string{"42", "sender"}},
		{cmd: "owner add", args: []string{"owner", "add", "telegram", "bob"}, code: 2, class: "invalid_input", names: []string{`"bob"`, "numeric Telegram user id"}},
		{cmd: "owner remove", args: []string{"owner", "remove", "telegram", "1", "2"}, code: 2, class: "usage", names: []string{`unexpected argument "2"`}},
		{cmd: "owner remove", args: []string{"owner", "remove", "telegram", "@ana"}, code: 2, class: "invalid_input", names: []string{`"@ana"`, "username"}},
		{cmd: "owner list", args: []string{"owner", "list", "telegarm"}, code: 2, class: "invalid_input", names: []string{`unknown channel "telegarm"`}},
		{cmd: "owner list", args: []string{"owner", "list", "telegram", "extra"}, code: 2, class: "usage", names: []string{`unexpected argument "extra"`}},
		{cmd: "setup-code", args: []string{"setup-code", "--ttl", "2h"}, code: 2, class: "usage", names: []string{"--ttl 2h0m0s", "at most 1h"}},
		{cmd: "setup-code", args: []string{"setup-code", "--ttl", "0s"}, code: 2, class: "usage", names: []string{"--ttl 0s"}},
		{cmd: "setup-code", args: []string{"setup-code", "--ttl", "-1m"}, code: 2, class: "usage", names: []string{"--ttl -1m0s"}},
		{cmd: "setup-code", args: []string{"setup-code", "--role", "admin"}, code: 2, class: "usage", names: []string{`--role "admin"`, "node or operator"}},
		{cmd: "setup-code", args: []string{"setup-code", "now"}, code: 2, class: "usage", names: []string{`unexpected argument "now"`}},
		{cmd: "devices", args: []string{"devices", "frob"}, code: 2, class: "usage", names: []string{`unknown command "frob" for "pairgate devices"`}},
		{cmd: "devices list", args: []string{"devices", "list", "all"}, code: 2, class: "usage", names: []string{`unexpected argument "all"`}},
		{cmd: "devices approve", args: []string{"devices", "approve"}, code: 2, class: "usage", names: []string{"<REQUEST_ID>", "--latest"}},
		{cmd: "devices approve", args: []string{"devices", "approve", "dreq_x", "--latest"}, code: 2, class: "usage", names: []string{"<REQUEST_ID>", "--latest"}},
		{cmd: "devices reject", args: []string{"devices", "reject"}, code: 2, class: "usage", names: []string{"missing <REQUEST_ID>"}},
		{cmd: "devices revoke", args: []string{"devices", "revoke"}, code: 2, class: "usage", names: []string{"missing <DEVICE_ID>"}},
		{cmd: "devices rotate", args: []string{"devices", "rotate", "a", "b"}, code: 2, class: "usage", names: []string{`unexpected argument "b"`}},
		{cmd: "devices revoke", args: []string{"devices", "revoke", "abc"}, code: 2, class: "invalid_input", names: []string{`device id "abc"`, "at least 8"}},
		{cmd: "devices rotate", args: []string{"devices", "rotate", "zzzzzzzz"}, code: 2, class: "invalid_input", names: []string{`device id "zzzzzzzz"`}},
		{cmd: "devices remove", args: []string{"devices", "remove"}, code: 2, class: "usage", names: []string{"missing <DEVICE_ID>"}},
		{cmd: "companion", args: []string{"companion"}, code: 2, class: "usage", names: []string{"needs a subcommand", "pair"}},
		{cmd: "companion pair", args: []string{"companion", "pair"}, code: 2, class: "usage", names: []string{"missing <SETUP_CODE>"}},
		{cmd: "companion pair", args: []string{"companion", "pair", "not-a-code"}, code: 2, class: "invalid_input", names: []string{"setup code"}},
		{cmd: "keys", args: []string{"keys", "rotat"}, code: 2, class: "usage", names: []string{`did you mean "rotate"?`}},
		{cmd: "keys rotate", args: []string{"keys", "rotate", "now"}, code: 2, class: "usage", names: []string{`unexpected argument "now"`}},
		{cmd: "keys init", args: []string{"keys", "init", "now"}, code: 2, class: "usage", names: []string{`unexpected argument "now"`}},
		{cmd: "tokens", args: []string{"tokens"}, code: 2, class: "usage", names: []string{"needs a subcommand", "create"}},
		{cmd: "tokens create", args: []string{"tokens", "create", "--scope", "root"}, code: 2, class: "usage", names: []string{`--scope "root"`, "admin or gateway"}},
		{cmd: "web-link", args: []string{"web-link", "--url", "ftp://gateway.example.com"}, code: 2, class: "usage", names: []string{`--url "ftp://gateway.example.com"`, "http(s)://host"}},
		{cmd: "web-link", args: []string{"web-link", "--url", "https://gateway.example.com/?x=1"}, code: 2, class: "usage", names: []string{`--url`, "no query"}},
		{cmd: "web-link", args: []string{"web-link", "now"}, code: 2, class: "usage", names: []string{`unexpected argument "now"`}},
		{cmd: "tokens list", args: []string{"tokens", "list", "all"}, code: 2, class: "usage", names: []string{`unexpected argument "all"`}},
		{cmd: "tokens revoke", args: []string{"tokens", "revoke"}, code: 2, class: "usage", names: []string{"missing <ID>"}},
		{cmd: "init", args: []string{"init", "now"}, code: 2, class: "usage", names: []string{`unexpected argument "now"`}},
		{cmd: "backup", args: []string{"backup"}, code: 2, class: "usage", names: []string{"missing <FILE>"}},
		{cmd: "backup", args: []string{"backup", "a.db", "b.db"}, code: 2, class: "usage", names: []string{`unexpected argument "b.db"`}},
		{cmd: "version", args: []string{"version", "now"}, code: 2, class: "usage", names: []string{`unexpected argument "now"`}},
		{cmd: "version", args: []string{"--version", "now"}, code: 2, class: "usage", names: []string{`unknown command "now"`}},
	}
	covered := map[string]bool{}
	for _, tt := range tests {
		covered[tt.cmd] = true
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			text := devRun(t, home, quietEnv(), tt.args...)
			js := devRun(t, home, quietEnv(), append([]string{"--json"}, tt.args...)...)
			for _, r := range []result{text, js} {
				if strings.Contains(r.stderr, "panic:") || strings.Contains(r.stderr, "goroutine ") {
					t.Fatalf("pairgate %q panicked:\n%s", tt.args, r.stderr)
				}
			}
			if text.code != tt.code || js.code != tt.code {
				t.Errorf("pairgate %q: exit %d, with --json %d; want %d\nstderr: %s", tt.args, text.code, js.code, tt.code, text.stderr)
			}
			for _, want := range tt.names {
				if !strings.Contains(text.stderr, want) {
					t.Errorf("pairgate %q: stderr does not say %q:\n%s", tt.args, want, text.stderr)
				}
			}
			last := lines(text.stderr)[len(lines(text.stderr))-1]
			for _, wrong := range tt.not {
				if strings.Contains(last, wrong) {
					t.Errorf("pairgate %q: the error %q mentions %q", tt.args, last, wrong)
				}
			}
			var got jsonError
			if err := devStrict([]byte(js.stderr), &got); err != nil {
				t.Fatalf("pairgate --json %q: stderr is not one JSON error object: %v\n%s", tt.args, err, js.stderr)
			}
			if got.Error.Code != tt.class {
				t.Errorf("pairgate --json %q: code %q, want %q", tt.args, got.Error.Code, tt.class)
			}
			// The message is the text the command prints without --json,
			// which may come after the command's usage.
			if !strings.HasSuffix(text.stderr, "pairgate: "+got.Error.Message+"\n") {
				t.Errorf("pairgate %q: the JSON message differs from the text one\n%s", tt.args,
					cmp.Diff("pairgate: "+got.Error.Message+"\n", last+"\n"))
			}
		})
	}
	for _, path := range commandPaths(t, home) {
		if !covered[path] {
			t.Errorf("command %q has no usage-error case here", path)
		}
	}
}

// TestParentWithoutSubcommand: like git and kubectl, a command that only
// groups others, run alone, shows its usage on stderr and exits 2; asked
// for its help, it shows it on stdout and exits 0.
func TestParentWithoutSubcommand(t *testing.T) {
	home := t.TempDir()
	r := devRun(t, home, quietEnv(), "pairing")
	if r.code != 2 || r.stdout != "" || !strings.Contains(r.stderr, "Available Commands:") {
		t.Errorf("pairing: exit %d, stdout %q, stderr:\n%s\nwant exit 2 and the usage on stderr", r.code, r.stdout, r.stderr)
	}
	for _, args := range [][]string{{"pairing", "--help"}, {"help", "pairing"}} {
		r := devRun(t, home, quietEnv(), args...)
		if r.code != 0 || r.stderr != "" || !strings.Contains(r.stdout, "Available Commands:") {
			t.Errorf("%q: exit %d, stderr %q; want exit 0 and the help on stdout", args, r.code, r.stderr)
		}
	}
	if _, err := os.Stat(home + "/pairgate.db"); err == nil {
		t.Errorf("asking for help created a database")
	}
}

// TestJSONErrorWhenFlagsFailToParse: --json holds even when the command
// line fails to parse after it, and the output is exactly one object.
func TestJSONErrorWhenFlagsFailToParse(t *testing.T) {
	r := devRun(t, t.TempDir(), quietEnv(), "pairing", "list", "--acount", "work", "--json")
	var got jsonError
	if r.code != 2 || devStrict([]byte(r.stderr), &got) != nil || got.Error.Code != "usage" || !strings.Contains(got.Error.Message, "--acount") {
		t.Errorf("exit %d, stderr %q; want exit 2 and a usage error naming --acount", r.code, r.stderr)
	}
	if !bytes.Equal([]byte(r.stdout), nil) {
		t.Errorf("stdout %q, want nothing", r.stdout)
	}
}

// tokens create --quiet prints the bare token; asking for JSON too is a
// contradiction, refused before a token is made.
func TestTokensCreateQuietAndJSON(t *testing.T) {
	home := t.TempDir()
	r := run(t, home, "tokens", "create", "--scope", "gateway", "--quiet", "--json")
	if r.code != 2 || r.stdout != "" || !strings.Contains(r.stderr, `"code":"usage"`) || !strings.Contains(r.stderr, "--quiet and --json") {
		t.Fatalf("tokens create --quiet --json: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	var list struct{ Tokens []any }
	runJSON(t, home, &list, "tokens", "list")
	if len(list.Tokens) != 0 {
		t.Errorf("a refused tokens create made a token: %+v", list.Tokens)
	}
}
