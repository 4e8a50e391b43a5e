package main_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/pairgate/pairgate/api"
)

// An operator who approves a code twice (a retry, a second terminal) is
// told it is done, with who approved it and when, and exit status 0; five
// of them never lock approvals.
func TestApproveTwiceWithTheCLI(t *testing.T) {
	home := t.TempDir()
	var first api.Decision
	for i := range 5 {
		var d api.Decision
		runJSON(t, home, &d, "admit", "telegram", strings.Repeat("4", i+1), "--name", "Bob")
		if i == 0 {
			first = d
		}
		if r := run(t, home, "pairing", "approve", "telegram", d.Code); r.code != 0 {
			t.Fatalf("first approval: exit %d\n%s", r.code, r.stderr)
		}
		r := run(t, home, "pairing", "approve", "telegram", d.Code)
		want := regexp.MustCompile(`^Already approved: 4+ \(Bob\) on telegram/default was approved by cli:\S+ at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d; nothing to do\.\n$`)
		if r.code != 0 || !want.MatchString(r.stdout) {
			t.Errorf("second approval: exit %d, stdout %q, stderr %q; want exit 0 matching %s", r.code, r.stdout, r.stderr, want)
		}
		var a api.Approval
		runJSON(t, home, &a, "pairing", "approve", "telegram", d.RequestID)
		if !a.Already || a.RequestID != d.RequestID || a.Allowed.Name != "Bob" {
			t.Errorf("approval by request id after the code, --json: %+v, want already", a)
		}
	}
	var d api.Decision
	runJSON(t, home, &d, "admit", "telegram", "999")
	if d.Verdict != api.Challenge {
		t.Errorf("a new sender after five double approvals: %+v, want a challenge (not locked out)", d)
	}

	// Revoked since: still exit 0, and the operator is told they are out
	// and how to let them in again.
	if r := run(t, home, "pairing", "revoke", "telegram", "4"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	r := run(t, home, "pairing", "approve", "telegram", first.Code)
	if r.code != 0 || !strings.Contains(r.stdout, "but was revoked since by cli:") || !strings.Contains(r.stdout, "pairgate pairing allow telegram 4") {
		t.Errorf("approval of a revoked sender's code: exit %d, stdout %q; want exit 0 saying they were revoked since", r.code, r.stdout)
	}

	// Reject of an approved request: refused (exit 1), no strike, and
	// the message says what to do instead.
	var d2 api.Decision
	runJSON(t, home, &d2, "admit", "telegram", "555")
	run(t, home, "pairing", "approve", "telegram", d2.Code)
	r = run(t, home, "pairing", "reject", "telegram", d2.Code)
	if r.code != 1 || !strings.Contains(r.stderr, "approved already") || !strings.Contains(r.stderr, "pairgate pairing revoke telegram 555") {
		t.Errorf("reject of an approved code: exit %d, stderr %q; want exit 1 saying to revoke", r.code, r.stderr)
	}
}

// A scope locked by wrong codes shows in pairing list with until when, and
// pairing unlock lifts it (audited); unlocking again is fine and says so.
func TestUnlockWithTheCLI(t *testing.T) {
	home := t.TempDir()
	var d api.Decision
	runJSON(t, home, &d, "admit", "telegram", "42", "--account", "work")
	for range 5 {
		run(t, home, "pairing", "approve", "telegram", "ZZZZZZZZ", "--account", "work")
	}
	r := run(t, home, "pairing", "list")
	want := regexp.MustCompile(`(?s)Approvals locked after wrong codes:\nCHANNEL +ACCOUNT +UNTIL +FAILURES\ntelegram +work +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d +5\n\nLift a lock with: pairgate pairing unlock <channel> \[--account A\]\n$`)
	if r.code != 0 || !want.MatchString(r.stdout) || !strings.Contains(r.stdout, "42") {
		t.Errorf("pairing list while locked: exit %d\n%s\nwant the request and the lock", r.code, r.stdout)
	}
	var list struct {
		Pending []api.PendingRequest `json:"pending"`
		Locked  []api.Lockout        `json:"locked"`
	}
	runJSON(t, home, &list, "pairing", "list", "telegram")
	if len(list.Pending) != 1 || len(list.Locked) != 1 || list.Locked[0].Account != "work" || list.Locked[0].Failures != 5 {
		t.Errorf("pairing list --json while locked: %+v", list)
	}

	r = run(t, home, "pairing", "unlock", "telegram", "--account", "Work")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "Unlocked approvals on telegram/work (locked until ") || !strings.Contains(r.stdout, "after 5 wrong codes") {
		t.Errorf("unlock: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if r := run(t, home, "pairing", "approve", "telegram", d.Code, "--account", "work"); r.code != 0 {
		t.Errorf("approve after unlock: exit %d, %s", r.code, r.stderr)
	}
	r = run(t, home, "pairing", "unlock", "telegram", "--account", "work")
	if r.code != 0 || r.stdout != "Approvals on telegram/work are not locked; nothing to do.\n" {
		t.Errorf("unlock of an unlocked scope: exit %d, stdout %q", r.code, r.stdout)
	}
	if r := run(t, home, "pairing", "list"); strings.Contains(r.stdout, "locked") {
		t.Errorf("pairing list after unlock still shows a lock:\n%s", r.stdout)
	}
	if r := run(t, home, "pairing", "unlock", "telegram", "--account", "a.b"); r.code != 2 {
		t.Errorf("unlock of an invalid account: exit %d, want 2", r.code)
	}
}

// A real code typed without its account: exit 1, counted, and the message
// says which account has it.
func TestWrongAccountWithTheCLI(t *testing.T) {
	home := t.TempDir()
	var d api.Decision
	runJSON(t, home, &d, "admit", "telegram", "42", "--account", "work")
	r := run(t, home, "pairing", "approve", "telegram", d.Code)
	if r.code != 1 || !strings.HasSuffix(r.stderr, "that code is pending on telegram/work: did you mean --account work?\n") {
		t.Errorf("approve of a work code on default: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := run(t, home, "pairing", "approve", "telegram", d.Code, "--account", "work"); r.code != 0 {
		t.Errorf("approve on the right account: exit %d, %s", r.code, r.stderr)
	}
}
