package main

import (
	"bytes"
	"context"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strings"
)

// machine is what the header says about where the figures come from.
type machine struct {
	cpu        string // model name from /proc/cpuinfo
	cores      int
	gomaxprocs int
	goVersion  string // of the toolchain that built the benchmarks
	os         string // GOOS/GOARCH and the kernel release
	load       string // the 1-minute load average when the run started
}

func thisMachine(ctx context.Context) machine {
	m := machine{cpu: "unknown CPU", cores: runtime.NumCPU(), gomaxprocs: runtime.GOMAXPROCS(0), goVersion: runtime.Version(),
		os: runtime.GOOS + "/" + runtime.GOARCH}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		if model := cpuModel(data); model != "" {
			m.cpu = model
		}
	}
	if out, err := exec.CommandContext(ctx, "go", "env", "GOVERSION").Output(); err == nil && len(bytes.TrimSpace(out)) > 0 {
		m.goVersion = string(bytes.TrimSpace(out))
	}
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.os += ", Linux " + strings.TrimSpace(string(data))
	}
	if data, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(data)); len(f) > 0 {
			m.load = f[0]
		}
	}
	return m
}

// cpuModel is the first "model name" of /proc/cpuinfo.
func cpuModel(cpuinfo []byte) string {
	for line := range bytes.Lines(cpuinfo) {
		k, v, ok := bytes.Cut(line, []byte(":"))
		if ok && string(bytes.TrimSpace(k)) == "model name" {
			return string(bytes.TrimSpace(v))
		}
	}
	return ""
}

// commandLine is the command as someone would type it again: `go run
// ./bench` and the arguments, after the PostgreSQL DSN's variable when the
// DSN came from it; passwords in DSNs are masked.
func commandLine(args []string, dsnFromEnv string) string {
	var b strings.Builder
	if dsnFromEnv != "" {
		b.WriteString(postgresEnv + "=" + shellQuote(redactDSN(dsnFromEnv)) + " ")
	}
	b.WriteString("go run ./bench")
	for i, a := range args {
		if i > 0 && (args[i-1] == "-postgres" || args[i-1] == "--postgres") {
			a = redactDSN(a)
		} else if v, ok := strings.CutPrefix(a, "-postgres="); ok {
			a = "-postgres=" + redactDSN(v)
		}
		b.WriteString(" " + shellQuote(a))
	}
	return b.String()
}

// redactDSN masks the password of a URL or keyword/value DSN.
func redactDSN(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.Scheme != "" && u.User != nil {
		return u.Redacted()
	}
	return regexp.MustCompile(`(password\s*=\s*)('[^']*'|\S+)`).ReplaceAllString(dsn, "${1}xxxxx")
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	safe := func(r rune) bool {
		return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || strings.ContainsRune("_@%+=:,./-", r)
	}
	if s != "" && !strings.ContainsFunc(s, func(r rune) bool { return !safe(r) }) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
