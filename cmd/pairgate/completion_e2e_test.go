package main_test

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pairgate/pairgate/api"
	"github.com/pairgate/pairgate/store"
)

// complete asks the binary for shell completions the way the scripts of
// `pairgate completion` do (the hidden __complete command) and returns the
// values offered and cobra's directive.
func complete(t *testing.T, home string, args ...string) ([]string, int) {
	t.Helper()
	r := devRun(t, home, quietEnv(), append([]string{"__complete"}, args...)...)
	if r.code != 0 {
		t.Fatalf("__complete %q: exit %d\n%s", args, r.code, r.stderr)
	}
	var values []string
	for _, line := range lines(r.stdout) {
		if d, ok := strings.CutPrefix(line, ":"); ok {
			directive, err := strconv.Atoi(d)
			if err != nil {
				t.Fatalf("__complete %q: bad directive line %q", args, line)
			}
			return values, directive
		}
		value, _, _ := strings.Cut(line, "\t")
		values = append(values, value)
	}
	t.Fatalf("__complete %q: no directive in\n%s", args, r.stdout)
	return nil, 0
}

const noFiles = 4 // cobra.ShellCompDirectiveNoFileComp

// TestCompletion: channel names, --role, --scope, pending request ids,
// allowed senders, device request ids, device ids and token ids complete
// from the store; completing never creates a home.
func TestCompletion(t *testing.T) {
	fresh := filepath.Join(t.TempDir(), "home")
	if got, _ := complete(t, fresh, "pairing", "approve", "telegram", ""); len(got) != 0 {
		t.Errorf("request ids in a home that does not exist: %q", got)
	}
	if _, err := os.Stat(fresh); err == nil {
		t.Errorf("completing created %s", fresh)
	}

	home := t.TempDir()
	var d1, d2, d3 api.Decision
	devRunJSON(t, home, quietEnv(), &d1, "admit", "telegram", "501", "--name", "Ana")
	devRunJSON(t, home, quietEnv(), &d2, "admit", "telegram", "502", "--account", "work")
	devRunJSON(t, home, quietEnv(), &d3, "admit", "discord", "503")
	if r := devRun(t, home, quietEnv(), "pairing", "allow", "telegram", "601", "602"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	devA, devB := fakeID("aa", "a"), fakeID("bb", "b")
	seedDevices(t, home, store.DeviceRequest{DeviceID: devA, Name: "Pixel"}, store.DeviceRequest{DeviceID: devB, Name: "iPad"})
	if r := devRun(t, home, quietEnv(), "devices", "revoke", devB); r.code != 0 {
		t.Fatal(r.stderr)
	}
	seedRequest(t, home, store.DeviceRequest{ID: "dreq_pending1", DeviceID: fakeID("cc", "c"), Name: "Tab", Platform: "android",
		Role: "node", CheckCode: "123456"})
	var tok mintedToken
	runJSON(t, home, &tok, "tokens", "create", "--scope", "gateway", "--name", "gw")

	channels := []string{"telegram", "whatsapp", "signal", "discord", "slack", "imessage", "feishu", "matrix", "email"}
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"admit", ""}, channels},
		{[]string{"admit", "tel"}, []string{"telegram"}},
		{[]string{"admit", "telegram", ""}, nil},
		{[]string{"pairing", "list", ""}, channels},
		{[]string{"pairing", "approve", ""}, channels},
		{[]string{"pairing", "approve", "telegram", ""}, []string{d1.RequestID}},
		{[]string{"pairing", "approve", "telegram", "--account", "Work", ""}, []string{d2.RequestID}},
		{[]string{"pairing", "reject", "discord", "req_"}, []string{d3.RequestID}},
		{[]string{"pairing", "reject", "discord", d3.RequestID, ""}, nil},
		{[]string{"pairing", "revoke", "telegram", ""}, []string{"601", "602"}},
		{[]string{"pairing", "revoke", "telegram", "60"}, []string{"601", "602"}},
		{[]string{"setup-code", "--role", ""}, []string{"node", "operator"}},
		{[]string{"setup-code", "--role", "op"}, []string{"operator"}},
		{[]string{"tokens", "create", "--scope", ""}, []string{"admin", "gateway"}},
		{[]string{"tokens", "revoke", ""}, []string{tok.ID}},
		{[]string{"devices", "approve", ""}, []string{"dreq_pending1"}},
		{[]string{"devices", "reject", ""}, []string{"dreq_pending1"}},
		{[]string{"devices", "revoke", ""}, []string{devA}},
		{[]string{"devices", "rotate", ""}, []string{devA}},
		{[]string{"devices", "remove", ""}, []string{devA, devB}},
		{[]string{"devices", "remove", "bb"}, []string{devB}},
		{[]string{"--log-level", ""}, []string{"debug", "info", "warn", "error"}},
		{[]string{"help", "pair"}, []string{"pairing"}},
	}
	for _, tt := range tests {
		got, directive := complete(t, home, tt.args...)
		slices.Sort(got)
		want := slices.Clone(tt.want)
		slices.Sort(want)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("__complete %q (-want +got):\n%s", tt.args, diff)
		}
		if directive != noFiles {
			t.Errorf("__complete %q: directive %d, want %d (no file names)", tt.args, directive, noFiles)
		}
	}
}
