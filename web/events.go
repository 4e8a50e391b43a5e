package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/pairgate/pairgate/store"
)

// keepAlive is how often an idle event stream gets a comment line, so
// proxies do not close it, and how often it checks that its session is
// still signed in.
const keepAlive = 20 * time.Second

// event is what the page learns of a change: enough to know it should
// refresh, nothing more (never a code or a token, nor a sender's name).
type event struct {
	Seq  int64  `json:"seq"`
	Kind string `json:"kind"`
}

// events is GET /events: the change log as server-sent events, one per
// change, with its sequence number as the event id. A browser that
// reconnects sends the last id it saw (Last-Event-ID) and gets every change
// after it, so a dropped connection misses nothing; a new stream starts at
// the log's head. Whoever made the change (the CLI, another replica,
// another browser), it arrives here within the store's propagation delay.
func (h *Handler) events(w http.ResponseWriter, r *http.Request, s session) error {
	after := int64(-1)
	if v := strings.TrimSpace(r.Header.Get("Last-Event-ID")); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return badInput("Last-Event-ID is not a sequence number")
		}
		after = n
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	follow := store.FollowOptions{OnError: func(err error) { h.log.Warn("web: following the change log failed; will retry", "err", err) }}
	if after < 0 {
		head, err := store.Head(ctx, h.st, follow)
		if err != nil {
			return nil // the browser went away
		}
		after = head
	}
	follow.After = after

	rc := http.NewResponseController(w)
	// The server's read and write timeouts are for requests; this one
	// lasts as long as the page is open (an expired write deadline fails
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
	// retry: how soon the browser reconnects after a drop.
	if _, err := fmt.Fprint(w, "retry: 2000\n: stream of changes after ", after, "\n\n"); err != nil {
		return nil
	}
	if err := rc.Flush(); err != nil {
		return nil
	}

	batches := make(chan []store.Change)
	go store.Follow(ctx, h.st, follow, func(cs []store.Change) error {
		select {
		case batches <- cs:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	tick := time.NewTicker(keepAlive)
	defer tick.Stop()
	for {
		var err error
		select {
		case <-ctx.Done():
			return nil
		case cs := <-batches:
			for _, c := range cs {
				b, _ := json.Marshal(event{Seq: c.Seq, Kind: string(c.Kind)})
				if _, err = fmt.Fprintf(w, "id: %d\nevent: change\ndata: %s\n\n", c.Seq, b); err != nil {
					break
				}
			}
		case <-tick.C:
			if _, serr := h.session(r); errors.Is(serr, store.ErrNotFound) {
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
			return nil // the browser went away
		}
	}
}
