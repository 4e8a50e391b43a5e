package main_test

import (
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// releaseBinary builds pairgate for linux/amd64 with scripts/release, the
// build deploy/Dockerfile runs too, and returns its path.
func releaseBinary(t *testing.T) string {
	t.Helper()
	dist := t.TempDir()
	cmd := exec.Command("bash", "../../scripts/release", "linux/amd64")
	cmd.Env = append(os.Environ(), "DIST="+dist)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("scripts/release: %v\n%s", err, out)
	}
	return filepath.Join(dist, "pairgate-linux-amd64")
}

// The release build is what the Dockerfile builds, static and stripped, and
// its checksum file is right.
func TestReleaseBuild(t *testing.T) {
	bin := releaseBinary(t)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the release binary asks for a dynamic loader: not static")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the release binary links %v: not static", libs)
	}
	if f.Section(".symtab") != nil {
		t.Error("the release binary has a symbol table: not stripped")
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	sums, err := os.ReadFile(filepath.Join(filepath.Dir(bin), "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if want := hex.EncodeToString(sum[:]) + "  pairgate-linux-amd64\n"; string(sums) != want {
		t.Errorf("SHA256SUMS = %q, want %q", sums, want)
	}
	// The Dockerfile builds with the same flags as the release.
	docker, err := os.ReadFile("../../deploy/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	release, _ := os.ReadFile("../../scripts/release")
	const flags = `-trimpath -ldflags='-s -w'`
	if !bytes.Contains(docker, []byte("CGO_ENABLED=0 go build "+flags)) || !bytes.Contains(release, []byte("go build "+flags)) {
		t.Errorf("deploy/Dockerfile and scripts/release no longer build with CGO_ENABLED=0 and %s", flags)
	}
	// The image's command line works: a static binary serving its volume.
	var cmdLine []string
	if m := regexp.MustCompile(`(?m)^CMD (\[.*\])$`).FindSubmatch(docker); m == nil || json.Unmarshal(m[1], &cmdLine) != nil {
		t.Fatalf("no CMD [...] in deploy/Dockerfile")
	}
	home := t.TempDir()
	banner := runDaemon(t, bin, cmdLine, []string{"PAIRGATE_HOME=" + home}, home)
	// It listens on every interface: a usable URL, and the TLS warning.
	first, _, _ := strings.Cut(banner, "\n")
	if !strings.HasPrefix(first, "pairgate serving on http://127.0.0.1:") || !strings.Contains(banner, "without TLS") {
		t.Errorf("serve --listen 0.0.0.0 printed:\n%s\nwant a 127.0.0.1 URL first and a TLS warning", banner)
	}
	if strings.Contains(banner, "[::]") || strings.Contains(banner, "http://0.0.0.0") {
		t.Errorf("serve printed a URL nothing can reach:\n%s", banner)
	}
}

// The systemd unit passes systemd-analyze verify, is well hardened, and its
// ExecStart serves with $STATE_DIRECTORY as home.
func TestSystemdUnit(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze is not installed")
	}
	bin := releaseBinary(t)
	unit, err := os.ReadFile("../../deploy/pairgate.service")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "pairgate.service")
	if err := os.WriteFile(path, bytes.ReplaceAll(unit, []byte("/usr/local/bin/pairgate"), []byte(bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("systemd-analyze", "verify", path).CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, _ := exec.Command("systemd-analyze", "security", "--offline=yes", path).CombinedOutput()
	m := regexp.MustCompile(`Overall exposure level for pairgate.service: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("systemd-analyze security printed no exposure level:\n%s", out)
	}
	if level, _ := strconv.ParseFloat(string(m[1]), 64); level > 2.0 {
		t.Errorf("systemd-analyze security: exposure %.1f, want at most 2.0 (OK)", level)
	}
	start := regexp.MustCompile(`(?m)^ExecStart=(\S+) (.*)$`).FindSubmatch(unit)
	if start == nil || string(start[1]) != "/usr/local/bin/pairgate" {
		t.Fatalf("no ExecStart=/usr/local/bin/pairgate … in the unit")
	}
	state := t.TempDir()
	banner := runDaemon(t, bin, strings.Fields(string(start[2])), []string{"STATE_DIRECTORY=" + state, "PAIRGATE_HOME="}, state)
	if strings.Contains(banner, "Warning") {
		t.Errorf("the unit listens on loopback, yet serve warns:\n%s", banner)
	}
}

// runDaemon runs bin with args (its --listen moved to a free port) and env,
// checks it answers /healthz and keeps its state in home, stops it, and
// returns what it printed on stdout.
func runDaemon(t *testing.T, bin string, args, env []string, home string) string {
	t.Helper()
	addr := serveFreeAddr(t)
	for i, a := range args {
		if a == "--listen" && i+1 < len(args) {
			_, port, _ := strings.Cut(addr, ":")
			host, _, _ := strings.Cut(args[i+1], ":")
			args[i+1] = host + ":" + port
			addr = "127.0.0.1:" + port
		}
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr serveBuf
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("%s %v did not answer on %s\nstdout:\n%s\nstderr:\n%s", bin, args, addr, stdout.String(), stderr.String())
		}
	}
	if _, err := os.Stat(filepath.Join(home, "pairgate.db")); err != nil {
		t.Errorf("%v with %v keeps no database in %s: %v\n%s", args, env, home, err, stdout.String())
	}
	return stdout.String()
}
