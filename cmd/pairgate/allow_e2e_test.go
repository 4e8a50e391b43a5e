package main_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/pairgate/pairgate/api"
)

// runStdin runs pairgate --home home args with stdin as its standard input.
func runStdin(t *testing.T, home, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), devCLITimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, append([]string{"--home", home}, args...)...)
	cmd.Env = quietEnv()
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("pairgate %v: %v", args, err)
	}
	return r
}

// allowed lists home's allowlist as "channel/account sender name" lines.
func allowed(t *testing.T, home string) []string {
	t.Helper()
	var l struct{ Allowed []api.AllowedSender }
	devRunJSON(t, home, quietEnv(), &l, "pairing", "allowed")
	var out []string
	for _, e := range l.Allowed {
		out = append(out, e.Channel+"/"+e.Account+" "+e.Sender+" "+e.Name)
	}
	return out
}

// TestAllowNameAndFromFile: pairing allow records a name with --name, and
// takes senders from a file (one a line, blank lines and # comments
// skipped, - for stdin), checking every line before adding any: a bad line
// is reported as FILE:LINE and nothing is added.
func TestAllowNameAndFromFile(t *testing.T) {
	home := t.TempDir()
	if r := devRun(t, home, quietEnv(), "pairing", "allow", "telegram", "tg:42", "--name", "Alice"); r.code != 0 {
		t.Fatalf("allow --name: exit %d\n%s", r.code, r.stderr)
	}
	if r := devRun(t, home, quietEnv(), "pairing", "allow", "telegram", "1", "2", "--name", "Bob"); r.code != 2 || !strings.Contains(r.stderr, "--name") {
		t.Errorf("allow of two senders with one --name: exit %d, stderr %q; want 2 naming --name", r.code, r.stderr)
	}

	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.txt")
	os.WriteFile(bad, []byte("# the team\n100\n\n  101  \nbob\n102\n# left\nuser:103\n@carol\n"), 0o600)
	r := devRun(t, home, quietEnv(), "pairing", "allow", "telegram", "--from-file", bad)
	if r.code != 2 {
		t.Errorf("allow --from-file with bad lines: exit %d, want 2\n%s", r.code, r.stderr)
	}
	for _, want := range []string{bad + `:5: telegram sender "bob"`, bad + `:9: telegram sender "@carol"`, "nothing was added"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("allow --from-file with bad lines: stderr does not say %q:\n%s", want, r.stderr)
		}
	}
	var e jsonError
	r = devRun(t, home, quietEnv(), "pairing", "allow", "telegram", "--from-file", bad, "--json")
	if devStrict([]byte(r.stderr), &e) != nil || e.Error.Code != "invalid_input" || !strings.Contains(e.Error.Message, bad+":5:") {
		t.Errorf("allow --from-file --json with bad lines: stderr %q; want invalid_input naming %s:5", r.stderr, bad)
	}
	if diff := cmp.Diff([]string{"telegram/default 42 Alice"}, allowed(t, home)); diff != "" {
		t.Errorf("a file with a bad line added senders (-want +got):\n%s", diff)
	}

	good := filepath.Join(dir, "good.txt")
	os.WriteFile(good, []byte("# the team\n100\n\n  101  \r\nuser:103\n"), 0o600)
	var res struct{ Allowed []api.AllowResult }
	devRunJSON(t, home, quietEnv(), &res, "pairing", "allow", "telegram", "42", "--from-file", good)
	if len(res.Allowed) != 4 || res.Allowed[0].Sender != "42" || res.Allowed[0].Changed || res.Allowed[3].Sender != "103" || !res.Allowed[3].Changed {
		t.Errorf("allow 42 --from-file good.txt: %+v; want 42 (already allowed), 100, 101, 103", res.Allowed)
	}

	// - reads the senders from standard input; the account applies to all.
	r = runStdin(t, home, "200\n201\n", "pairing", "allow", "telegram", "--from-file", "-", "--account", "work")
	if r.code != 0 {
		t.Fatalf("allow --from-file -: exit %d\n%s", r.code, r.stderr)
	}
	r = runStdin(t, home, "300\nnope\n", "pairing", "allow", "telegram", "--from-file", "-")
	if r.code != 2 || !strings.Contains(r.stderr, `stdin:2: telegram sender "nope"`) {
		t.Errorf("allow --from-file - with a bad line: exit %d, stderr %q; want 2 naming stdin:2", r.code, r.stderr)
	}
	want := []string{"telegram/default 100 ", "telegram/default 101 ", "telegram/default 103 ", "telegram/default 42 Alice",
		"telegram/work 200 ", "telegram/work 201 "}
	if diff := cmp.Diff(want, allowed(t, home)); diff != "" {
		t.Errorf("allowlist (-want +got):\n%s", diff)
	}

	for _, tt := range []struct {
		args []string
		says string
	}{
		{[]string{"pairing", "allow", "telegram", "--from-file", filepath.Join(dir, "missing.txt")}, "--from-file " + filepath.Join(dir, "missing.txt")},
		{[]string{"pairing", "allow", "telegram", "--from-file", filepath.Join(dir, "empty.txt")}, "no senders"},
	} {
		os.WriteFile(filepath.Join(dir, "empty.txt"), []byte("# nobody yet\n\n"), 0o600)
		r := devRun(t, home, quietEnv(), tt.args...)
		if r.code != 2 || !strings.Contains(r.stderr, tt.says) {
			t.Errorf("%q: exit %d, stderr %q; want 2 saying %q", tt.args, r.code, r.stderr, tt.says)
		}
	}
}
