package main

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite testdata/table.md from the rendering")

// goodRun is a run that meets every target: the README figures of the
// development machine.
func goodRun() *results {
	return &results{
		when:    time.Date(2026, 12, 2, 17, 40, 0, 0, time.FixedZone("CET", 3600)),
		took:    3*time.Minute + 12*time.Second,
		machine: machine{cpu: "Intel(R) Xeon(R) Processor", cores: 2, gomaxprocs: 2, goVersion: "go1.26.8", os: "linux/amd64, Linux 6.1.0", load: "0.50"},
		command: "PAIRGATE_TEST_POSTGRES='postgres://postgres@127.0.0.1:5432/test?sslmode=disable' go run ./bench -o /tmp/bench.md",
		plan:    newPlan(false),
		// Median of the six: 4,000/s.
		postgres:   true,
		fsyncFirst: sample{4000, 4400, 3600},
		fsyncLast:  sample{3800, 4200, 4000},
		admit: map[int]*inproc{
			10:        {ns: sample{58, 61, 60}, allocs: sample{0, 0, 0}, bytes: sample{0, 0, 0}},
			10_000:    {ns: sample{76, 80, 78}, allocs: sample{0, 0, 0}, bytes: sample{0, 0, 0}},
			1_000_000: {ns: sample{79, 80, 80}, allocs: sample{0, 0, 0}, bytes: sample{0, 0, 0}},
		},
		sqlite:     &engine{challenge1: sample{2952, 3138, 3000}, challenge16: sample{5906, 6737, 6000}, approve: sample{2108, 2598, 2400}},
		pg:         &engine{challenge1: sample{700, 822, 800}, challenge16: sample{1192, 1297, 1200}, approve: sample{617, 635, 620}},
		token:      &inproc{ns: sample{560, 640, 600}, allocs: sample{1, 1, 1}, bytes: sample{48, 48, 48}},
		startup:    &startup{seconds: sample{1.77, 1.94, 1.80}, peakMB: sample{130, 131, 130}},
		load:       goodLoad(),
		revocation: &revocation{rounds: 200, p50: 3100 * time.Microsecond, p99: 8 * time.Millisecond, max: 9 * time.Millisecond},
		qr:         &qrSize{cols: 61, lines: 31, codeLen: 202, urlLen: 40},
		why:        map[string]string{},
	}
}

func goodLoad() *daemonLoad {
	return &daemonLoad{plan: newPlan(false).load,
		all:     loadFigures{rps: sample{20280, 20690}, p99: sample{3.97, 4.10}, requests: 205000},
		unknown: loadFigures{rps: sample{16568, 17895}, p99: sample{4.7, 5.0}, requests: 172000},
		ratio:   sample{0.84, 0.87},
	}
}

// The whole rendering, as README includes it: compared with
// testdata/table.md (go test ./bench -update rewrites it).
func TestMarkdownGolden(t *testing.T) {
	var b strings.Builder
	if err := goodRun().writeMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "table.md")
	if *update {
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), b.String()); diff != "" {
		t.Errorf("markdown (-%s +got):\n%s", golden, diff)
	}
}

func rowOf(t *testing.T, r *results, path string) row {
	t.Helper()
	for _, x := range r.rows() {
		if strings.HasPrefix(x.path, path) {
			return x
		}
	}
	t.Fatalf("no row for %q", path)
	return row{}
}

// The date is UTC, whatever the zone of the clock; the machine and the
// command are in the header.
func TestMarkdownHeader(t *testing.T) {
	var b strings.Builder
	if err := goodRun().writeMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(b.String(), "\n")
	want := "Measured 2026-12-02 16:40 UTC on Intel(R) Xeon(R) Processor (2 cores, GOMAXPROCS 2), go1.26.8, linux/amd64, Linux 6.1.0; load average 0.50 at the start; the run took 3m12s:"
	if first != want {
		t.Errorf("first line:\n%s\nwant:\n%s", first, want)
	}
	if !strings.Contains(b.String(), "```sh\n"+goodRun().command+"\n```\n") {
		t.Errorf("the command is not in a sh block:\n%s", b.String())
	}
}

func TestEveryTargetMet(t *testing.T) {
	rows := goodRun().rows()
	if len(rows) != 12 {
		t.Fatalf("%d rows, want 12: fsync, the ten SPEC §7 targets, PostgreSQL", len(rows))
	}
	for _, x := range rows[1:11] {
		if x.met != "yes" {
			t.Errorf("%s: met %q, want yes (measured %s)", x.path, x.met, x.measured)
		}
	}
	for _, x := range []row{rows[0], rows[11]} {
		if x.met != "—" {
			t.Errorf("%s has no target: met %q, want —", x.path, x.met)
		}
	}
}

// Durable rows are rates over the median fsync rate of the run (4,000/s).
func TestRatios(t *testing.T) {
	r := goodRun()
	for _, c := range []struct{ path, want string }{
		{"this machine's `fsync`", "1 (4,000/s)"},
		{"new challenge (durable write)", "0.75"},
		{"approve with 10,000 allowed", "0.60"},
		{"new challenge, 16 concurrent", "1.50"},
		{"new challenge 1 / 16 callers, approve, PostgreSQL", "0.20 / 0.30, 0.15"},
		{"`POST /v1/admit` on loopback", "—"},
	} {
		if got := rowOf(t, r, c.path).ratio; got != c.want {
			t.Errorf("%s: ratio %q, want %q", c.path, got, c.want)
		}
	}
	r.fsyncFirst, r.fsyncLast = nil, nil
	r.why[stepFsync], r.why[stepFsyncAgain] = "failed: exit status 1", "failed: exit status 1"
	if got := rowOf(t, r, "new challenge (durable write)").ratio; got != "—" {
		t.Errorf("without an fsync rate: ratio %q, want —", got)
	}
	if got := rowOf(t, r, "this machine's `fsync`").measured; got != "failed: exit status 1 / failed: exit status 1" {
		t.Errorf("fsync row without fsync: %q", got)
	}
}

// met? compares the median with the target; one figure past it in any
// run does not make a miss, and neither does one good run a pass.
func TestMetFollowsTheMedian(t *testing.T) {
	for _, c := range []struct {
		name   string
		change func(*results)
		path   string
		want   string
	}{
		{"challenge median below 1,000", func(r *results) { r.sqlite.challenge1 = sample{900, 1200, 950} }, "new challenge (durable write)", "no"},
		{"challenge median above 1,000", func(r *results) { r.sqlite.challenge1 = sample{900, 1200, 1100} }, "new challenge (durable write)", "yes"},
		{"16 callers below 3,000", func(r *results) { r.sqlite.challenge16 = sample{2900, 3100, 2990} }, "new challenge, 16", "no"},
		{"approve below 1,000", func(r *results) { r.sqlite.approve = sample{999} }, "approve with", "no"},
		{"admit over 100 ns at 1,000,000", func(r *results) { r.admit[1_000_000].ns = sample{101, 99, 102} }, "`Admit`", "no"},
		{"admit allocates once", func(r *results) { r.admit[10].allocs = sample{0, 1, 0} }, "`Admit`", "no"},
		{"daemon below 20,000 req/s", func(r *results) { r.load.all.rps = sample{19000, 20500} }, "`POST /v1/admit` on loopback", "no"},
		{"daemon p99 over 5 ms", func(r *results) { r.load.all.p99 = sample{5.1, 5.2} }, "`POST /v1/admit` on loopback", "no"},
		{"daemon errors", func(r *results) { r.load.all.errors = 3 }, "`POST /v1/admit` on loopback", "no"},
		{"unknown senders at 0.55", func(r *results) { r.load.ratio = sample{0.5, 0.6} }, "`POST /v1/admit` with 10 %", "no"},
		{"unknown senders p99 over 5 ms", func(r *results) { r.load.unknown.p99 = sample{5.5, 5.0} }, "`POST /v1/admit` with 10 %", "no"},
		{"start-up over 3 s", func(r *results) { r.startup.seconds = sample{3.1, 2.9, 3.2} }, "start-up", "no"},
		{"start-up over 300 MB", func(r *results) { r.startup.peakMB = sample{301, 301, 299} }, "start-up", "no"},
		{"token over 2 µs", func(r *results) { r.token.ns = sample{2100, 1900, 2050} }, "setup token", "no"},
		{"token with 5 allocs", func(r *results) { r.token.allocs = sample{5, 4, 4} }, "setup token", "no"},
		{"revocation p99 over 1 s", func(r *results) { r.revocation.p99 = 1100 * time.Millisecond }, "revocation", "no"},
		{"QR 81 columns", func(r *results) { r.qr.cols = 81 }, "terminal QR", "no"},
		{"QR 80 columns", func(r *results) { r.qr.cols = 80 }, "terminal QR", "yes"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := goodRun()
			c.change(r)
			if x := rowOf(t, r, c.path); x.met != c.want {
				t.Errorf("met %q, want %q (measured %s)", x.met, c.want, x.measured)
			}
		})
	}
}

func TestFailedRequestsAreShown(t *testing.T) {
	r := goodRun()
	r.load.all.errors, r.load.all.kinds = 4, map[string]int64{"timeout": 1, "http_503": 3}
	got := rowOf(t, r, "`POST /v1/admit` on loopback").measured
	if want := "; 4 of 205000 requests failed (http_503 3, timeout 1)"; !strings.HasSuffix(got, want) {
		t.Errorf("measured %q, want it to end %q", got, want)
	}
}

// A figure that is missing says why in its row, and has no met?.
func TestMissingFigures(t *testing.T) {
	r := goodRun()
	r.load, r.why[stepLoad] = nil, "failed: pairgate-load: exit status 1"
	r.startup = nil // no reason recorded
	r.postgres, r.pg, r.revocation = false, nil, nil
	for _, c := range []struct{ path, want string }{
		{"`POST /v1/admit` on loopback", "failed: pairgate-load: exit status 1"},
		{"`POST /v1/admit` with 10 %", "failed: pairgate-load: exit status 1"},
		{"start-up", "not measured"},
		{"revocation", "not measured: needs PostgreSQL (-postgres DSN or $PAIRGATE_TEST_POSTGRES)"},
		{"new challenge 1 / 16 callers, approve, PostgreSQL", "not measured: needs PostgreSQL (-postgres DSN or $PAIRGATE_TEST_POSTGRES)"},
	} {
		x := rowOf(t, r, c.path)
		if x.measured != c.want || x.met != "—" || x.ratio != "—" {
			t.Errorf("%s: measured %q, ratio %q, met %q; want %q, —, —", c.path, x.measured, x.ratio, x.met, c.want)
		}
	}
	// With a DSN, a PostgreSQL row that is missing gives its step's reason.
	r.postgres, r.why[stepPostgres] = true, "failed: no result for BenchmarkEngines/postgres/approve in the benchmark output"
	if x := rowOf(t, r, "new challenge 1 / 16 callers, approve, PostgreSQL"); x.measured != r.why[stepPostgres] {
		t.Errorf("PostgreSQL row: %q, want %q", x.measured, r.why[stepPostgres])
	}
}

func TestCellEscapesPipes(t *testing.T) {
	if got := cell("a | b\nc"); got != `a \| b c` {
		t.Errorf("cell: %q", got)
	}
}
