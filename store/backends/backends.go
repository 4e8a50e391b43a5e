// Package backends opens the store engine a configuration names: the
// registry of engines by driver name ("sqlite", "postgres"), through which
// the CLI and the daemon open their store.
package backends

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/pairgate/pairgate/store"
	"github.com/pairgate/pairgate/store/postgres"
	"github.com/pairgate/pairgate/store/sqlite"
)

// Config says which engine to open, and how.
type Config struct {
	// Driver is "sqlite" (the default when empty) or "postgres".
	Driver string
	// Path is the SQLite database file.
	Path string
	// DSN is the PostgreSQL connection string.
	DSN string
	// PollOnly turns PostgreSQL's LISTEN/NOTIFY off (pairing.storage.notify
	// false).
	PollOnly bool
	// IntegrityCheck is for a long-running process (serve): SQLite checks
	// its whole file at open and at this interval. Other engines ignore it.
	IntegrityCheck time.Duration
	Logger         *slog.Logger
}

type opener func(ctx context.Context, c Config) (store.Store, error)

// engines maps each driver name to how to open it.
func engines() map[string]opener {
	return map[string]opener{
		"sqlite": func(ctx context.Context, c Config) (store.Store, error) {
			s, err := sqlite.Open(ctx, sqlite.Options{Path: c.Path, IntegrityCheck: c.IntegrityCheck, Logger: c.Logger})
			if err != nil {
				return nil, err // not a typed nil in an interface
			}
			return s, nil
		},
		"postgres": func(ctx context.Context, c Config) (store.Store, error) {
			s, err := postgres.Open(ctx, postgres.Options{DSN: c.DSN, PollOnly: c.PollOnly, Logger: c.Logger})
			if err != nil {
				return nil, err
			}
			return s, nil
		},
	}
}

// Drivers lists the driver names Open knows, sorted.
func Drivers() []string {
	var names []string
	for name := range engines() {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// Open opens the store c names.
func Open(ctx context.Context, c Config) (store.Store, error) {
	driver := c.Driver
	if driver == "" {
		driver = "sqlite"
	}
	open, ok := engines()[driver]
	if !ok {
		return nil, fmt.Errorf("storage driver %q: want one of %s", driver, strings.Join(Drivers(), ", "))
	}
	return open(ctx, c)
}

// Describe names the store c opens, for messages: the SQLite file, or the
// PostgreSQL database without its password.
func Describe(c Config) string {
	if c.Driver == "postgres" {
		return postgres.Describe(c.DSN)
	}
	return c.Path
}
