// Package postgres is the PostgreSQL backend: several pairgate processes
// (replicas of the daemon, the CLI) on one database, through the shared SQL
// store of package sqlstore.
//
// What is PostgreSQL's here is only the dialect: connecting with pgx,
// migrations with goose (embedded, under goose's session advisory lock so
// replicas starting at once migrate once), $n placeholders, and the write
// lock: every write transaction takes a transaction-scoped advisory lock
// first, so writers are serialised like SQLite's, the rules that read
// before they write (the pending cap, approve-once) hold, and sequence
// numbers of the change log commit in order.
package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/pairgate/pairgate/store"
	"github.com/pairgate/pairgate/store/sqlstore"
)

// Options configure Open.
type Options struct {
	// DSN is a libpq connection string or URL, e.g.
	// postgres://pairgate@db.example.com/pairgate?sslmode=verify-full.
	// A search_path parameter selects the schema.
	DSN string
	// MaxConns bounds the connection pool. Default 8; one of them is the
	// writer's, pinned.
	MaxConns int
	// MaxBatch is the most writes of this process that share one
	// transaction and one commit (group commit; see store/sqlstore/writer.go).
	// Default 16; 1 commits every write on its own.
	MaxBatch int
	// PollOnly turns LISTEN/NOTIFY off: the store then learns of other
	// processes' commits only by polling, every PollInterval. For a
	// PgBouncer in transaction pooling, where LISTEN does not work.
	PollOnly bool
	// PollInterval is how often the store looks for changes committed by
	// other processes: default 100ms when polling only, else 500ms (a
	// fallback that bounds the delay even if a notification is lost).
	PollInterval time.Duration
	// Logger receives warnings. Default: discard.
	Logger *slog.Logger
}

// Store is the PostgreSQL backend of store.Store.
type Store struct {
	*sqlstore.Store
	stopListen context.CancelFunc // nil when polling only
	listened   chan struct{}      // closed when the listener has stopped
}

var _ store.Store = (*Store)(nil)

//go:embed migrations/*.sql
var migrations embed.FS

// Open connects to the database, brings its schema up to date and returns
// the store. A database that cannot be reached is an error wrapping
// store.ErrUnavailable that names the host.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if opts.DSN == "" {
		return nil, errors.New("postgres: no dsn set (pairing.storage.dsn)")
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = 8
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	cfg, err := pgx.ParseConfig(opts.DSN)
	if err != nil {
		// The parse error may quote the DSN, password included.
		return nil, errors.New("postgres: the dsn cannot be parsed; want a libpq connection string or a postgres:// URL")
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(opts.MaxConns)
	db.SetMaxIdleConns(opts.MaxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	e := &engine{host: net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))), db: cfg.Database}
	if err := e.migrate(ctx, db); err != nil {
		db.Close()
		return nil, err
	}
	// The write lock is per schema, so that two pairgate installations
	// sharing a database (in two schemas) do not wait for each other.
	var schema string
	if err := db.QueryRowContext(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		db.Close()
		return nil, e.Fail("read the schema", err)
	}
	h := fnv.New64a()
	h.Write([]byte("pairgate write lock\x00" + schema))
	e.lockKey = int64(h.Sum64())
	// The notification channel is per schema too; NOTIFY's namespace is
	// the database.
	e.channel = fmt.Sprintf("pairgate_changes_%016x", uint64(e.lockKey))
	e.notify = !opts.PollOnly
	poll := opts.PollInterval
	if poll <= 0 {
		poll = 500 * time.Millisecond
		if opts.PollOnly {
			poll = 100 * time.Millisecond
		}
	}
	var wake chan struct{}
	if e.notify {
		wake = make(chan struct{}, 1)
	}
	s, err := sqlstore.New(ctx, sqlstore.Options{Writer: db, Reader: db, Engine: e, MaxBatch: opts.MaxBatch, PollInterval: poll, Wake: wake,
		Logger: opts.Logger, Name: "postgres " + e.host})
	if err != nil {
		db.Close()
		return nil, err
	}
	st := &Store{Store: s}
	if e.notify {
		lctx, stop := context.WithCancel(context.Background())
		st.stopListen, st.listened = stop, make(chan struct{})
		go func() {
			defer close(st.listened)
			e.listen(lctx, cfg.Copy(), wake, opts.Logger)
		}()
	}
	return st, nil
}

// Close implements store.Store: the listener stops first, then the
// writer's pinned connection (after the write in progress), then the pool.
func (s *Store) Close() error {
	if s.stopListen != nil {
		s.stopListen()
		<-s.listened
	}
	return s.Store.Close()
}

// Listener reconnection backoff.
const (
	listenRetryMin = 100 * time.Millisecond
	listenRetryMax = 5 * time.Second
)

// listen holds a connection of its own that LISTENs to the schema's
// channel, and signals wake on every notification, until ctx ends. A lost
// connection is reconnected with exponential backoff; every (re)connect
// also signals wake, so followers catch up from their positions with
// whatever committed while nobody listened: a lost notification or a
// dropped connection delays a change, never loses it (and the store's
// fallback poll bounds the delay meanwhile).
func (e *engine) listen(ctx context.Context, cfg *pgx.ConnConfig, wake chan<- struct{}, log *slog.Logger) {
	signal := func() {
		select {
		case wake <- struct{}{}:
		default:
		}
	}
	backoff, failed := listenRetryMin, false
	for ctx.Err() == nil {
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err == nil {
			if _, err = conn.Exec(ctx, "LISTEN "+pgx.Identifier{e.channel}.Sanitize()); err != nil {
				conn.Close(context.Background())
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			log.Warn("postgres: cannot listen for changes; retrying", "host", e.host, "retry_ms", backoff.Milliseconds(), "err", e.Fail("listen", err))
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			failed, backoff = true, min(2*backoff, listenRetryMax)
			continue
		}
		if failed {
			log.Info("postgres: listening for changes again", "host", e.host)
		}
		failed, backoff = true, listenRetryMin // a later connect follows a loss
		signal()
		for {
			if _, err = conn.WaitForNotification(ctx); err != nil {
				break
			}
			signal()
		}
		conn.Close(context.Background())
		if ctx.Err() == nil {
			log.Warn("postgres: lost the connection that listens for changes; reconnecting", "host", e.host, "err", err)
		}
	}
}

// Describe names the database a DSN points at, for messages: user, host,
// port, database and schema, never the password.
func Describe(dsn string) string {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return "PostgreSQL (a dsn that cannot be parsed)"
	}
	d := fmt.Sprintf("PostgreSQL %s@%s/%s", cfg.User, net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))), cfg.Database)
	if sp := cfg.RuntimeParams["search_path"]; sp != "" {
		d += " (schema " + sp + ")"
	}
	return d
}

// migrate applies the embedded migrations under goose's session lock.
func (e *engine) migrate(ctx context.Context, db *sql.DB) error {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys, goose.WithSessionLocker(locker))
	if err != nil {
		return fmt.Errorf("postgres migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return e.Fail("migrate schema", err)
	}
	return nil
}

// engine is what PostgreSQL supplies to the shared SQL store.
type engine struct {
	host, db string
	lockKey  int64  // pg_advisory_xact_lock key of this schema's writers
	channel  string // NOTIFY channel of this schema's changes
	notify   bool   // LISTEN/NOTIFY on (not PollOnly)
}

// Rebind implements sqlstore.Engine: ? becomes $1, $2, … (the shared
// statements hold no ? inside string literals).
func (*engine) Rebind(query string) string {
	n := strings.Count(query, "?")
	if n == 0 {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 2*n)
	i := 0
	for {
		j := strings.IndexByte(query, '?')
		if j < 0 {
			b.WriteString(query)
			return b.String()
		}
		i++
		b.WriteString(query[:j])
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(i))
		query = query[j+1:]
	}
}

// Begin implements sqlstore.Engine: the transaction's first statement
// takes the schema's advisory write lock, held until commit or rollback.
func (e *engine) Begin(ctx context.Context, conn *sql.Conn) error {
	if _, err := conn.ExecContext(ctx, `BEGIN`); err != nil {
		return err
	}
	_, err := conn.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, e.lockKey)
	return err
}

// BeginRead implements sqlstore.Engine: REPEATABLE READ, so every statement
// of the transaction sees one snapshot (a change log position and the rows
// it covers agree).
func (*engine) BeginRead(ctx context.Context, db *sql.DB) (*sql.Tx, error) {
	return db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true, Isolation: sql.LevelRepeatableRead})
}

// Fail implements sqlstore.Engine.
func (e *engine) Fail(what string, err error) error {
	if err == nil {
		return nil
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	var pe *pgconn.PgError
	switch {
	case errors.As(err, &ce), errors.As(err, &ne), errors.Is(err, net.ErrClosed):
		return fmt.Errorf("%w: %s: cannot reach PostgreSQL at %s (%w); check that it runs and that pairing.storage.dsn is right", store.ErrUnavailable, what, e.host, err)
	case errors.As(err, &pe) && (pe.Code == "3D000" || pe.Code == "28000" || pe.Code == "28P01"):
		return fmt.Errorf("%w: %s: PostgreSQL at %s refused the connection to database %q (%w); check pairing.storage.dsn", store.ErrUnavailable, what, e.host, e.db, err)
	case errors.As(err, &pe) && pe.Code == "25006":
		return fmt.Errorf("%w: %s: PostgreSQL at %s is read-only (a standby?) (%w); point pairing.storage.dsn at the primary", store.ErrUnavailable, what, e.host, err)
	}
	return fmt.Errorf("%w: %s: %w", store.ErrUnavailable, what, err)
}

// CheckWrite implements sqlstore.Engine: nothing to check beyond the
// transaction itself.
func (*engine) CheckWrite() error { return nil }

// CheckTable implements sqlstore.Engine: PostgreSQL reports a damaged page
// as an error of the query that reads it.
func (*engine) CheckTable(context.Context, *sqlstore.Tx, string, string) error { return nil }

// Health implements sqlstore.Engine: Ping's read and probe write say all.
func (*engine) Health() error { return nil }

// Tick implements sqlstore.Engine.
func (*engine) Tick(context.Context) {}

// Appended implements sqlstore.Engine: NOTIFY the schema's channel, in the
// transaction, so the notification goes out when (and only if) it commits.
//
// It notifies also when this store only polls (a PgBouncer in transaction
// pooling carries pg_notify, only LISTEN needs a session), so replicas that
// do listen hear of its changes at once.
func (e *engine) Appended(ctx context.Context, tx *sqlstore.Tx) error {
	_, err := tx.ExecContext(ctx, `SELECT pg_notify(?, '')`, e.channel)
	return err
}
