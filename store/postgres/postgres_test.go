package postgres_test

import (
	"context"
	"os"
	"testing"

	"github.com/pairgate/pairgate/internal/pgtest"
	"github.com/pairgate/pairgate/store"
	"github.com/pairgate/pairgate/store/postgres"
	"github.com/pairgate/pairgate/store/storetest"
)

func TestMain(m *testing.M) {
	storetest.ChildMain(backend())
	os.Exit(m.Run())
}

func open(ctx context.Context, dsn string) (store.Store, error) {
	s, err := postgres.Open(ctx, postgres.Options{DSN: dsn})
	if err != nil {
		return nil, err // not a typed nil in an interface
	}
	return s, nil
}

func backend() storetest.Backend {
	return storetest.NewBackend(open, func(t *testing.T) string { return pgtest.DSN(t) })
}

// The same conformance suite as SQLite, on a real PostgreSQL.
func TestConformance(t *testing.T) {
	storetest.Run(t, backend())
}
