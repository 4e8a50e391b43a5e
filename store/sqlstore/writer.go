package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
)

// writer is a store's one write connection, pinned for the store's life,
// with every statement prepared on it once and reused: compiling each
// statement on every call was about 30 % of a challenge's CPU. Writes of
// this process queue on its mutex (in Go, without polling); other
// processes' writes wait for the engine's write lock (SQLite's under
// busy_timeout, PostgreSQL's advisory lock).
//
// Transactions are begun by the engine's statements (Engine.Begin)
// and ended with COMMIT / ROLLBACK on the pinned connection: database/sql's
// own transactions would prepare every statement again.
//
// Group commit: writes of this process that queue behind one another share
// a transaction, up to maxBatch of them, each in its own SAVEPOINT (one
// rolled back leaves the others as they were), with one COMMIT, and so one
// fsync, for the batch. A member's Commit returns only once the batch's
// COMMIT did, with its error: no write is acknowledged before it is
// durable (SQLite's synchronous=FULL stays). A member that finishes with nobody
// queued behind it commits at once: a write never waits for company.
type writer struct {
	mu    sync.Mutex // held by the member whose statements run now
	db    *sql.DB    // the pool the connection is pinned from (SQLite: a pool of one)
	conn  *sql.Conn  // pinned; nil until the first write, or after it broke
	stmts map[string]*sql.Stmt
	begin func(context.Context, *sql.Conn) error

	// maxBatch is the most writes one transaction holds; 1 commits each
	// on its own.
	maxBatch int
	// queued counts the writes waiting for mu: a member hands the open
	// transaction on only when one is.
	queued atomic.Int32
	// batch is the open transaction's members' shared fate; nil when no
	// transaction is open. Callers hold mu.
	batch *batch
	// commits and committed count COMMITs and the writes they carried,
	// for tests and benchmarks.
	commits, committed atomic.Int64
}

// batch is one transaction shared by several writes.
type batch struct {
	members int           // writes that joined, rolled back ones too
	kept    int           // writes whose savepoint was released
	done    chan struct{} // closed once the COMMIT (or its failure) is known
	err     error         // the COMMIT's error, read after done
}

// defaultMaxBatch: with up to 16 writes a transaction, 16 callers made
// 4,100 challenges/s against 2,329/s one commit each on SQLite (README,
// Benchmarks); more adds little and holds the write lock longer against
// other processes.
const defaultMaxBatch = 16

// newWriter makes the writer of db, which it pins a connection of. begin
// runs the engine's statements that open a transaction holding its write
// lock (Engine.Begin). maxBatch is the most writes a transaction holds (0:
// defaultMaxBatch; 1: every write commits on its own).
func newWriter(db *sql.DB, maxBatch int, begin func(context.Context, *sql.Conn) error) *writer {
	if maxBatch <= 0 {
		maxBatch = defaultMaxBatch
	}
	return &writer{db: db, maxBatch: maxBatch, begin: begin}
}

// stats reports how many COMMITs the writer made and how many writes they
// carried (group commit puts several writes in one).
func (w *writer) stats() (commits, writes int64) { return w.commits.Load(), w.committed.Load() }

// beginWrite begins a write: a savepoint in the open transaction, or a new
// transaction when none is open.
func (w *writer) beginWrite(ctx context.Context) (Conn, error) {
	w.queued.Add(1)
	w.mu.Lock()
	w.queued.Add(-1)
	if w.batch == nil {
		// A pinned connection the database closed meanwhile (a server
		// restarted, an idle connection cut) fails its next statement;
		// the write then takes a fresh connection, as a pool's would.
		for attempt := 0; ; attempt++ {
			err := w.open(ctx)
			if err == nil {
				break
			}
			// A BEGIN cut short by ctx may still have begun: end whatever
			// is open, so no transaction (and no write lock) outlives this
			// call.
			w.end()
			w.drop(err)
			if attempt > 0 || w.conn != nil || ctx.Err() != nil {
				w.mu.Unlock()
				return nil, err
			}
		}
		w.batch = &batch{done: make(chan struct{})}
	}
	b := w.batch
	b.members++
	if _, err := w.conn.ExecContext(ctx, `SAVEPOINT w`); err != nil {
		// The transaction is as the members before left it: theirs to
		// commit, by this member finishing without writing.
		w.finish(b, false)
		return nil, err
	}
	return &writeTx{w: w, b: b}, nil
}

// open pins a connection if none is and begins a transaction on it.
// Callers hold w.mu.
func (w *writer) open(ctx context.Context) error {
	if w.conn == nil {
		conn, err := w.db.Conn(ctx)
		if err != nil {
			return err
		}
		w.conn, w.stmts = conn, map[string]*sql.Stmt{}
	}
	return w.begin(ctx, w.conn)
}

// finish ends a member's part (callers hold w.mu; finish releases it):
// it hands the open transaction on to a write queued behind, while the
// batch has room and is sound, or commits it. It returns the batch's
// COMMIT error once that is known.
func (w *writer) finish(b *batch, broken bool) error {
	if !broken && b.members < w.maxBatch && w.queued.Load() > 0 {
		w.mu.Unlock()
		<-b.done
		return b.err
	}
	var err error
	if broken {
		// A savepoint that could not be rolled back or released leaves the
		// transaction in a state nobody vouches for: none of it is kept.
		err = errBrokenBatch
		w.end()
	} else if _, err = w.conn.ExecContext(context.Background(), `COMMIT`); err != nil {
		// A COMMIT that fails (a full disk) leaves SQLite's transaction
		// open: it is rolled back, so the connection is clean for the
		// next write.
		w.end()
		w.drop(err)
	} else {
		w.commits.Add(1)
		w.committed.Add(int64(b.kept))
	}
	b.err = err
	w.batch = nil
	close(b.done)
	w.mu.Unlock()
	return err
}

// errBrokenBatch fails the writes of a transaction a member left broken.
var errBrokenBatch = errors.New("a write sharing the transaction failed in a way that could not be undone alone; nothing of it was kept")

// drop lets go of a connection that broke, so the next write pins a new
// one. Callers hold w.mu.
func (w *writer) drop(err error) {
	if w.conn == nil || (!errors.Is(err, driver.ErrBadConn) && !errors.Is(err, sql.ErrConnDone)) {
		return
	}
	w.release()
}

// end rolls back whatever transaction is open on the pinned connection.
// If ROLLBACK fails (an interrupt from a cancelled context can reach it),
// the connection itself is discarded: SQLite rolls back when a connection
// closes, so the write lock is never left held. Callers hold w.mu.
func (w *writer) end() {
	if w.conn == nil {
		return
	}
	if _, err := w.conn.ExecContext(context.Background(), `ROLLBACK`); err == nil || strings.Contains(err.Error(), "no transaction is active") {
		return
	}
	w.discard()
}

// discard closes the pinned connection for good (not back to the pool,
// which would hand it out again as it is). Callers hold w.mu.
func (w *writer) discard() {
	for _, st := range w.stmts {
		st.Close()
	}
	w.conn.Raw(func(any) error { return driver.ErrBadConn })
	w.conn.Close()
	w.conn, w.stmts = nil, nil
}

// close releases the pinned connection, after the write in progress.
func (w *writer) close() {
	w.mu.Lock()
	if b := w.batch; b != nil {
		// A member handed the transaction on to a write that has not
		// taken it yet: its members wait for this COMMIT.
		w.finish(b, false)
		w.mu.Lock()
	}
	defer w.mu.Unlock()
	if w.conn != nil {
		w.release()
	}
}

// release closes the statements and gives the connection back. Statements
// prepared on a database/sql Conn are not closed with the connection, and
// SQLite cannot close a connection (nor checkpoint its WAL into the file)
// while statements of it are open. Callers hold w.mu.
func (w *writer) release() {
	for _, st := range w.stmts {
		st.Close()
	}
	w.conn.Close()
	w.conn, w.stmts = nil, nil
}

// writeTx is one write on the pinned connection: a savepoint in the
// batch's transaction.
type writeTx struct {
	w    *writer
	b    *batch
	done bool
}

func (t *writeTx) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if st := t.w.stmts[query]; st != nil {
		return st, nil
	}
	st, err := t.w.conn.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	t.w.stmts[query] = st
	return st, nil
}

func (t *writeTx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st, err := t.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

func (t *writeTx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := t.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

func (t *writeTx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	st, err := t.stmt(ctx, query)
	if err != nil {
		// A row that carries the error to Scan.
		return t.w.conn.QueryRowContext(ctx, query, args...)
	}
	return st.QueryRowContext(ctx, args...)
}

// Commit keeps the write: its savepoint is released into the batch's
// transaction, and Commit returns once that transaction's COMMIT did.
func (t *writeTx) Commit() error {
	if t.done {
		return sql.ErrTxDone
	}
	t.done = true
	if _, err := t.w.conn.ExecContext(context.Background(), `RELEASE SAVEPOINT w`); err != nil {
		t.w.finish(t.b, true)
		return err
	}
	t.b.kept++
	return t.w.finish(t.b, false)
}

// Rollback undoes the write alone (ROLLBACK TO its savepoint), leaving
// the batch's other writes as they were; after Commit it does nothing.
func (t *writeTx) Rollback() error {
	if t.done {
		return sql.ErrTxDone
	}
	t.done = true
	if _, err := t.w.conn.ExecContext(context.Background(), `ROLLBACK TO SAVEPOINT w`); err != nil {
		t.w.finish(t.b, true)
		return nil
	}
	if _, err := t.w.conn.ExecContext(context.Background(), `RELEASE SAVEPOINT w`); err != nil {
		t.w.finish(t.b, true)
		return nil
	}
	t.w.finish(t.b, false)
	return nil
}
