package web

import (
	"context"
	"errors"
	"net/http"

	"github.com/pairgate/pairgate/server"
	"github.com/pairgate/pairgate/store"
)

// events is GET /events: the change log as server-sent events
// (server.StreamChanges, the stream of GET /v1/events) for a signed-in
// browser; the page refreshes its live sections on each. The session is
// checked again every server.KeepAlive, so signing out elsewhere ends it.
func (h *Handler) events(w http.ResponseWriter, r *http.Request, s session) error {
	return server.StreamChanges(w, r, server.StreamOptions{Store: h.st, Logger: h.log, Drained: h.drained, Alive: func(context.Context) bool {
		_, err := h.session(r)
		return !errors.Is(err, store.ErrNotFound)
	}})
}
