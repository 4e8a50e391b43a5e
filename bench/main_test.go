package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var full = flag.Bool("full", false, "run every measurement briefly (go run ./bench -quick) and check the table; about a minute")

func noEnv(string) string { return "" }

func TestBadFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"quick"}, `bench: unexpected argument "quick": everything is a flag (see -h)`},
		{[]string{"-count", "3"}, "flag provided but not defined: -count"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), c.args, &stdout, &stderr, noEnv); code != 2 {
			t.Errorf("%v: exit %d, want 2", c.args, code)
		}
		if !strings.Contains(stderr.String(), c.want) {
			t.Errorf("%v: stderr %q, want it to say %q", c.args, stderr.String(), c.want)
		}
		if stdout.Len() > 0 {
			t.Errorf("%v: printed %q", c.args, stdout.String())
		}
	}
}

func TestHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"-h"}, &stdout, &stderr, noEnv); code != 0 {
		t.Errorf("-h: exit %d, want 0", code)
	}
	for _, want := range []string{"Usage: go run ./bench [flags]", "-postgres DSN", "-quick", "-o FILE"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("-h does not say %q:\n%s", want, stderr.String())
		}
	}
}

// -postgres defaults to $PAIRGATE_TEST_POSTGRES, and the command line says
// where the DSN came from.
func TestPostgresFromEnv(t *testing.T) {
	env := func(k string) string {
		if k == postgresEnv {
			return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
		}
		return ""
	}
	o, err := parseFlags(nil, env, &bytes.Buffer{})
	if err != nil || o.dsn != env(postgresEnv) || !o.dsnFromEnv {
		t.Errorf("from the environment: %+v, %v", o, err)
	}
	o, err = parseFlags([]string{"-postgres", "postgres://other/db"}, env, &bytes.Buffer{})
	if err != nil || o.dsn != "postgres://other/db" || o.dsnFromEnv {
		t.Errorf("-postgres over the environment: %+v, %v", o, err)
	}
	o, err = parseFlags([]string{"-postgres", ""}, env, &bytes.Buffer{})
	if err != nil || o.dsn != "" {
		t.Errorf("-postgres '' turns PostgreSQL off: %+v, %v", o, err)
	}
}

// The whole program, briefly, behind -full: every step must succeed and
// every row be measured (PostgreSQL's when $PAIRGATE_TEST_POSTGRES is set).
func TestQuickRun(t *testing.T) {
	if !*full {
		t.Skip("runs every measurement (about a minute): go test ./bench -run TestQuickRun -full")
	}
	out := filepath.Join(t.TempDir(), "bench.md")
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"-quick", "-o", out}, &stdout, &stderr, os.Getenv)
	t.Logf("stderr:\n%s", stderr.String())
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	file, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(file, stdout.Bytes()) {
		t.Errorf("-o wrote something else than stdout:\n%s", file)
	}
	var rows []string
	for _, l := range strings.Split(stdout.String(), "\n") {
		if strings.HasPrefix(l, "| ") && !strings.HasPrefix(l, "| path |") {
			rows = append(rows, l)
		}
	}
	if len(rows) != 12 {
		t.Errorf("%d rows, want 12:\n%s", len(rows), stdout.String())
	}
	for _, l := range rows {
		if strings.Contains(l, "failed") || (os.Getenv(postgresEnv) != "" && strings.Contains(l, "not measured")) {
			t.Errorf("row not measured: %s", l)
		}
	}
}

// A step that fails is named on stderr with its whole error, and its row
// gets the first line; an interrupted run marks the steps it did not run.
func TestRunnerSteps(t *testing.T) {
	var stderr bytes.Buffer
	s := &runner{stderr: &stderr, why: map[string]string{}}
	if !s.do(context.Background(), stepQR, "pairgate setup-code", func(context.Context) error { return nil }) {
		t.Error("a step that succeeded reports failure")
	}
	if s.do(context.Background(), stepLoad, "pairgate-load", func(context.Context) error {
		return errors.New("pairgate-load -json: EOF\nthe rest of its output")
	}) {
		t.Error("a step that failed reports success")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ran := false
	s.do(ctx, stepToken, "BenchmarkIssueVerify", func(context.Context) error { ran = true; return nil })
	if ran {
		t.Error("a step ran after the run was interrupted")
	}
	want := map[string]string{stepLoad: "failed: pairgate-load -json: EOF", stepToken: "not measured: interrupted"}
	if diff := cmp.Diff(want, s.why); diff != "" {
		t.Errorf("why (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{stepLoad}, s.failed); diff != "" {
		t.Errorf("failed (-want +got):\n%s", diff)
	}
	for _, line := range []string{"bench: setup code QR (pairgate setup-code) …", "bench: setup code QR done in",
		"bench: daemon under load failed after", "pairgate-load -json: EOF\nthe rest of its output", "bench: setup token: not measured: interrupted"} {
		if !strings.Contains(stderr.String(), line) {
			t.Errorf("stderr does not say %q:\n%s", line, stderr.String())
		}
	}

	s.skipRest("not measured: the build failed")
	for _, step := range []string{stepFsync, stepPostgres, stepRevocation, stepFsyncAgain} {
		if s.why[step] != "not measured: the build failed" {
			t.Errorf("%s after a failed build: %q", step, s.why[step])
		}
	}
	if s.why[stepLoad] != "failed: pairgate-load -json: EOF" {
		t.Errorf("skipRest overwrote a failure: %q", s.why[stepLoad])
	}
}
