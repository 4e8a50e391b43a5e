// Command bench runs every SPEC §7 measurement on this machine in one run
// and writes the figures as a Markdown table, for README's Benchmarks
// section: first this machine's fsync rate (durable writes are read as
// ratios of it), then the in-process benchmarks of pairing and device (as
// subprocesses, their output parsed with golang.org/x/perf/benchfmt),
// `pairgate serve` built and started in temporary homes (start-up with a
// million allowed senders, POST /v1/admit under pairgate-load, the setup
// code's terminal QR, and with PostgreSQL a revocation seen by a second
// replica), and the fsync rate again.
//
// Usage, from the repository:
//
//	go run ./bench [-o FILE] [-postgres DSN] [-quick]
//
// The table goes to standard output (and FILE), progress to standard
// error. A full run takes about four minutes on 2 cores; -quick is a smoke
// run of every step whose figures mean little. The exit status is 1 when a
// step failed (the table says which rows), 2 for bad flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// postgresEnv is the variable the PostgreSQL tests read their DSN from;
// -postgres defaults to it.
const postgresEnv = "PAIRGATE_TEST_POSTGRES"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// options are the parsed flags.
type options struct {
	out        string
	dsn        string
	dsnFromEnv bool
	quick      bool
}

func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.out, "o", "", "also write the Markdown to `FILE`")
	fs.StringVar(&o.dsn, "postgres", getenv(postgresEnv), "PostgreSQL `DSN` for the PostgreSQL rows and the replicas (default $"+postgresEnv+"); a schema of the run's own is created and dropped")
	fs.BoolVar(&o.quick, "quick", false, "a smoke run: every step, briefly; the figures mean little")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: go run ./bench [flags]\n\nRuns every SPEC §7 measurement on this machine and prints a Markdown table.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q: everything is a flag (see -h)", fs.Arg(0))
	}
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == "postgres" })
	o.dsnFromEnv = !set && o.dsn != ""
	return o, nil
}

// plan is how long each measurement runs.
type plan struct {
	benchtime      string // -test.benchtime of the in-process benchmarks
	admitBenchtime string // of BenchmarkAdmitAllowed (six nanosecond benchmarks)
	count          int    // -test.count
	sqliteOps      int    // operations a run of BenchmarkEngines on SQLite
	pgOps          int    // and on PostgreSQL
	load           loadPlan
	starts         int // of `pairgate serve` with a million allowed
	revocations    int
}

func newPlan(quick bool) plan {
	if quick {
		return plan{benchtime: "100ms", admitBenchtime: "100ms", count: 1, sqliteOps: 200, pgOps: 100, starts: 1, revocations: 20,
			load: loadPlan{conns: 16, allowed: 1000, duration: time.Second, rounds: 1, unknownRatio: 0.1}}
	}
	return plan{benchtime: "1s", admitBenchtime: "500ms", count: 3, sqliteOps: 2000, pgOps: 1000, starts: 3, revocations: 200,
		load: loadPlan{conns: 16, allowed: 1000, duration: 5 * time.Second, rounds: 2, unknownRatio: 0.1}}
}

// run is the program; main only wires it to the process.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	o, err := parseFlags(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 2
	}
	dsnEnv := ""
	if o.dsnFromEnv {
		dsnEnv = o.dsn
	}
	r := &results{when: time.Now(), command: commandLine(args, dsnEnv), plan: newPlan(o.quick), postgres: o.dsn != "",
		admit: map[int]*inproc{}, why: map[string]string{}}
	r.machine = thisMachine(ctx)

	root, err := moduleRoot(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 1
	}
	dir, err := os.MkdirTemp("", "pairgate-bench-")
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 1
	}
	defer os.RemoveAll(dir)

	steps := &runner{stderr: stderr, why: r.why}
	measure(ctx, steps, r, root, dir, o.dsn)
	r.took = time.Since(r.when)

	var md strings.Builder
	if err := r.writeMarkdown(&md); err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 1
	}
	io.WriteString(stdout, md.String())
	if o.out != "" {
		if err := os.WriteFile(o.out, []byte(md.String()), 0o644); err != nil {
			fmt.Fprintln(stderr, "bench:", err)
			return 1
		}
	}
	if len(steps.failed) > 0 {
		fmt.Fprintf(stderr, "bench: failed: %s (their rows say so; the errors are above)\n", strings.Join(steps.failed, ", "))
		return 1
	}
	fmt.Fprintf(stderr, "bench: done in %s\n", r.took.Round(time.Second))
	return 0
}

// measure runs the steps in order into r; a step that fails leaves its
// figures nil and its reason in r.why, and the others still run.
func measure(ctx context.Context, steps *runner, r *results, root, dir, dsn string) {
	p := r.plan
	bin := filepath.Join(dir, "bin")
	if !steps.do(ctx, stepBuild, "the test binaries of pairing and device, cmd/pairgate and cmd/pairgate-load", func(ctx context.Context) error {
		if err := buildTests(ctx, root, bin); err != nil {
			return err
		}
		return buildCommands(ctx, root, bin)
	}) {
		steps.skipRest("not measured: the build failed")
		return
	}
	env := benchEnv(dsn)
	fsync := func(into *sample) func(context.Context) error {
		return func(ctx context.Context) error {
			set, err := benchRun{pkg: "pairing", pattern: "^BenchmarkFsync$", benchtime: p.benchtime, count: p.count, env: env}.run(ctx, root, bin, steps.stderr)
			if err != nil {
				return err
			}
			*into, err = set.get("BenchmarkFsync", "fsyncs/s")
			return err
		}
	}
	steps.do(ctx, stepFsync, "BenchmarkFsync", fsync(&r.fsyncFirst))

	steps.do(ctx, stepAdmit, "BenchmarkAdmitAllowed", func(ctx context.Context) error {
		set, err := benchRun{pkg: "pairing", pattern: "^BenchmarkAdmitAllowed$", benchtime: p.admitBenchtime, count: p.count, env: env}.run(ctx, root, bin, steps.stderr)
		if err != nil {
			return err
		}
		for _, n := range admitSizes() {
			a, err := inprocOf(set, fmt.Sprintf("BenchmarkAdmitAllowed/allowed=%d", n))
			if err != nil {
				return err
			}
			r.admit[n] = a
		}
		return nil
	})

	steps.do(ctx, stepEngines, fmt.Sprintf("BenchmarkEngines on SQLite, %d operations a run", p.sqliteOps), func(ctx context.Context) (err error) {
		r.sqlite, err = engines(ctx, root, bin, "sqlite", p.sqliteOps, p.count, env, steps.stderr)
		return err
	})
	if dsn == "" {
		steps.skip(stepPostgres, noPostgres)
	} else {
		steps.do(ctx, stepPostgres, fmt.Sprintf("BenchmarkEngines on PostgreSQL, %d operations a run", p.pgOps), func(ctx context.Context) (err error) {
			r.pg, err = engines(ctx, root, bin, "postgres", p.pgOps, p.count, env, steps.stderr)
			return err
		})
	}

	steps.do(ctx, stepStartup, fmt.Sprintf("pairgate serve, %d starts", p.starts), func(ctx context.Context) (err error) {
		r.startup, err = measureStartup(ctx, bin, dir, p.starts)
		return err
	})

	steps.do(ctx, stepToken, "BenchmarkIssueVerify", func(ctx context.Context) error {
		set, err := benchRun{pkg: "device", pattern: "^BenchmarkIssueVerify$", benchtime: p.benchtime, count: p.count, env: env}.run(ctx, root, bin, steps.stderr)
		if err != nil {
			return err
		}
		r.token, err = inprocOf(set, "BenchmarkIssueVerify")
		return err
	})

	steps.do(ctx, stepLoad, fmt.Sprintf("pairgate-load, %d × (all allowed, then %.0f%% unknown), %s each", p.load.rounds, 100*p.load.unknownRatio, p.load.duration), func(ctx context.Context) (err error) {
		r.load, err = measureLoad(ctx, bin, dir, p.load)
		return err
	})

	steps.do(ctx, stepQR, "pairgate setup-code", func(ctx context.Context) (err error) {
		r.qr, err = measureQR(ctx, bin, dir)
		return err
	})

	if dsn == "" {
		steps.skip(stepRevocation, noPostgres)
	} else {
		steps.do(ctx, stepRevocation, fmt.Sprintf("2 × pairgate serve on PostgreSQL, %d revocations", p.revocations), func(ctx context.Context) (err error) {
			r.revocation, err = measureRevocation(ctx, bin, dir, dsn, p.revocations)
			return err
		})
	}

	steps.do(ctx, stepFsyncAgain, "BenchmarkFsync", fsync(&r.fsyncLast))
}

// inprocOf reads a benchmark's time and allocations per operation.
func inprocOf(set benchSet, name string) (*inproc, error) {
	sec, err := set.get(name, "sec/op")
	if err != nil {
		return nil, err
	}
	allocs, err := set.get(name, "allocs/op")
	if err != nil {
		return nil, err
	}
	bytes, err := set.get(name, "B/op")
	if err != nil {
		return nil, err
	}
	ns := make(sample, len(sec))
	for i, s := range sec {
		ns[i] = s * 1e9
	}
	return &inproc{ns: ns, allocs: allocs, bytes: bytes}, nil
}

// engines runs BenchmarkEngines on one engine, ops operations a run: a
// fixed count rather than a duration, because each sub-benchmark opens a
// fresh store with 10,000 allowed senders for every round of b.N it tries,
// which on PostgreSQL (a schema and its migrations) costs more than the
// measurement itself.
func engines(ctx context.Context, root, bin, name string, ops, count int, env []string, progress io.Writer) (*engine, error) {
	set, err := benchRun{pkg: "pairing", pattern: "^BenchmarkEngines$/^" + name + "/", benchtime: fmt.Sprintf("%dx", ops), count: count, env: env}.run(ctx, root, bin, progress)
	if err != nil {
		return nil, err
	}
	return engineOf(set, name)
}

// engineOf reads BenchmarkEngines' rates for one engine.
func engineOf(set benchSet, name string) (*engine, error) {
	prefix := "BenchmarkEngines/" + name
	var e engine
	var err error
	if e.challenge1, err = set.get(prefix+"/challenge/callers=1", "challenges/s"); err != nil {
		return nil, err
	}
	if e.challenge16, err = set.get(prefix+"/challenge/callers=16", "challenges/s"); err != nil {
		return nil, err
	}
	if e.approve, err = set.get(prefix+"/approve", "approvals/s"); err != nil {
		return nil, err
	}
	return &e, nil
}

// benchEnv is the environment of the benchmarks: this process's, with the
// PostgreSQL DSN the run was given (or none).
func benchEnv(dsn string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, postgresEnv+"=") {
			env = append(env, kv)
		}
	}
	if dsn != "" {
		env = append(env, postgresEnv+"="+dsn)
	}
	return env
}

// runner runs the steps, saying on stderr what runs and how long it took.
type runner struct {
	stderr io.Writer
	why    map[string]string // by step: why its figures are missing
	failed []string
}

// do runs step f and reports whether it succeeded; after a failure it
// records why.
func (s *runner) do(ctx context.Context, step, what string, f func(context.Context) error) bool {
	if err := ctx.Err(); err != nil {
		s.skip(step, "not measured: interrupted")
		return false
	}
	fmt.Fprintf(s.stderr, "bench: %s (%s) …\n", step, what)
	start := time.Now()
	err := f(ctx)
	if err != nil {
		first, _, _ := strings.Cut(err.Error(), "\n")
		s.why[step] = "failed: " + first
		s.failed = append(s.failed, step)
		fmt.Fprintf(s.stderr, "bench: %s failed after %s: %v\n", step, time.Since(start).Round(100*time.Millisecond), err)
		return false
	}
	fmt.Fprintf(s.stderr, "bench: %s done in %s\n", step, time.Since(start).Round(100*time.Millisecond))
	return true
}

// skip records a step that cannot run.
func (s *runner) skip(step, why string) {
	s.why[step] = why
	fmt.Fprintf(s.stderr, "bench: %s: %s\n", step, why)
}

// skipRest marks every step that has not run with why.
func (s *runner) skipRest(reason string) {
	for _, step := range []string{stepFsync, stepAdmit, stepEngines, stepPostgres, stepStartup, stepToken, stepLoad, stepQR, stepRevocation, stepFsyncAgain} {
		if _, ok := s.why[step]; !ok {
			s.why[step] = reason
		}
	}
}
