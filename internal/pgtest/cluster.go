package pgtest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
)

// Cluster is a PostgreSQL server of one test's own, made with Debian's
// postgresql-common tools, for tests that stop or restart the server: the
// shared one at $PAIRGATE_TEST_POSTGRES serves every other test meanwhile.
type Cluster struct {
	t             testing.TB
	version, name string
	port          int
}

// NewCluster creates and starts a cluster on a free loopback port, trusting
// local connections; it is dropped at the end of the test. It needs root
// (or the postgres user) and pg_createcluster: without them the test is
// skipped, except in CI, where it fails.
func NewCluster(t testing.TB) *Cluster {
	t.Helper()
	unable := func(why string) {
		msg := "a test PostgreSQL cluster of its own: " + why
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	if _, err := exec.LookPath("pg_createcluster"); err != nil {
		unable("pg_createcluster is missing (apt-get install postgresql)")
	}
	if os.Geteuid() != 0 {
		unable("pg_createcluster needs root")
	}
	versions, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	if len(versions) == 0 {
		unable("no PostgreSQL server under /usr/lib/postgresql")
	}
	slices.Sort(versions)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	var b [4]byte
	rand.Read(b[:])
	c := &Cluster{t: t, version: filepath.Base(filepath.Dir(filepath.Dir(versions[len(versions)-1]))), name: "pgtest" + hex.EncodeToString(b[:]), port: port}
	if out, err := exec.Command("pg_createcluster", c.version, c.name, "-p", fmt.Sprint(port), "--", "--auth=trust").CombinedOutput(); err != nil {
		unable(fmt.Sprintf("pg_createcluster: %v\n%s", err, out))
	}
	t.Cleanup(func() { exec.Command("pg_dropcluster", "--stop", c.version, c.name).Run() })
	c.Ctl("start")
	return c
}

// DSN is the cluster's postgres database.
func (c *Cluster) DSN() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.port)
}

// Ctl runs pg_ctlcluster with action (start, stop, restart) and fails the
// test if it fails.
func (c *Cluster) Ctl(action string) {
	c.t.Helper()
	if out, err := exec.Command("pg_ctlcluster", "--skip-systemctl-redirect", c.version, c.name, action).CombinedOutput(); err != nil {
		c.t.Fatalf("pg_ctlcluster %s %s %s: %v\n%s", c.version, c.name, action, err, out)
	}
}
