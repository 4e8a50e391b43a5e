package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"strings"
	"sync"
)

// writer is the store's one write connection, pinned for the store's life,
// with every statement prepared on it once and reused: compiling each
// statement on every call was about 30 % of a challenge's CPU. Writes of
// this process queue on its mutex (in Go, without polling); other
// processes' writes wait for SQLite's lock under busy_timeout.
//
// Transactions are begun and ended with BEGIN IMMEDIATE / COMMIT /
// ROLLBACK on the pinned connection: database/sql's own transactions would
// prepare every statement again.
type writer struct {
	mu    sync.Mutex // held from begin to Commit or Rollback
	db    *sql.DB    // a pool of one connection
	conn  *sql.Conn  // pinned; nil until the first write, or after it broke
	stmts map[string]*sql.Stmt
}

func (w *writer) begin(ctx context.Context) (*writeTx, error) {
	w.mu.Lock()
	if w.conn == nil {
		conn, err := w.db.Conn(ctx)
		if err != nil {
			w.mu.Unlock()
			return nil, err
		}
		w.conn, w.stmts = conn, map[string]*sql.Stmt{}
	}
	if _, err := w.conn.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
		// A BEGIN cut short by ctx may still have begun: end whatever is
		// open, so no transaction (and no write lock) outlives this call.
		w.end()
		w.drop(err)
		w.mu.Unlock()
		return nil, err
	}
	return &writeTx{w: w}, nil
}

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

// writeTx is one write transaction on the pinned connection.
type writeTx struct {
	w    *writer
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

// Commit ends the transaction keeping its writes. A COMMIT that fails
// (a full disk) leaves SQLite's transaction open: it is rolled back, so the
// connection is clean for the next write.
func (t *writeTx) Commit() error {
	if t.done {
		return sql.ErrTxDone
	}
	t.done = true
	defer t.w.mu.Unlock()
	if _, err := t.w.conn.ExecContext(context.Background(), `COMMIT`); err != nil {
		t.w.end()
		t.w.drop(err)
		return err
	}
	return nil
}

// Rollback ends the transaction without keeping anything; after Commit it
// does nothing.
func (t *writeTx) Rollback() error {
	if t.done {
		return sql.ErrTxDone
	}
	t.done = true
	defer t.w.mu.Unlock()
	t.w.end()
	return nil
}
