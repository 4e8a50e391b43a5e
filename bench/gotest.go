package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/perf/benchfmt"
)

// benchSet is a benchmark run's results: by benchmark name (without the
// -GOMAXPROCS suffix, e.g. "BenchmarkEngines/sqlite/approve"), by unit as
// benchfmt tidies them ("sec/op", "allocs/op", "B/op", and the benchmarks'
// own metrics such as "challenges/s"), one value per run.
type benchSet map[string]map[string]sample

// parseBench reads `go test -bench` output. A line that starts like a
// result but does not parse is an error: a figure silently dropped would
// leave a row that looks measured.
func parseBench(r io.Reader, fileName string) (benchSet, error) {
	set := benchSet{}
	br := benchfmt.NewReader(r, fileName)
	for br.Scan() {
		switch rec := br.Result().(type) {
		case *benchfmt.SyntaxError:
			return nil, rec
		case *benchfmt.Result:
			name := benchName(rec.Name)
			units := set[name]
			if units == nil {
				units = map[string]sample{}
				set[name] = units
			}
			for _, v := range rec.Values {
				units[v.Unit] = append(units[v.Unit], v.Value)
			}
		}
	}
	if err := br.Err(); err != nil {
		return nil, err
	}
	return set, nil
}

// benchName is the benchmark's name as go test prints it, without the
// GOMAXPROCS suffix.
func benchName(n benchfmt.Name) string {
	base, parts := n.Parts()
	var b strings.Builder
	b.WriteString("Benchmark")
	b.Write(base)
	for _, p := range parts {
		if !bytes.HasPrefix(p, []byte("-")) {
			b.Write(p)
		}
	}
	return b.String()
}

// get returns the values of one benchmark's unit, or an error naming what
// is missing.
func (s benchSet) get(name, unit string) (sample, error) {
	units, ok := s[name]
	if !ok {
		return nil, fmt.Errorf("no result for %s in the benchmark output", name)
	}
	v, ok := units[unit]
	if !ok || len(v) == 0 {
		return nil, fmt.Errorf("%s reported no %s", name, unit)
	}
	return v, nil
}

// benchRun is one run of a package's benchmarks.
type benchRun struct {
	pkg       string // "pairing": runs bin/pairing.test in <root>/pairing
	pattern   string // -test.bench
	benchtime string
	count     int
	env       []string // the environment; nil: the process's own
}

// runBench runs the built test binary of a package and parses its output.
// The benchmark lines go to progress as they come.
func (b benchRun) run(ctx context.Context, root, bin string, progress io.Writer) (benchSet, error) {
	args := []string{"-test.run", "^$", "-test.bench", b.pattern, "-test.benchtime", b.benchtime,
		"-test.count", fmt.Sprint(b.count), "-test.timeout", "10m"}
	cmd := exec.CommandContext(ctx, filepath.Join(bin, b.pkg+".test"), args...)
	cmd.Dir = filepath.Join(root, b.pkg) // as go test runs it
	cmd.Env = b.env
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	w := io.MultiWriter(&out, &benchLines{w: progress})
	cmd.Stdout, cmd.Stderr = w, w
	err := cmd.Run()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if err != nil {
		why := ""
		if f := firstFailure(out.String()); f != "" {
			why = ": " + f
		}
		return nil, fmt.Errorf("%s.test -test.bench '%s': %w%s\n%s", b.pkg, b.pattern, err, why, tail(out.String(), 20))
	}
	set, err := parseBench(&out, b.pkg+".test output")
	if err != nil {
		return nil, fmt.Errorf("%s.test -test.bench '%s': %w", b.pkg, b.pattern, err)
	}
	return set, nil
}

// firstFailure is the first failed benchmark of go test output and the
// first line it logged: "BenchmarkX/y: x_test.go:12: what went wrong".
func firstFailure(out string) string {
	name := ""
	for _, line := range strings.Split(out, "\n") {
		if n, ok := strings.CutPrefix(line, "--- FAIL: "); ok && name == "" {
			name = strings.Fields(n + " ")[0]
			continue
		}
		if name != "" && strings.HasPrefix(line, "    ") {
			return name + ": " + strings.TrimSpace(line)
		}
	}
	return name
}

// benchLines passes on the lines of results ("Benchmark…") and failures
// ("--- FAIL", "FAIL") and nothing else, indented.
type benchLines struct {
	w       io.Writer
	partial []byte
}

func (l *benchLines) Write(p []byte) (int, error) {
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := string(l.partial[:i])
		l.partial = l.partial[i+1:]
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "Benchmark") || strings.HasPrefix(t, "--- FAIL") || strings.HasPrefix(t, "FAIL") {
			fmt.Fprintln(l.w, "    "+t)
		}
	}
}

// buildTests builds the test binaries of the packages whose benchmarks
// the run uses, once, into dir: pairing.test and device.test.
func buildTests(ctx context.Context, root, dir string) error {
	return goCmd(ctx, root, "test", "-c", "-o", dir+string(os.PathSeparator), "./pairing/", "./device/")
}

// buildCommands builds cmd/pairgate and cmd/pairgate-load into dir.
func buildCommands(ctx context.Context, root, dir string) error {
	return goCmd(ctx, root, "build", "-o", dir+string(os.PathSeparator), "./cmd/pairgate", "./cmd/pairgate-load")
}

func goCmd(ctx context.Context, root string, args ...string) error {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, tail(string(out), 30))
	}
	return nil
}

// moduleRoot finds the pairgate module from the working directory.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Path}}\t{{.Dir}}").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", fmt.Errorf("go list -m: %w: %s", err, bytes.TrimSpace(ee.Stderr))
		}
		return "", fmt.Errorf("go list -m: %w", err)
	}
	path, dir, _ := strings.Cut(strings.TrimSpace(string(out)), "\t")
	if path != modulePath {
		return "", fmt.Errorf("the module here is %q, not %s: run bench from the pairgate repository", path, modulePath)
	}
	return dir, nil
}

const modulePath = "github.com/pairgate/pairgate"

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
