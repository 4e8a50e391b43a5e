package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func parseFixture(t *testing.T, name string) benchSet {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	set, err := parseBench(f, name)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return set
}

// The recorded output of pairing's benchmarks reads as the figures the
// table needs, one value per run, custom metrics included.
func TestParsePairingOutput(t *testing.T) {
	set := parseFixture(t, "pairing.txt")
	fsync, err := set.get("BenchmarkFsync", "fsyncs/s")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(sample{4611, 3930, 4451}, fsync); diff != "" {
		t.Errorf("fsyncs/s (-want +got):\n%s", diff)
	}
	sqlite, err := engineOf(set, "sqlite")
	if err != nil {
		t.Fatal(err)
	}
	want := &engine{challenge1: sample{3119, 2529}, challenge16: sample{6827, 5930}, approve: sample{2516, 2510}}
	if diff := cmp.Diff(want, sqlite, cmp.AllowUnexported(engine{})); diff != "" {
		t.Errorf("sqlite (-want +got):\n%s", diff)
	}
	pg, err := engineOf(set, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(sample{700.1, 672.9}, pg.challenge1); diff != "" {
		t.Errorf("postgres challenge/callers=1 (-want +got):\n%s", diff)
	}
	a, err := inprocOf(set, "BenchmarkAdmitAllowed/allowed=1000000")
	if err != nil {
		t.Fatal(err)
	}
	// ns/op comes back from benchfmt's sec/op.
	if len(a.ns) != 1 || a.ns[0] < 68.49 || a.ns[0] > 68.51 || a.allocs[0] != 0 {
		t.Errorf("allowed=1000000: %+v, want 68.50 ns/op and 0 allocs/op", a)
	}
	// The parallel run is a benchmark of its own, not a second run.
	if p, err := inprocOf(set, "BenchmarkAdmitAllowed/allowed=10/parallel"); err != nil || len(p.ns) != 1 || p.ns[0] > 24 {
		t.Errorf("allowed=10/parallel: %+v, %v; want one run of 23.87 ns/op", p, err)
	}
}

func TestParseDeviceOutput(t *testing.T) {
	tok, err := inprocOf(parseFixture(t, "device.txt"), "BenchmarkIssueVerify")
	if err != nil {
		t.Fatal(err)
	}
	if len(tok.ns) != 3 || tok.ns.median() < 525 || tok.ns.median() > 527 {
		t.Errorf("IssueVerify ns/op %v: want 3 runs, median 526.0", tok.ns)
	}
	if diff := cmp.Diff(sample{1, 1, 1}, tok.allocs); diff != "" {
		t.Errorf("allocs/op (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(sample{48, 48, 48}, tok.bytes); diff != "" {
		t.Errorf("B/op (-want +got):\n%s", diff)
	}
}

// A benchmark or metric that is not in the output is an error that names
// it, not a zero.
func TestMissingBenchmark(t *testing.T) {
	set := parseFixture(t, "device.txt")
	for _, c := range []struct{ name, unit, want string }{
		{"BenchmarkFsync", "fsyncs/s", "no result for BenchmarkFsync"},
		{"BenchmarkIssueVerify", "challenges/s", "BenchmarkIssueVerify reported no challenges/s"},
	} {
		_, err := set.get(c.name, c.unit)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("get(%s, %s): %v, want an error saying %q", c.name, c.unit, err, c.want)
		}
	}
	if _, err := engineOf(parseFixture(t, "engines-fail.txt"), "sqlite"); err == nil || !strings.Contains(err.Error(), "BenchmarkEngines/sqlite/approve") {
		t.Errorf("engines without approve: %v, want an error naming BenchmarkEngines/sqlite/approve", err)
	}
}

// A result line that does not parse fails the parse with its line.
func TestParseMalformedLine(t *testing.T) {
	in := "BenchmarkFsync-2   	    5062	    216871 ns/op	      4611 fsyncs/s\nBenchmarkFsync-2 5149 fast ns/op\n"
	_, err := parseBench(strings.NewReader(in), "out")
	if err == nil || !strings.Contains(err.Error(), "out:2") {
		t.Fatalf("parseBench: %v, want a syntax error at out:2", err)
	}
}

// fakeTestBinary writes bin/pairing.test, a script that prints the
// fixture and exits with code, and the package directory it runs in.
func fakeTestBinary(t *testing.T, fixture string, code int) (root, bin string) {
	t.Helper()
	root, bin = t.TempDir(), t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "pairing"), 0o755); err != nil {
		t.Fatal(err)
	}
	path, err := filepath.Abs(filepath.Join("testdata", fixture))
	if err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\ncat '" + path + "'\nexit " + strconv.Itoa(code) + "\n"
	if err := os.WriteFile(filepath.Join(bin, "pairing.test"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return root, bin
}

// A benchmark that fails makes the run fail with its failure in the
// error; the result lines go to progress as they come.
func TestBenchRunFailure(t *testing.T) {
	root, bin := fakeTestBinary(t, "engines-fail.txt", 1)
	var progress bytes.Buffer
	_, err := benchRun{pkg: "pairing", pattern: "^BenchmarkEngines$", benchtime: "1s", count: 1}.run(context.Background(), root, bin, &progress)
	if err == nil {
		t.Fatal("a failing benchmark run succeeded")
	}
	// The first line, which the table shows, says what failed.
	first, _, _ := strings.Cut(err.Error(), "\n")
	if want := "pairing.test -test.bench '^BenchmarkEngines$': exit status 1: BenchmarkEngines/sqlite/approve: engines_bench_test.go:94: pairing: store unavailable: database is locked"; first != want {
		t.Errorf("error:\n%s\nwant:\n%s", first, want)
	}
	if !strings.Contains(err.Error(), "--- FAIL: BenchmarkEngines\nFAIL") {
		t.Errorf("error without the end of the output: %q", err)
	}
	want := "    BenchmarkEngines/sqlite/challenge/callers=1-2         	    3550	    320571 ns/op	      3119 challenges/s\n" +
		"    BenchmarkEngines/sqlite/challenge/callers=16-2        	    8210	    146487 ns/op	      6827 challenges/s\n" +
		"    --- FAIL: BenchmarkEngines/sqlite/approve\n    --- FAIL: BenchmarkEngines\n    FAIL\n"
	if diff := cmp.Diff(want, progress.String()); diff != "" {
		t.Errorf("progress (-want +got):\n%s", diff)
	}
}

func TestBenchRunSuccess(t *testing.T) {
	root, bin := fakeTestBinary(t, "device.txt", 0)
	set, err := benchRun{pkg: "pairing", pattern: "^BenchmarkIssueVerify$", benchtime: "1s", count: 3}.run(context.Background(), root, bin, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := inprocOf(set, "BenchmarkIssueVerify"); err != nil {
		t.Error(err)
	}
}
