package main_test

// End-to-end tests: the real pairgate binary, run as separate processes on
// one home directory, the way an operator and a gateway use it.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pairgate/pairgate/api"
	"github.com/pairgate/pairgate/config"
	"github.com/pairgate/pairgate/pairing"
	"github.com/pairgate/pairgate/secret"
	"github.com/pairgate/pairgate/store/sqlite"
)

var binary string

func TestMain(m *testing.M) {
	if spec := os.Getenv(racerEnv); spec != "" {
		os.Exit(racer(spec))
	}
	dir, err := os.MkdirTemp("", "pairgate-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "pairgate")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building pairgate: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	code           int
	stdout, stderr string
}

// run runs pairgate with --home home and returns its exit code and output.
func run(t *testing.T, home string, args ...string) result {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"--home", home}, args...)...)
	cmd.Env = append(os.Environ(), "PAIRGATE_LOG_LEVEL=debug")
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

func runJSON(t *testing.T, home string, v any, args ...string) result {
	t.Helper()
	r := run(t, home, append(args, "--json")...)
	if r.code != 0 {
		t.Fatalf("pairgate %v: exit %d\n%s", args, r.code, r.stderr)
	}
	if err := json.Unmarshal([]byte(r.stdout), v); err != nil {
		t.Fatalf("pairgate %v: output is not JSON: %v\n%s", args, err, r.stdout)
	}
	return r
}

func TestOperatorFlow(t *testing.T) {
	home := filepath.Join(t.TempDir(), "home")
	var logs strings.Builder
	var codes []string

	var d api.Decision
	r := runJSON(t, home, &d, "admit", "telegram", "tg:123456789", "--name", "Alice")
	logs.WriteString(r.stderr)
	if d.Verdict != api.Challenge || d.Code == "" {
		t.Fatalf("unknown sender: %+v", d)
	}
	codes = append(codes, d.Code)

	var list struct{ Pending []api.PendingRequest }
	r = runJSON(t, home, &list, "pairing", "list", "telegram")
	logs.WriteString(r.stderr)
	if len(list.Pending) != 1 || list.Pending[0].Sender != "123456789" || list.Pending[0].Name != "Alice" || list.Pending[0].RequestID != d.RequestID {
		t.Fatalf("pairing list: %+v", list)
	}

	r = run(t, home, "pairing", "approve", "telegram", strings.ToLower(d.Code[:4])+"-"+d.Code[4:])
	logs.WriteString(r.stderr)
	if r.code != 0 || !strings.Contains(r.stdout, "Approved 123456789 (Alice) on telegram/default") {
		t.Fatalf("approve: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	r = runJSON(t, home, &d, "admit", "telegram", "123456789")
	logs.WriteString(r.stderr)
	if d.Verdict != api.Admit || d.Reason != api.ReasonAllowed {
		t.Fatalf("approved sender: %+v", d)
	}

	var allowed struct{ Allowed []api.AllowedSender }
	runJSON(t, home, &allowed, "pairing", "allowed")
	if len(allowed.Allowed) != 1 || allowed.Allowed[0].Via != api.ViaCode || !strings.HasPrefix(allowed.Allowed[0].ApprovedBy, "cli:") {
		t.Fatalf("pairing allowed: %+v", allowed)
	}

	r = run(t, home, "pairing", "revoke", "telegram", "123456789")
	logs.WriteString(r.stderr)
	if r.code != 0 {
		t.Fatalf("revoke: %d %s", r.code, r.stderr)
	}
	r = runJSON(t, home, &d, "admit", "telegram", "123456789")
	logs.WriteString(r.stderr)
	if d.Verdict != api.Challenge {
		t.Fatalf("revoked sender: %+v", d)
	}
	codes = append(codes, d.Code)

	runJSON(t, home, &allowed, "pairing", "allowed", "--include-revoked")
	if len(allowed.Allowed) != 1 || allowed.Allowed[0].RevokedAt == nil {
		t.Fatalf("allowed --include-revoked: %+v", allowed)
	}

	r = run(t, home, "pairing", "reject", "telegram", d.RequestID)
	logs.WriteString(r.stderr)
	if r.code != 0 {
		t.Fatalf("reject: %d %s", r.code, r.stderr)
	}
	runJSON(t, home, &d, "admit", "telegram", "123456789")
	if d.Reason != api.ReasonDeclined {
		t.Fatalf("rejected sender: %+v", d)
	}

	// Two more senders, one on another account; clear-pending clears by scope.
	runJSON(t, home, &d, "admit", "telegram", "555")
	runJSON(t, home, &d, "admit", "telegram", "556", "--account", "work")
	var cleared struct{ Cleared int }
	runJSON(t, home, &cleared, "pairing", "clear-pending", "telegram", "--account", "work")
	runJSON(t, home, &list, "pairing", "list")
	if cleared.Cleared != 1 || len(list.Pending) != 1 || list.Pending[0].Sender != "555" {
		t.Fatalf("clear-pending --account work cleared %d, left %+v", cleared.Cleared, list.Pending)
	}
	runJSON(t, home, &cleared, "pairing", "clear-pending")
	if cleared.Cleared != 1 {
		t.Fatalf("clear-pending cleared %d, want 1", cleared.Cleared)
	}

	if !strings.Contains(logs.String(), "level=DEBUG") {
		t.Fatalf("expected debug logs on stderr, got:\n%s", logs.String())
	}
	for _, c := range codes {
		if strings.Contains(logs.String(), c) {
			t.Fatalf("issued code %s appears in the logs:\n%s", c, logs.String())
		}
	}

	// Files are private from creation.
	for name, want := range map[string]os.FileMode{".": 0o700, "pairgate.db": 0o600, "pairing.key": 0o600, "pairgate.db-wal": 0o600} {
		fi, err := os.Stat(filepath.Join(home, name))
		if os.IsNotExist(err) && strings.HasSuffix(name, "-wal") {
			continue // SQLite removes the WAL when the last connection closes
		}
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s has mode %04o, want %04o", name, got, want)
		}
	}
}

func TestExitCodesAndMessages(t *testing.T) {
	home := t.TempDir()
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"pairing", "approve", "telegram"}, 2, "missing <CODE|REQUEST_ID>"},
		{[]string{"pairing", "approve", "icq", "ABCD2345"}, 2, `unknown channel "icq"; channels: telegram`},
		{[]string{"pairing", "approve", "telegram", "ABC"}, 2, "a pairing code has 8 characters"},
		{[]string{"pairing", "approve", "telegram", "ABCD-234O"}, 2, "no 0, O, 1 or I"},
		{[]string{"pairing", "allow", "telegram", "bob"}, 2, "numeric Telegram user id"},
		{[]string{"pairing", "list", "--acount", "x"}, 2, "unknown flag"},
		{[]string{"pairing", "list", "--account", "x"}, 2, "--account needs a channel"},
		{[]string{"admit", "telegram", "--", "-100123"}, 2, `telegram sender "-100123"`},
		{[]string{"pairing", "approve", "telegram", "ABCD2345"}, 1, "pairgate pairing list telegram"},
		{[]string{"pairing", "revoke", "telegram", "42"}, 1, "not on the allowlist of telegram/default: not found\nsee who is allowed with: pairgate pairing allowed telegram\n"},
		{[]string{"pairing", "revoke", "telegram", "42", "--account", "work"}, 1, "see who is allowed with: pairgate pairing allowed telegram --account work\n"},
	}
	for _, tt := range tests {
		r := run(t, home, tt.args...)
		if r.code != tt.code || !strings.Contains(r.stderr, tt.want) {
			t.Errorf("pairgate %v: exit %d, stderr %q; want exit %d mentioning %q", tt.args, r.code, r.stderr, tt.code, tt.want)
		}
	}
}

func TestLockoutMessage(t *testing.T) {
	home := t.TempDir()
	for i := 0; i < 4; i++ {
		run(t, home, "pairing", "approve", "telegram", "ZZZZZZZZ")
	}
	r := run(t, home, "pairing", "approve", "telegram", "ZZZZZZZZ")
	for _, want := range []string{"locked for 1h more", "after 5 wrong codes", "pairgate pairing allow telegram"} {
		if r.code != 1 || !strings.Contains(r.stderr, want) {
			t.Errorf("fifth wrong code: exit %d, stderr %q; want exit 1 mentioning %q", r.code, r.stderr, want)
		}
	}
}

func TestRefusesUnsafeOrBrokenState(t *testing.T) {
	t.Run("world-readable key", func(t *testing.T) {
		home := t.TempDir()
		run(t, home, "pairing", "list")
		key := filepath.Join(home, "pairing.key")
		if err := os.Chmod(key, 0o644); err != nil {
			t.Fatal(err)
		}
		r := run(t, home, "admit", "telegram", "1")
		if r.code != 1 || !strings.Contains(r.stderr, "pairing secret "+key+" has mode 0644") || !strings.Contains(r.stderr, "chmod 600 "+key) {
			t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
		}
	})
	t.Run("world-readable admin token", func(t *testing.T) {
		home := t.TempDir()
		run(t, home, "pairing", "list")
		tok := filepath.Join(home, "admin.token")
		if err := os.WriteFile(tok, []byte("pga_0123456789abcdefghijklmnopqrstuvwxyz0123\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(tok, 0o644); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, binary, "--home", home, "serve", "--listen", "127.0.0.1:0")
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Fatalf("serve with a 0644 admin token: %v, want exit 1\n%s", err, out)
		}
		for _, want := range []string{"admin token " + tok + " has mode 0644", "chmod 600 " + tok} {
			if !strings.Contains(string(out), want) {
				t.Errorf("serve: output %q does not say %q", out, want)
			}
		}
		if strings.Contains(string(out), "pairing secret") {
			t.Errorf("serve: output %q calls the admin token the pairing secret", out)
		}
	})
	t.Run("missing key beside a used database", func(t *testing.T) {
		home := t.TempDir()
		if r := run(t, home, "pairing", "allow", "telegram", "42"); r.code != 0 {
			t.Fatal(r.stderr)
		}
		os.Remove(filepath.Join(home, "pairing.key"))
		r := run(t, home, "admit", "telegram", "42")
		if r.code != 1 || !strings.Contains(r.stderr, "restore the key from a backup") || !strings.Contains(r.stderr, "pairgate keys init") {
			t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
		}
		if r := run(t, home, "keys", "init"); r.code != 0 {
			t.Fatalf("keys init: %s", r.stderr)
		}
		if r := run(t, home, "keys", "init"); r.code != 1 || !strings.Contains(r.stderr, "never replaces it") {
			t.Fatalf("second keys init: exit %d %q", r.code, r.stderr)
		}
		var d api.Decision
		runJSON(t, home, &d, "admit", "telegram", "42")
		if d.Verdict != api.Admit {
			t.Fatalf("the allowlist must survive a new key: %+v", d)
		}
	})
	t.Run("corrupt database", func(t *testing.T) {
		home := t.TempDir()
		run(t, home, "keys", "init")
		db := filepath.Join(home, "pairgate.db")
		garbage := bytes.Repeat([]byte("not a database "), 512)
		if err := os.WriteFile(db, garbage, 0o600); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{{"admit", "telegram", "1"}, {"pairing", "allowed"}, {"pairing", "allow", "telegram", "1"}} {
			r := run(t, home, args...)
			if r.code != 1 || !strings.Contains(r.stderr, "not a pairgate database") {
				t.Errorf("%v: exit %d, stderr %q", args, r.code, r.stderr)
			}
			if strings.Contains(r.stdout, "admit") || strings.Contains(r.stdout, "empty") {
				t.Errorf("%v: a corrupt store must not read as empty or admit: %q", args, r.stdout)
			}
		}
		after, err := os.ReadFile(db)
		if err != nil || !bytes.Equal(after, garbage) {
			t.Fatalf("the corrupt file was changed (err %v)", err)
		}
	})
	t.Run("bad config", func(t *testing.T) {
		home := t.TempDir()
		cfg := filepath.Join(home, "pairgate.yaml")
		os.WriteFile(cfg, []byte("pairing:\n  limits:\n    code_ttl: -5m\n"), 0o600)
		r := run(t, home, "pairing", "list")
		if r.code == 0 || !strings.Contains(r.stderr, "code_ttl") {
			t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
		}
		os.WriteFile(cfg, []byte("pairing:\n  polcy: open\n"), 0o600)
		r = run(t, home, "pairing", "list")
		if r.code == 0 || !strings.Contains(r.stderr, "polcy") || !strings.Contains(r.stderr, ":2:") {
			t.Fatalf("unknown key: exit %d, stderr %q", r.code, r.stderr)
		}
	})
}

// TestEightProcessesHoldTheCap races 8 pairgate processes for one scope's
// pending slots (hermes hands out codes it never saved and overshoots the
// cap). Every process that got a code must find it approvable.
func TestEightProcessesHoldTheCap(t *testing.T) {
	for trial, limit := range []int{3, 3, 3, 5, 8} {
		home := t.TempDir()
		if limit != 3 {
			os.WriteFile(filepath.Join(home, "pairgate.yaml"), fmt.Appendf(nil, "pairing:\n  limits:\n    max_pending: %d\n", limit), 0o600)
		}
		run(t, home, "pairing", "list") // create the home, key and schema
		decisions := make([]api.Decision, 8)
		var wg sync.WaitGroup
		for p := range decisions {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := run(t, home, "admit", "telegram", fmt.Sprint(1000+p), "--json")
				if r.code != 0 {
					t.Errorf("process %d: exit %d %s", p, r.code, r.stderr)
					return
				}
				json.Unmarshal([]byte(r.stdout), &decisions[p])
			}()
		}
		wg.Wait()
		var codes []string
		for _, d := range decisions {
			switch {
			case d.Verdict == api.Challenge:
				codes = append(codes, d.Code)
			case d.Reason != api.ReasonMaxPending:
				t.Fatalf("trial %d: unexpected decision %+v", trial, d)
			}
		}
		if len(codes) != limit {
			t.Fatalf("trial %d: %d codes handed out with a cap of %d", trial, len(codes), limit)
		}
		for _, c := range codes {
			if r := run(t, home, "pairing", "approve", "telegram", c); r.code != 0 {
				t.Fatalf("trial %d: a code handed out is not approvable: %s", trial, r.stderr)
			}
		}
	}
}

// TestRunningGatewaySeesCLIChanges: a gateway embedding the library follows
// the change log, so a CLI approval and a CLI revocation reach its gate
// within a second (nexo: not until reload; revoked senders admitted 30 s).
func TestRunningGatewaySeesCLIChanges(t *testing.T) {
	home := t.TempDir()
	run(t, home, "pairing", "list")
	sec, err := secret.Load(filepath.Join(home, "pairing.key"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(context.Background(), sqlite.Options{Path: filepath.Join(home, "pairgate.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	gate, err := pairing.New(pairing.Options{Store: st, Secret: sec, Config: config.Default()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go gate.Run(ctx)

	in := pairing.Inbound{Channel: "telegram", Sender: "77"}
	d := gate.Admit(ctx, in)
	if d.Verdict != api.Challenge {
		t.Fatal(d)
	}
	waitFor := func(what string, want api.Verdict) time.Duration {
		start := time.Now()
		for time.Since(start) < 3*time.Second {
			if gate.Admit(ctx, in).Verdict == want {
				return time.Since(start)
			}
			time.Sleep(5 * time.Millisecond)
		}
		t.Fatalf("%s: the gate did not see it within 3 s: last %+v", what, gate.Admit(ctx, in))
		return 0
	}
	if r := run(t, home, "pairing", "approve", "telegram", d.Code); r.code != 0 {
		t.Fatal(r.stderr)
	}
	if took := waitFor("CLI approval", api.Admit); took > time.Second {
		t.Errorf("CLI approval seen after %v, want ≤ 1 s", took)
	}
	if r := run(t, home, "pairing", "revoke", "telegram", "77"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	if took := waitFor("CLI revocation", api.Challenge); took > time.Second {
		t.Errorf("CLI revocation seen after %v, want ≤ 1 s", took)
	}
}

// TestNexoConfigWithRelativePaths: the nexo config shape loads as is, and
// relative paths are relative to the config file.
func TestNexoConfigWithRelativePaths(t *testing.T) {
	home := t.TempDir()
	cfg := "pairing:\n  storage: {path: state/pairing.db}\n  setup_code: {secret_path: state/pairing.key, default_ttl_secs: 600}\n" +
		"  public_url: wss://gateway.example.com/pair\n  ws_cleartext_allow: [kitchen-pi.local]\n"
	if err := os.WriteFile(filepath.Join(home, "pairgate.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	elsewhere := t.TempDir()
	cmd := exec.Command(binary, "--home", home, "pairing", "allow", "telegram", "42")
	cmd.Dir = elsewhere
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for name, want := range map[string]os.FileMode{"state": 0o700, "state/pairing.db": 0o600, "state/pairing.key": 0o600} {
		fi, err := os.Stat(filepath.Join(home, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %04o, want %04o", name, fi.Mode().Perm(), want)
		}
	}
}
