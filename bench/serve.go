package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pairgate/pairgate/client"
)

// serve is a running `pairgate serve`.
type serve struct {
	cmd    *exec.Cmd
	home   string
	url    string
	stderr *syncBuffer
	exited chan struct{} // closed once the process has exited
}

// startServe starts `pairgate --home home serve` on a free loopback port
// and returns once /healthz answers, with how long that took from the
// start of the process: opening the store (its integrity check included)
// and loading the allowlist come first.
func startServe(ctx context.Context, bin, home string, env []string) (*serve, time.Duration, error) {
	s := &serve{home: home, stderr: &syncBuffer{}, exited: make(chan struct{})}
	s.cmd = exec.Command(filepath.Join(bin, "pairgate"), "--home", home, "serve", "--listen", "127.0.0.1:0", "--log-level", "warn")
	s.cmd.Env = env
	s.cmd.Stderr = s.stderr
	urls := make(chan string, 1)
	s.cmd.Stdout = &firstLine{prefix: "pairgate serving on ", found: urls}
	start := time.Now()
	if err := s.cmd.Start(); err != nil {
		return nil, 0, fmt.Errorf("start pairgate serve: %w", err)
	}
	go func() {
		s.cmd.Wait()
		close(s.exited)
	}()

	fail := func(err error) (*serve, time.Duration, error) {
		s.stop()
		return nil, 0, fmt.Errorf("pairgate serve: %w\nstderr:\n%s", err, tail(s.stderr.String(), 20))
	}
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	select {
	case s.url = <-urls:
	case <-s.exited:
		return fail(fmt.Errorf("exited with %d before it listened", s.cmd.ProcessState.ExitCode()))
	case <-deadline.C:
		return fail(errors.New("did not say where it listens within 30 s"))
	case <-ctx.Done():
		return fail(ctx.Err())
	}
	c, err := client.New(s.url, "")
	if err != nil {
		return fail(err)
	}
	for {
		hctx, cancel := context.WithTimeout(ctx, time.Second)
		err := c.Healthz(hctx)
		cancel()
		if err == nil {
			return s, time.Since(start), nil
		}
		select {
		case <-s.exited:
			return fail(fmt.Errorf("exited with %d before /healthz answered", s.cmd.ProcessState.ExitCode()))
		case <-deadline.C:
			return fail(fmt.Errorf("/healthz did not answer within 30 s: %w", err))
		case <-ctx.Done():
			return fail(ctx.Err())
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// peakRSS is the most memory the process has had resident (VmHWM).
func (s *serve) peakRSS() (int64, error) {
	return procHWM(s.cmd.Process.Pid)
}

// procHWM reads VmHWM from /proc/<pid>/status, in bytes.
func procHWM(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("peak RSS: %w", err)
	}
	return parseHWM(data)
}

// parseHWM finds "VmHWM:  123456 kB" in the text of /proc/<pid>/status.
func parseHWM(status []byte) (int64, error) {
	for line := range bytes.Lines(status) {
		rest, ok := bytes.CutPrefix(line, []byte("VmHWM:"))
		if !ok {
			continue
		}
		f := strings.Fields(string(rest))
		if len(f) != 2 || f[1] != "kB" {
			break
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			break
		}
		return kb << 10, nil
	}
	return 0, errors.New("peak RSS: no VmHWM line in /proc/<pid>/status")
}

// stop ends the daemon with SIGTERM, as a service manager would, and kills
// it if it is still there after 10 s.
func (s *serve) stop() error {
	select {
	case <-s.exited:
		return nil
	default:
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		return nil
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
		return errors.New("pairgate serve did not stop within 10 s of SIGTERM")
	}
}

func (s *serve) adminToken() (string, error) {
	data, err := os.ReadFile(filepath.Join(s.home, "admin.token"))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(data)), nil
}

// pairgateEnv is the environment for pairgate and pairgate-load: this
// process's without PAIRGATE_* variables, which would point them at
// another home, database or token.
func pairgateEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PAIRGATE_") {
			env = append(env, kv)
		}
	}
	return env
}

// runCmd runs a command to completion and returns its standard output; a
// failure carries its standard error.
func runCmd(ctx context.Context, env []string, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	cmd.WaitDelay = time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s %s: %w\n%s", filepath.Base(name), strings.Join(args, " "), err, tail(stderr.String(), 20))
	}
	return stdout.Bytes(), nil
}

// firstLine sends the rest of the first line written to it on found when
// that line starts with prefix, and discards everything else.
type firstLine struct {
	prefix string
	found  chan<- string
	line   []byte
	done   bool
}

func (f *firstLine) Write(p []byte) (int, error) {
	if f.done {
		return len(p), nil
	}
	f.line = append(f.line, p...)
	if i := bytes.IndexByte(f.line, '\n'); i >= 0 {
		f.done = true
		if rest, ok := strings.CutPrefix(string(f.line[:i]), f.prefix); ok {
			f.found <- rest
		}
		f.line = nil
	}
	return len(p), nil
}

// syncBuffer is a bytes.Buffer safe to read while a process writes to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
