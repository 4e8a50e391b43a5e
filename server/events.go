package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/pairgate/pairgate/api"
	"github.com/pairgate/pairgate/apitoken"
	"github.com/pairgate/pairgate/store"
)

// KeepAlive is how often an idle event stream gets a comment line, so
// proxies do not close it, and how often it asks whether its caller may
// still read it.
const KeepAlive = 20 * time.Second

// ChangeView is a change as the API shows it: in the audit trail and the
// event stream. It never holds a code or a token.
func ChangeView(c store.Change) api.Change {
	return api.Change{Seq: c.Seq, At: c.At, Kind: string(c.Kind), Channel: c.Scope.Channel, Account: c.Scope.Account,
		Sender: c.Sender, RequestID: c.RequestID, Actor: c.Actor.Name, Source: c.Actor.Source, Detail: c.Detail}
}

// StreamOptions configure StreamChanges.
type StreamOptions struct {
	Store  store.ChangeLog
	Logger *slog.Logger // nil means discard
	// Alive is asked every KeepAlive whether the caller may still read the
	// stream (its session or token is still valid); when it says no, the
	// stream sends a "signedout" event and ends. Nil means always.
	Alive func(ctx context.Context) bool
	// Drained, when set, ends the stream once it is done: a shutdown's
	// drain is not held up by a stream that lasts as long as its client.
	Drained context.Context
}

// StreamChanges serves the change log as server-sent events until the
// client goes away: one event "change" per change, its data the change as
// the audit trail shows it (api.Change), its id the sequence number. A
// client that reconnects sends the last id it saw (Last-Event-ID) and gets
// every change after it, so a dropped connection misses nothing; a new
// stream starts at the log's head. Changes made anywhere (the CLI, another
// replica) arrive within the store's propagation delay. It returns an error
// only before the stream has started (a Last-Event-ID that is not a
// sequence number is a 400 bad_request).
func StreamChanges(w http.ResponseWriter, r *http.Request, o StreamOptions) error {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	after := int64(-1)
	if v := strings.TrimSpace(r.Header.Get("Last-Event-ID")); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return errorf(http.StatusBadRequest, api.CodeBadRequest, "Last-Event-ID %q is not a sequence number", v)
		}
		after = n
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	if o.Drained != nil {
		defer context.AfterFunc(o.Drained, cancel)()
	}
	follow := store.FollowOptions{OnError: func(err error) { log.Warn("events: following the change log failed; will retry", "err", err) }}
	if after < 0 {
		head, err := store.Head(ctx, o.Store, follow)
		if err != nil {
			return nil // the client went away
		}
		after = head
	}
	follow.After = after

	rc := http.NewResponseController(w)
	// The server's read and write timeouts are for requests; a stream
	// lasts as long as its client stays (an expired write deadline fails
	// the next event; the read one is lifted too, so that no deadline of
	// the server's ends the stream).
	for _, set := range []func(time.Time) error{rc.SetReadDeadline, rc.SetWriteDeadline} {
		if err := set(time.Time{}); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return err
		}
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Accel-Buffering", "no") // nginx: pass events on at once
	w.WriteHeader(http.StatusOK)
	// retry: how soon the client reconnects after a drop.
	if _, err := fmt.Fprint(w, "retry: 2000\n: changes after ", after, "\n\n"); err != nil {
		return nil
	}
	if err := rc.Flush(); err != nil {
		return nil
	}

	batches := make(chan []store.Change)
	go store.Follow(ctx, o.Store, follow, func(cs []store.Change) error {
		select {
		case batches <- cs:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	tick := time.NewTicker(KeepAlive)
	defer tick.Stop()
	for {
		var err error
		select {
		case <-ctx.Done():
			return nil
		case cs := <-batches:
			for _, c := range cs {
				b, _ := json.Marshal(ChangeView(c))
				if _, err = fmt.Fprintf(w, "id: %d\nevent: change\ndata: %s\n\n", c.Seq, b); err != nil {
					break
				}
			}
		case <-tick.C:
			if o.Alive != nil && !o.Alive(ctx) {
				fmt.Fprint(w, "event: signedout\ndata: {}\n\n")
				rc.Flush()
				return nil
			}
			_, err = fmt.Fprint(w, ": keep-alive\n\n")
		}
		if err == nil {
			err = rc.Flush()
		}
		if err != nil {
			return nil // the client went away
		}
	}
}

// events is GET /v1/events: StreamChanges for an admin token, which is
// checked again every KeepAlive, so revoking it ends the stream.
func (s *Server) events(w http.ResponseWriter, r *http.Request, c apitoken.Caller) error {
	if _, err := query(r); err != nil {
		return err
	}
	return StreamChanges(w, r, StreamOptions{Store: s.st, Logger: s.log, Drained: s.drained, Alive: func(ctx context.Context) bool {
		c, ok := s.tokens.AuthenticateHash(ctx, c.Hash)
		return ok && c.Scope == store.ScopeAdmin
	}})
}
