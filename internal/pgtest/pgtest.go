// Package pgtest gives tests a PostgreSQL schema of their own. It is for
// tests only.
//
// The database comes from $PAIRGATE_TEST_POSTGRES (a DSN, e.g.
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable). Without it a
// test is skipped with a message saying how to run it, except in CI (CI
// set), where a missing PostgreSQL fails the test.
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// Env is the variable that holds the test database's DSN.
const Env = "PAIRGATE_TEST_POSTGRES"

// DSN creates a fresh schema for this test (dropped at its end) and returns
// a DSN whose search_path selects it, so runs and tests never collide.
func DSN(t testing.TB) string {
	t.Helper()
	base := os.Getenv(Env)
	if base == "" {
		msg := "PostgreSQL tests need $" + Env + ", e.g. " + Env + "=postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	cfg, err := pgx.ParseConfig(base)
	if err != nil {
		t.Fatalf("$%s cannot be parsed: %v", Env, err)
	}
	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	var b [6]byte
	rand.Read(b[:])
	schema := "pgtest_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
		t.Fatalf("PostgreSQL at $%s: create schema: %v", Env, err)
	}
	t.Cleanup(func() { drop(base, schema) })
	return withSearchPath(base, schema)
}

func drop(base, schema string) {
	cfg, err := pgx.ParseConfig(base)
	if err != nil {
		return
	}
	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	db.ExecContext(ctx, `DROP SCHEMA `+schema+` CASCADE`)
}

// withSearchPath adds search_path to a URL or keyword/value DSN.
func withSearchPath(dsn, schema string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err == nil {
			q := u.Query()
			q.Set("search_path", schema)
			u.RawQuery = q.Encode()
			return u.String()
		}
	}
	return dsn + " search_path=" + schema
}

// Open opens the DSN with database/sql, for a test's own look at the data.
func Open(t testing.TB, dsn string) *sql.DB {
	t.Helper()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	db := stdlib.OpenDB(*cfg)
	t.Cleanup(func() { db.Close() })
	return db
}
