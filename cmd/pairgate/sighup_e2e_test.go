package main_test

import (
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pairgate/pairgate/api"
)

// pairgate serve re-reads its config on SIGHUP: a new policy applies to the
// next message; a broken file is refused, logged, and the running config
// stays; a changed listen address is logged as needing a restart. The
// daemon keeps running throughout (it used to die with exit status 129).
func TestServeReloadsConfigOnSIGHUP(t *testing.T) {
	home := t.TempDir()
	writeConfig(t, home, "pairing:\n  channels:\n    telegram: {policy: pairing}\n")
	var gw mintedToken
	runJSON(t, home, &gw, "tokens", "create", "--scope", "gateway", "--name", "hup")
	d := startServe(t, home)
	client := &http.Client{Timeout: 5 * time.Second}
	admit := func(sender string) api.Decision {
		t.Helper()
		status, body, err := d.do(client, "POST", "/v1/admit", gw.Token, fmt.Sprintf(`{"channel":"telegram","sender":%q}`, sender))
		if err != nil || status != http.StatusOK {
			t.Fatalf("admit: %d %s %v\nstderr:\n%s", status, body, err, d.stderr)
		}
		dec, err := strictDecision(body)
		if err != nil {
			t.Fatal(err)
		}
		return dec
	}
	hup := func() {
		t.Helper()
		if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	waitLog := func(what string) {
		t.Helper()
		for start := time.Now(); !strings.Contains(d.stderr.String(), what); time.Sleep(10 * time.Millisecond) {
			select {
			case <-d.exited:
				t.Fatalf("pairgate serve exited with %d waiting for %q\nstderr:\n%s", d.exitCode, what, d.stderr)
			default:
			}
			if time.Since(start) > 5*time.Second {
				t.Fatalf("no %q in the log within 5 s\nstderr:\n%s", what, serveTail(d.stderr.String(), 20))
			}
		}
	}

	if dec := admit("1001"); dec.Verdict != api.Challenge {
		t.Fatalf("under policy pairing: %+v", dec)
	}
	writeConfig(t, home, "pairing:\n  channels:\n    telegram:\n      policy: allowlist\n      allow_from: [\"tg:1002\"]\n")
	hup()
	waitLog("config reloaded")
	if dec := admit("1003"); dec.Reason != api.ReasonNotAllowed {
		t.Errorf("after SIGHUP with policy allowlist: %+v, want not_allowed", dec)
	}
	if dec := admit("1002"); dec.Reason != api.ReasonAllowed {
		t.Errorf("after SIGHUP, a sender added to allow_from: %+v, want allowed", dec)
	}

	writeConfig(t, home, "pairing:\n  polcy: open\n  channels:\n    telegram: {policy: open}\n")
	hup()
	// The summary is logged first, then each problem: wait for the problem.
	waitLog(`unknown key \"polcy\" in pairing`)
	for _, want := range []string{`unknown key \"polcy\" in pairing`, "the running configuration stays"} {
		if !strings.Contains(d.stderr.String(), want) {
			t.Errorf("the log of a refused reload lacks %q:\n%s", want, serveTail(d.stderr.String(), 10))
		}
	}
	if dec := admit("1004"); dec.Reason != api.ReasonNotAllowed {
		t.Errorf("after a refused reload: %+v, want the running policy (allowlist)", dec)
	}

	writeConfig(t, home, "pairing:\n  channels:\n    telegram: {policy: open}\nserver:\n  listen: 127.0.0.1:1\n")
	hup()
	waitLog("needs a restart")
	if !strings.Contains(d.stderr.String(), "key=server.listen") {
		t.Errorf("the restart notice does not name server.listen:\n%s", serveTail(d.stderr.String(), 10))
	}
	if dec := admit("1005"); dec.Reason != api.ReasonOpen {
		t.Errorf("after the third reload: %+v, want open", dec)
	}
	if code, _ := d.stop(10 * time.Second); code != 0 {
		t.Errorf("pairgate serve exited with %d after SIGTERM, want 0", code)
	}
}
