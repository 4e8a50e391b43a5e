package main_test

import (
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// buildInfo is the JSON of `pairgate version --json`.
type buildInfo struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
	Go      string `json:"go"`
}

// toolchainBuildInfo is what `go version -m` reads from the binary: the
// main module's version, the commit and the Go version the toolchain
// recorded.
func toolchainBuildInfo(t *testing.T) buildInfo {
	t.Helper()
	out, err := exec.Command("go", "version", "-m", binary).Output()
	if err != nil {
		t.Fatalf("go version -m: %v", err)
	}
	var bi buildInfo
	dirty := false
	for i, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		switch {
		case i == 0 && len(f) == 2:
			bi.Go = f[1]
		case len(f) >= 3 && f[0] == "mod" && f[1] == "github.com/pairgate/pairgate":
			bi.Version = f[2]
		case len(f) == 2 && f[0] == "build":
			if rev, ok := strings.CutPrefix(f[1], "vcs.revision="); ok {
				bi.Commit = rev
			}
			dirty = dirty || f[1] == "vcs.modified=true"
		}
	}
	if dirty {
		bi.Commit += "-dirty"
	}
	if bi.Version == "" || bi.Go == "" {
		t.Fatalf("cannot read go version -m:\n%s", out)
	}
	return bi
}

// TestVersion: `pairgate version` and `--version` report what the Go
// toolchain recorded in the binary, and the daemon exports the same as
// pairgate_build_info.
func TestVersion(t *testing.T) {
	home := t.TempDir()
	want := toolchainBuildInfo(t)
	var got buildInfo
	devRunJSON(t, home, quietEnv(), &got, "version")
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("version --json (-go version -m +pairgate):\n%s", diff)
	}
	text := devRun(t, home, quietEnv(), "version")
	flag := devRun(t, home, quietEnv(), "--version")
	commit := want.Commit
	if commit == "" {
		commit = "unknown"
	}
	wantText := "pairgate " + want.Version + "\ncommit   " + commit + "\ngo       " + want.Go + "\n"
	for name, r := range map[string]result{"version": text, "--version": flag} {
		if r.code != 0 || r.stderr != "" {
			t.Errorf("%s: exit %d, stderr %q", name, r.code, r.stderr)
		}
		if diff := cmp.Diff(wantText, r.stdout); diff != "" {
			t.Errorf("%s (-want +got):\n%s", name, diff)
		}
	}
	var flagJSON buildInfo
	devRunJSON(t, home, quietEnv(), &flagJSON, "--version")
	if flagJSON != got {
		t.Errorf("--version --json = %+v, version --json = %+v", flagJSON, got)
	}

	d := startServe(t, home)
	_, data, err := d.do(&http.Client{Timeout: 5 * time.Second}, "GET", "/metrics", "", "")
	if err != nil {
		t.Fatal(err)
	}
	key := promKey("pairgate_build_info", map[string]string{"version": want.Version, "commit": want.Commit, "goversion": want.Go})
	if v, ok := promSamples(t, string(data))[key]; !ok || v != 1 {
		t.Errorf("/metrics has %s = %v (present %t), want 1; build info lines:\n%s", key, v, ok, grepLines(string(data), "build_info"))
	}
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
