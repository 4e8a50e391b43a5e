package storetest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pairgate/pairgate/store"
)

// webSession builds a web session of kind (not yet stored) whose hash is
// unique to name, created at created and expiring life later. A browser
// session carries the hash of the token it signed in with; a link none.
func webSession(name string, kind store.WebSessionKind, created time.Time, life time.Duration) store.WebSession {
	h := sha256.Sum256([]byte("pairgate storetest web session " + name))
	w := store.WebSession{Hash: h[:], Kind: kind, CreatedAt: created, ExpiresAt: created.Add(life), Remote: "192.0.2.7:5123"}
	if kind == store.WebSessionBrowser {
		w.TokenHash = tokenHashOf("token of " + name)
	}
	return w
}

// fromLink builds the browser session a sign-in link becomes: it carries no
// token hash.
func fromLink(name string, created time.Time, life time.Duration) store.WebSession {
	w := webSession(name, store.WebSessionBrowser, created, life)
	w.TokenHash = nil
	return w
}

// storedWeb is what the store holds after storing w: times truncated to
// milliseconds.
func storedWeb(w store.WebSession) store.WebSession {
	w.CreatedAt = w.CreatedAt.Truncate(ms)
	w.ExpiresAt = w.ExpiresAt.Truncate(ms)
	return w
}

// createWeb stores w and returns it as stored.
func (f *fixture) createWeb(w store.WebSession) store.WebSession {
	f.t.Helper()
	if err := f.s.CreateWebSession(f.ctx, w); err != nil {
		f.t.Fatalf("CreateWebSession(%s %x): %v", w.Kind, short(w.Hash), err)
	}
	return storedWeb(w)
}

// checkWeb fails unless WebSession at now returns want.
func (f *fixture) checkWeb(what string, want store.WebSession, now time.Time) {
	f.t.Helper()
	got, err := f.s.WebSession(f.ctx, want.Hash, now)
	if err != nil {
		f.t.Errorf("%s: WebSession(%x, %s): %v", what, short(want.Hash), now.Format(time.TimeOnly), err)
		return
	}
	if diff := cmp.Diff(want, got); diff != "" {
		f.t.Errorf("%s: WebSession(%x, %s) (-want +got):\n%s", what, short(want.Hash), now.Format(time.TimeOnly), diff)
	}
}

// checkNoWeb fails unless WebSession at now gives ErrNotFound.
func (f *fixture) checkNoWeb(what string, hash []byte, now time.Time) {
	f.t.Helper()
	got, err := f.s.WebSession(f.ctx, hash, now)
	if !errors.Is(err, store.ErrNotFound) {
		f.t.Errorf("%s: WebSession(%x, %s) = %+v, %v; want ErrNotFound", what, short(hash), now.Format(time.TimeOnly), got, err)
	}
}

func testWebSessions(t *testing.T, b Backend) {
	// Sessions read back as stored, until they expire; links are not
	// sessions; a hash is stored once.
	t.Run("CreateLookup", func(t *testing.T) {
		f := newFixture(t, b)
		seq := f.lastSeq()
		// Off the millisecond: the store keeps milliseconds.
		created := at(2*ms + 345*time.Microsecond)
		s := f.createWeb(webSession("browser", store.WebSessionBrowser, created, hour))
		linked := f.createWeb(fromLink("from-link", created, hour))
		link := f.createWeb(webSession("link", store.WebSessionLink, created, 10*minute))

		f.checkWeb("a session", s, at(minute))
		f.checkWeb("a session without a token hash", linked, at(minute))
		f.checkWeb("a session a moment before it expires", s, s.ExpiresAt.Add(-ms))
		f.checkNoWeb("a session when it expires", s.Hash, s.ExpiresAt)
		f.checkNoWeb("a session after it expired", s.Hash, s.ExpiresAt.Add(hour))
		f.checkNoWeb("a sign-in link", link.Hash, at(minute))
		f.checkNoWeb("an unknown hash", webSession("unknown", store.WebSessionBrowser, created, hour).Hash, at(minute))

		// A second row with a hash already stored is refused, of either
		// kind, and the first is left as it was.
		dup := webSession("browser", store.WebSessionBrowser, at(minute), 2*hour)
		dup.Remote, dup.TokenHash = "198.51.100.1:1", tokenHashOf("another token")
		if err := f.s.CreateWebSession(f.ctx, dup); err == nil {
			t.Error("CreateWebSession with a hash already stored: no error")
		}
		dup.Kind = store.WebSessionLink
		if err := f.s.CreateWebSession(f.ctx, dup); err == nil {
			t.Error("CreateWebSession of a link with a session's hash: no error")
		}
		f.checkWeb("a session after refused duplicates", s, at(minute))
		linkDup := webSession("link", store.WebSessionBrowser, at(minute), 2*hour)
		if err := f.s.CreateWebSession(f.ctx, linkDup); err == nil {
			t.Error("CreateWebSession of a session with a link's hash: no error")
		}
		f.checkNoWeb("a link after a refused duplicate session", link.Hash, at(minute))
		f.checkChanges("web sessions", seq) // bookkeeping, not changes
	})

	// Signing out deletes a session at once; signing out twice is fine.
	t.Run("Delete", func(t *testing.T) {
		f := newFixture(t, b)
		seq := f.lastSeq()
		s := f.createWeb(webSession("browser", store.WebSessionBrowser, at(0), hour))
		other := f.createWeb(webSession("other", store.WebSessionBrowser, at(0), hour))
		link := f.createWeb(webSession("link", store.WebSessionLink, at(0), hour))
		if err := f.s.DeleteWebSession(f.ctx, s.Hash); err != nil {
			t.Fatalf("DeleteWebSession: %v", err)
		}
		f.checkNoWeb("a deleted session", s.Hash, at(minute))
		f.checkWeb("another session after a delete", other, at(minute))
		if err := f.s.DeleteWebSession(f.ctx, s.Hash); err != nil {
			t.Errorf("DeleteWebSession of a session deleted already: %v, want nil", err)
		}
		if err := f.s.DeleteWebSession(f.ctx, webSession("unknown", store.WebSessionBrowser, at(0), hour).Hash); err != nil {
			t.Errorf("DeleteWebSession of an unknown hash: %v, want nil", err)
		}
		// A link is deleted too: it can no longer be redeemed.
		if err := f.s.DeleteWebSession(f.ctx, link.Hash); err != nil {
			t.Fatalf("DeleteWebSession of a link: %v", err)
		}
		err := f.s.RedeemWebLink(f.ctx, link.Hash, fromLink("redeemed", at(minute), hour), at(minute))
		wantErr(t, "RedeemWebLink of a deleted link", err, store.ErrNotFound)
		f.checkChanges("web sessions", seq)
	})

	// A link is redeemed once, for one session; anything but an unexpired
	// link is not redeemed and stores nothing.
	t.Run("Redeem", func(t *testing.T) {
		f := newFixture(t, b)
		seq := f.lastSeq()
		link := f.createWeb(webSession("link", store.WebSessionLink, at(0), 10*minute))
		now := at(minute)
		first := storedWeb(fromLink("first", now, hour))
		if err := f.s.RedeemWebLink(f.ctx, link.Hash, first, now); err != nil {
			t.Fatalf("RedeemWebLink: %v", err)
		}
		f.checkWeb("the session a link became", first, now)
		second := fromLink("second", now, hour)
		wantErr(t, "RedeemWebLink a second time", f.s.RedeemWebLink(f.ctx, link.Hash, second, now), store.ErrNotFound)
		f.checkNoWeb("the session of a second redeem", second.Hash, now)
		// The link's row is gone: its hash can be stored again.
		if err := f.s.CreateWebSession(f.ctx, link); err != nil {
			t.Errorf("CreateWebSession with a redeemed link's hash: %v; want the link gone", err)
		}
		if err := f.s.DeleteWebSession(f.ctx, link.Hash); err != nil {
			t.Fatal(err)
		}

		expired := f.createWeb(webSession("expired", store.WebSessionLink, at(0), 10*minute))
		late := fromLink("late", expired.ExpiresAt, hour)
		wantErr(t, "RedeemWebLink when the link expires", f.s.RedeemWebLink(f.ctx, expired.Hash, late, expired.ExpiresAt), store.ErrNotFound)
		f.checkNoWeb("the session of an expired link", late.Hash, expired.ExpiresAt)

		browser := f.createWeb(webSession("browser", store.WebSessionBrowser, at(0), hour))
		posing := fromLink("posing", now, hour)
		wantErr(t, "RedeemWebLink of a browser session's hash", f.s.RedeemWebLink(f.ctx, browser.Hash, posing, now), store.ErrNotFound)
		f.checkNoWeb("the session of a redeemed browser session", posing.Hash, now)
		f.checkWeb("a browser session redeemed as a link", browser, now)

		unknown := fromLink("unknown-link", now, hour)
		wantErr(t, "RedeemWebLink of an unknown link", f.s.RedeemWebLink(f.ctx, hash("no such link"), unknown, now), store.ErrNotFound)
		f.checkNoWeb("the session of an unknown link", unknown.Hash, now)

		// A session that cannot be stored (its hash is taken) leaves the
		// link unredeemed: delete and insert are one transaction.
		kept := f.createWeb(webSession("kept", store.WebSessionLink, at(0), 10*minute))
		clash := fromLink("browser", now, 2*hour)
		if err := f.s.RedeemWebLink(f.ctx, kept.Hash, clash, now); err == nil {
			t.Error("RedeemWebLink for a session whose hash is taken: no error")
		}
		f.checkWeb("a session whose hash a refused redeem reused", browser, now)
		retry := storedWeb(fromLink("retry", now, hour))
		if err := f.s.RedeemWebLink(f.ctx, kept.Hash, retry, now); err != nil {
			t.Errorf("RedeemWebLink after a redeem that could not store its session: %v; want the link kept", err)
		}
		f.checkWeb("the session of the retried redeem", retry, now)
		f.checkChanges("web sessions", seq)
	})

	// Of goroutines on several stores redeeming one link, exactly one
	// succeeds, and only its session is stored.
	t.Run("RedeemRace", func(t *testing.T) {
		f := newFixture(t, b)
		stores := []store.Store{f.s, f.open(), f.open(), f.open()}
		link := f.createWeb(webSession("link", store.WebSessionLink, at(0), 10*minute))
		seq := f.lastSeq()
		now := at(minute)
		const workers = 16
		sessions := make([]store.WebSession, workers)
		errs := make([]error, workers)
		for w := range workers {
			sessions[w] = storedWeb(fromLink(fmt.Sprint("racer-", w), now, hour))
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		for w := range workers {
			s := stores[w%len(stores)]
			wg.Go(func() {
				<-start
				errs[w] = s.RedeemWebLink(f.ctx, link.Hash, sessions[w], now)
			})
		}
		close(start)
		wg.Wait()
		checkOneRedeemed(f, sessions, func(w int) (bool, string) {
			switch err := errs[w]; {
			case err == nil:
				return true, ""
			case errors.Is(err, store.ErrNotFound):
				return false, ""
			default:
				return false, err.Error()
			}
		}, now)
		f.checkChanges("racing redeems", seq)
	})

	// The same across OS processes (a daemon and a CLI, or replicas).
	t.Run("RedeemProcesses", func(t *testing.T) { redeemProcesses(t, b) })

	// GC deletes sessions and links once expired, whatever the policy,
	// and keeps the rest working.
	t.Run("GC", func(t *testing.T) {
		f := newFixture(t, b)
		seq := f.lastSeq()
		gone := []store.WebSession{
			f.createWeb(webSession("expired", store.WebSessionBrowser, at(0), 10*minute)),
			f.createWeb(webSession("expired-now", store.WebSessionBrowser, at(0), hour)),
			f.createWeb(webSession("expired-link", store.WebSessionLink, at(0), 10*minute)),
		}
		kept := f.createWeb(webSession("kept", store.WebSessionBrowser, at(0), hour+ms))
		keptLink := f.createWeb(webSession("kept-link", store.WebSessionLink, at(30*minute), hour))
		now := at(hour)
		f.gc(now, store.GCPolicy{}, store.GCResult{WebSessions: len(gone)})
		f.gc(now, store.GCPolicy{}, store.GCResult{})
		for _, w := range gone {
			// Stored again, they would be found: GC deleted the rows.
			if err := f.s.CreateWebSession(f.ctx, w); err != nil {
				t.Errorf("CreateWebSession with the hash of a collected %s: %v; want the row gone", w.Kind, err)
			}
		}
		f.checkWeb("a session GC kept", kept, now)
		redeemed := storedWeb(fromLink("redeemed", now, hour))
		if err := f.s.RedeemWebLink(f.ctx, keptLink.Hash, redeemed, now); err != nil {
			t.Errorf("RedeemWebLink of a link GC kept: %v", err)
		}
		f.checkWeb("the session of a link GC kept", redeemed, now)
		// What is left: the three stored again, kept and redeemed.
		f.gc(at(100*hour), store.GCPolicy{}, store.GCResult{WebSessions: len(gone) + 2})
		f.checkChanges("web sessions and their GC", seq)
	})
}

// checkOneRedeemed checks what racing redeems of one link leave: exactly
// one redeemer told it succeeded, the others told ErrNotFound, only the
// winner's session stored, and the link gone. outcome reports whether
// redeemer w succeeded, and an unexpected error it got.
func checkOneRedeemed(f *fixture, sessions []store.WebSession, outcome func(w int) (won bool, unexpected string), now time.Time) {
	f.t.Helper()
	winners := 0
	for w, s := range sessions {
		won, unexpected := outcome(w)
		if unexpected != "" {
			f.t.Errorf("redeemer %d: RedeemWebLink racing: %s; want success or ErrNotFound", w, unexpected)
		}
		if won {
			winners++
			f.checkWeb(fmt.Sprint("the session of winner ", w), s, now)
		} else {
			f.checkNoWeb(fmt.Sprint("the session of loser ", w), s.Hash, now)
		}
	}
	if winners != 1 {
		f.t.Errorf("%d racing redeemers of one link: %d succeeded, want exactly 1", len(sessions), winners)
	}
	// Everything stored now is collected once expired: the winner's
	// session only (the link went when it was redeemed).
	f.gc(now.Add(1000*hour), store.GCPolicy{}, store.GCResult{WebSessions: winners})
}

// redeemJob is a child's RedeemWebLink call.
type redeemJob struct {
	Link    []byte
	Session store.WebSession
	Now     time.Time
}

// run redeems the link in a child: the outcome is named by the session's
// hash.
func (r redeemJob) run(ctx context.Context, s store.Store) childOutcome {
	err := s.RedeemWebLink(ctx, r.Link, r.Session, r.Now)
	o := childOutcome{ID: hex.EncodeToString(r.Session.Hash), Outcome: "redeemed"}
	switch {
	case err == nil:
	case errors.Is(err, store.ErrNotFound):
		o.Outcome = "not_found"
	default:
		o.Outcome, o.Error = "error", err.Error()
	}
	return o
}

// redeemProcesses starts child processes that each redeem one link for a
// session of their own, all released at once, as capTrial does, and checks
// that exactly one of them did.
func redeemProcesses(t *testing.T, b Backend) {
	const children = 8
	f := newFixture(t, b)
	ctx, cancel := context.WithTimeout(f.ctx, childTimeout)
	defer cancel()
	link := f.createWeb(webSession("link", store.WebSessionLink, at(0), 10*minute))
	seq := f.lastSeq()
	now := at(minute)

	sessions := make([]store.WebSession, children)
	var procs []*child
	for c := range children {
		sessions[c] = storedWeb(fromLink(fmt.Sprint("process-", c), now, hour))
		p, err := startChild(ctx, childJob{Locator: f.locator, Redeem: &redeemJob{Link: link.Hash, Session: sessions[c], Now: now}})
		if err != nil {
			t.Fatalf("starting child %d: %v", c, err)
		}
		procs = append(procs, p)
	}
	for _, p := range procs {
		select {
		case <-p.ready:
		case <-p.done: // exited early; reported below
		case <-ctx.Done():
		}
	}
	for _, p := range procs {
		_ = p.stdin.Close()
	}

	outcomes := make([]childOutcome, children)
	for c, p := range procs {
		<-p.done
		err := p.cmd.Wait()
		switch {
		case err != nil:
			t.Errorf("child %d: %v (ctx: %v)\nstdout:\n%s\nstderr:\n%s", c, err, ctx.Err(), strings.Join(p.other, "\n"), p.stderr.String())
		case !p.gotResult:
			t.Errorf("child %d printed no result: does the backend test's TestMain call storetest.ChildMain first?\nstdout:\n%s\nstderr:\n%s", c, strings.Join(p.other, "\n"), p.stderr.String())
		case p.parseErr != nil:
			t.Errorf("child %d: bad result: %v", c, p.parseErr)
		case len(p.result) != 1 || p.result[0].ID != hex.EncodeToString(sessions[c].Hash):
			t.Errorf("child %d: results %+v, want one for its session", c, p.result)
		default:
			outcomes[c] = p.result[0]
		}
	}
	if t.Failed() {
		return
	}
	checkOneRedeemed(f, sessions, func(c int) (bool, string) {
		switch o := outcomes[c]; o.Outcome {
		case "redeemed":
			return true, ""
		case "not_found":
			return false, ""
		default:
			return false, o.Outcome + ": " + o.Error
		}
	}, now)
	f.checkChanges("redeems racing across processes", seq)
}
