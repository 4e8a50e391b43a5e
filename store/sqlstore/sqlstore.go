// Package sqlstore is pairgate's one SQL code base: store.Store over
// database/sql, for every engine. Every statement, and every rule that must
// be atomic (the pending cap, approve-once, the lockout count, single-use
// setup tokens), is written here once; an engine (store/sqlite,
// store/postgres) supplies only what differs between databases through
// Engine: connecting and migrating, how a write takes the write lock,
// placeholders, what its errors mean, and checks of its own around writes
// and listings.
//
// Statements are written with ? placeholders and the SQL that SQLite and
// PostgreSQL share (ON CONFLICT … DO UPDATE, RETURNING, TRUE); the engine
// rebinds placeholders where it needs to.
//
// Every write transaction holds the engine's write lock from its first
// statement (SQLite: BEGIN IMMEDIATE; PostgreSQL: a transaction-scoped
// advisory lock), so the read-then-write rules above hold across processes
// and replicas, and changes commit in the order of their sequence numbers:
// a follower reading seq > after never skips one that commits late.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/pairgate/pairgate/store"
)

// Engine is what one database engine supplies.
type Engine interface {
	// Rebind rewrites a statement written with ? placeholders for the
	// engine (PostgreSQL: $1, $2, …).
	Rebind(query string) string
	// Begin opens a write transaction on conn, the store's pinned writer
	// connection, that holds the engine's write lock from its start
	// (SQLite: BEGIN IMMEDIATE; PostgreSQL: BEGIN and the advisory lock).
	Begin(ctx context.Context, conn *sql.Conn) error
	// BeginRead begins a read-only transaction on db in which every
	// statement sees one snapshot.
	BeginRead(ctx context.Context, db *sql.DB) (*sql.Tx, error)
	// Fail wraps a database error in store.ErrUnavailable, saying what the
	// operator should do.
	Fail(what string, err error) error
	// CheckWrite runs before a write transaction begins and again after
	// it committed: an error fails the write, and after the commit means
	// the write cannot be kept (a SQLite file deleted under the store).
	CheckWrite() error
	// CheckTable runs inside a listing's read transaction before table is
	// read, so a damaged table fails the listing instead of cutting it
	// short.
	CheckTable(ctx context.Context, tx *Tx, what, table string) error
	// Health reports a problem the engine knows of that makes the store
	// unusable now (nil if none); Ping checks it first.
	Health() error
	// Tick runs at every poll of the change log.
	Tick(ctx context.Context)
	// Appended runs inside a write transaction that appended changes,
	// before it commits (PostgreSQL: NOTIFY, delivered at the commit).
	Appended(ctx context.Context, tx *Tx) error
}

// Options configure New.
type Options struct {
	// Writer runs write transactions, on a connection of it pinned for
	// the store's life (Engine.Begin); Reader runs reads. They
	// may be the same pool.
	Writer, Reader *sql.DB
	Engine         Engine
	// MaxBatch is the most writes of this process that share one
	// transaction and one commit (group commit; see writer). Default 16;
	// 1 commits every write on its own.
	MaxBatch int
	// PollInterval is how often the store looks for changes committed
	// elsewhere (other processes, other replicas). Default 100ms: it
	// bounds how late Changed fires for them.
	PollInterval time.Duration
	// Wake, when set, makes the poller look at the change log at once
	// (an engine's notifications of commits elsewhere); the poll still
	// runs every PollInterval in case a wake-up is lost.
	Wake <-chan struct{}
	// Logger receives warnings from the poller; Name prefixes them
	// ("sqlite", "postgres").
	Logger *slog.Logger
	Name   string
}

// CommitStats reports how many COMMITs this store's writer made and how
// many writes they carried (group commit puts several writes in one): what
// a benchmark reports, and a test checks batching by.
func (s *Store) CommitStats() (commits, writes int64) { return s.wr.stats() }

// probeFresh is how long a successful write vouches for the store: Ping
// writes a probe only when no write succeeded more recently.
const probeFresh = time.Second

// Store implements store.Store for one engine.
type Store struct {
	w, r  *sql.DB
	wr    *writer  // runs every write, on a connection of w
	reads sync.Map // reads as rebound → *sql.Stmt prepared on r (prepared)
	// preparing holds the reads of read transactions being prepared in
	// the background (readConn); bg counts those goroutines.
	preparing sync.Map
	bgmu      sync.Mutex
	bgClosed  bool // Close began: no more background work
	bg        sync.WaitGroup
	bgCtx     context.Context // ends when Close begins
	bgCancel  context.CancelFunc
	eng       Engine
	log       *slog.Logger
	name      string

	mu      sync.Mutex
	changed chan struct{} // closed and replaced when changes may be new
	lastSeq int64         // the heads the poller has signalled (headsQuery)

	hmu      sync.Mutex
	wroteAt  time.Time // last write that committed
	writeErr error     // the last write failed

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

var _ store.Store = (*Store)(nil)

// New makes a Store over an open, migrated database and starts its poller.
func New(ctx context.Context, o Options) (*Store, error) {
	if o.Writer == nil || o.Reader == nil || o.Engine == nil {
		return nil, errors.New("sqlstore: Writer, Reader and Engine are required")
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 100 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Store{w: o.Writer, r: o.Reader, eng: o.Engine, log: o.Logger, name: o.Name,
		changed: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	s.wr = newWriter(o.Writer, o.MaxBatch, o.Engine.Begin)
	s.bgCtx, s.bgCancel = context.WithCancel(context.Background())
	if err := s.queryRow(ctx, headsQuery).Scan(&s.lastSeq); err != nil {
		s.bgCancel()
		return nil, s.fail("read change log", err)
	}
	go s.poll(o.PollInterval, o.Wake)
	return s, nil
}

// Conn runs the statements of one transaction and ends it: a write of the
// store's writer (statements prepared once on its pinned connection), or a
// read transaction (readConn).
type Conn interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	Commit() error
	Rollback() error
}

// Tx is a transaction whose statements are rebound for the engine.
type Tx struct {
	tx       Conn
	eng      Engine
	appended bool  // a change was appended: Engine.Appended ran
	seq      int64 // the last change appended
}

// ExecContext runs a statement written with ? placeholders.
func (t *Tx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return t.tx.ExecContext(ctx, t.eng.Rebind(query), args...)
}

// QueryContext runs a query written with ? placeholders.
func (t *Tx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return t.tx.QueryContext(ctx, t.eng.Rebind(query), args...)
}

// QueryRowContext runs a one-row query written with ? placeholders.
func (t *Tx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return t.tx.QueryRowContext(ctx, t.eng.Rebind(query), args...)
}

// queryRow runs a one-row read outside a transaction, with its statement
// prepared once (prepared).
func (s *Store) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	st, err := s.prepared(ctx, s.eng.Rebind(query))
	if err != nil {
		// A row that carries the error to Scan.
		return s.r.QueryRowContext(ctx, s.eng.Rebind(query), args...)
	}
	return st.QueryRowContext(ctx, args...)
}

// prepared returns query (rebound) prepared on the reader pool, once for
// the store's life: database/sql prepares it on each connection that runs
// it, once, and a read transaction reuses that (readConn). The statements
// are the store's own, a fixed set.
func (s *Store) prepared(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := s.reads.Load(query); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := s.r.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if prev, loaded := s.reads.LoadOrStore(query, st); loaded {
		st.Close()
		st = prev.(*sql.Stmt)
	}
	return st, nil
}

// readTx begins a read-only transaction: one consistent snapshot.
func (s *Store) readTx(ctx context.Context) (*Tx, error) {
	tx, err := s.eng.BeginRead(ctx, s.r)
	if err != nil {
		return nil, err
	}
	return &Tx{tx: readConn{tx, s}, eng: s.eng}, nil
}

// readConn runs a read transaction's statements prepared once (prepared)
// rather than compiled on every call.
//
// A statement not prepared yet runs unprepared, and is prepared in the
// background for the next time: preparing on the pool takes a connection,
// and a read transaction that waited for one while holding its own could
// deadlock with others doing the same once the pool is exhausted.
type readConn struct {
	*sql.Tx
	s *Store
}

// stmt returns query's prepared statement bound to the transaction, or
// nil (and has it prepared) when there is none yet.
func (c readConn) stmt(ctx context.Context, query string) *sql.Stmt {
	if st, ok := c.s.reads.Load(query); ok {
		return c.Tx.StmtContext(ctx, st.(*sql.Stmt))
	}
	if _, busy := c.s.preparing.LoadOrStore(query, true); !busy {
		c.s.background(func(ctx context.Context) {
			// An error leaves it unprepared: the next use tries again.
			if _, err := c.s.prepared(ctx, query); err != nil {
				c.s.preparing.Delete(query)
			}
		})
	}
	return nil
}

// background runs fn in a goroutine that Close waits for, with a context
// that Close cancels; after Close began, not at all.
func (s *Store) background(fn func(context.Context)) {
	s.bgmu.Lock()
	defer s.bgmu.Unlock()
	if s.bgClosed {
		return
	}
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		fn(s.bgCtx)
	}()
}

func (c readConn) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := c.stmt(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return c.Tx.ExecContext(ctx, query, args...)
}

func (c readConn) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := c.stmt(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return c.Tx.QueryContext(ctx, query, args...)
}

func (c readConn) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := c.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return c.Tx.QueryRowContext(ctx, query, args...)
}

// Rollback ends a transaction without keeping anything.
func (t *Tx) Rollback() error { return t.tx.Rollback() }

func (s *Store) fail(what string, err error) error {
	if err == nil {
		return nil
	}
	return s.eng.Fail(what, err)
}

// write runs fn in one write transaction and, if it committed, wakes the
// followers of the change log. A sentinel error from fn rolls back and is
// returned as is; anything else wraps ErrUnavailable. A write is
// acknowledged only if the engine still vouches for it after the commit.
func (s *Store) write(ctx context.Context, what string, fn func(tx *Tx) error) error {
	return s.writeAndWake(ctx, what, fn, true)
}

// writeQuiet is write for bookkeeping that appends no change: followers
// are not woken.
func (s *Store) writeQuiet(ctx context.Context, what string, fn func(tx *Tx) error) error {
	return s.writeAndWake(ctx, what, fn, false)
}

func (s *Store) writeAndWake(ctx context.Context, what string, fn func(tx *Tx) error, wake bool) error {
	err := s.commit(ctx, what, fn, wake)
	if err != nil && errors.Is(err, store.ErrUnavailable) {
		s.noteWrite(err)
	}
	return err
}

func (s *Store) commit(ctx context.Context, what string, fn func(tx *Tx) error, wake bool) error {
	if err := s.eng.CheckWrite(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	sqlTx, err := s.wr.beginWrite(ctx)
	if err != nil {
		return s.fail(what, err)
	}
	tx := &Tx{tx: sqlTx, eng: s.eng}
	if err := fn(tx); err != nil {
		sqlTx.Rollback()
		return s.domainOr(what, err)
	}
	if err := sqlTx.Commit(); err != nil {
		return s.fail(what, err)
	}
	if err := s.eng.CheckWrite(); err != nil {
		return fmt.Errorf("%s: committed where it cannot be kept: %w", what, err)
	}
	s.noteWrite(nil)
	if wake {
		s.notify()
	}
	return nil
}

// domainOr passes the store's sentinel errors through and wraps the rest.
func (s *Store) domainOr(what string, err error) error {
	for _, sentinel := range []error{store.ErrNotFound, store.ErrAlreadyApproved, store.ErrTokenUsed, store.ErrKeyInUse, store.ErrAllowed,
		store.ErrPending, store.ErrCapReached, store.ErrCodeConflict, store.ErrLockedOut, store.ErrUnavailable, errBadOutbound} {
		if errors.Is(err, sentinel) {
			return err
		}
	}
	return s.fail(what, err)
}

// noteWrite records whether a write committed.
func (s *Store) noteWrite(err error) {
	s.hmu.Lock()
	defer s.hmu.Unlock()
	if err == nil {
		s.wroteAt, s.writeErr = time.Now(), nil
		return
	}
	s.writeErr = err
}

// Ping implements store.Store: nil only if the store can both read and
// write now. It fails while the engine knows of a problem (a SQLite file
// deleted, replaced or damaged), when a read fails, and when a probe write
// (made only if no write succeeded within the last second) fails, as it
// does on a full disk or a read-only database.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.eng.Health(); err != nil {
		return err
	}
	s.hmu.Lock()
	fresh := s.writeErr == nil && time.Since(s.wroteAt) < probeFresh
	s.hmu.Unlock()
	var n int
	if err := s.queryRow(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM changes LIMIT 1) AS one`).Scan(&n); err != nil {
		return s.fail("ping: read", err)
	}
	if fresh {
		return nil
	}
	// The probe touches no state and appends no change, so it wakes no
	// follower.
	err := s.probe(ctx)
	s.noteWrite(err)
	return err
}

func (s *Store) probe(ctx context.Context) error {
	if err := s.eng.CheckWrite(); err != nil {
		return err
	}
	sqlTx, err := s.wr.beginWrite(ctx)
	if err != nil {
		return s.fail("ping: write", err)
	}
	defer sqlTx.Rollback()
	tx := &Tx{tx: sqlTx, eng: s.eng}
	if _, err := tx.ExecContext(ctx, `INSERT INTO health (id, at) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET at = excluded.at`, ms(time.Now())); err != nil {
		return s.fail("ping: write", err)
	}
	return s.fail("ping: write", sqlTx.Commit())
}

// Changed implements store.Store.
func (s *Store) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

func (s *Store) notify() {
	s.mu.Lock()
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

// headsQuery is the sum of the change log's newest seq and the outbound
// log's: it grows whenever either log does (neither head ever goes back),
// so one number tells the poller that something was appended. The newest
// seq is a single index descent, the outbound head one row: cheap at any
// log size.
const headsQuery = `SELECT (SELECT COALESCE(MAX(seq), 0) FROM changes) + (SELECT last_seq FROM outbound_log WHERE id = 1)`

// poll notices changes and outbound messages committed elsewhere.
func (s *Store) poll(every time.Duration, wake <-chan struct{}) {
	defer close(s.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { <-s.stop; cancel() }()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		case <-wake:
		}
		s.eng.Tick(ctx)
		var seq int64
		err := s.queryRow(ctx, headsQuery).Scan(&seq)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn(s.name+": polling the change log failed", "err", s.fail("poll change log", err))
			}
			continue
		}
		s.mu.Lock()
		newer := seq != s.lastSeq
		s.lastSeq = seq
		s.mu.Unlock()
		if newer {
			s.notify()
		}
	}
}

// Close implements store.Store: it stops the poller and closes both pools.
func (s *Store) Close() error {
	var err error
	s.once.Do(func() {
		close(s.stop)
		<-s.done
		s.bgmu.Lock()
		s.bgClosed = true
		s.bgmu.Unlock()
		s.bgCancel()
		s.bg.Wait()
		// The writer's connection goes back, after the write in progress,
		// before its pool closes.
		s.wr.close()
		s.reads.Range(func(_, st any) bool { st.(*sql.Stmt).Close(); return true })
		err = s.r.Close()
		if s.w != s.r {
			err = errors.Join(err, s.w.Close())
		}
	})
	return err
}

// ms and fromMS convert between times and the stored unix milliseconds.
func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

func fromNullMS(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return fromMS(v.Int64)
}

// filterSQL turns a RequestFilter into a WHERE fragment and its arguments.
func filterSQL(f store.RequestFilter) (string, []any) {
	var conds []string
	var args []any
	if f.Channel != "" {
		conds = append(conds, "channel = ?")
		args = append(args, f.Channel)
	}
	if f.Account != "" {
		conds = append(conds, "account = ?")
		args = append(args, f.Account)
	}
	if len(conds) == 0 {
		return "TRUE", nil
	}
	return strings.Join(conds, " AND "), args
}

// scanner is a row to scan: *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

// list reads every row of query in one read transaction, after the
// engine's check of table (unless table is ""): a damaged page that would
// cut a listing short without an error fails the listing instead, so an
// operator exporting or auditing never gets a partial list as if whole.
func list[T any](ctx context.Context, s *Store, what, table, query string, scan func(scanner) (T, error), args ...any) ([]T, error) {
	tx, err := s.readTx(ctx)
	if err != nil {
		return nil, s.fail(what, err)
	}
	defer tx.Rollback()
	if table != "" {
		if err := s.eng.CheckTable(ctx, tx, what, table); err != nil {
			return nil, err
		}
	}
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, s.fail(what, err)
	}
	out, err := collect(rows, scan)
	return out, s.fail(what, err)
}

// collect scans every row with scan, and closes rows.
func collect[T any](rows *sql.Rows, scan func(scanner) (T, error)) ([]T, error) {
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
