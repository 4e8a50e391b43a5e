package server

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/pairgate/pairgate/api"
	"github.com/pairgate/pairgate/apitoken"
	"github.com/pairgate/pairgate/outbound"
)

// MaxOutboundWait is the longest GET /v1/outbound waits for a message.
const MaxOutboundWait = 60 * time.Second

// outbound answers GET /v1/outbound?after=SEQ&wait=30s&limit=N: the
// messages after SEQ, at once if there are any, else as soon as one is
// recorded (by any process or replica) or when wait is over, with none.
func (s *Server) outbound(w http.ResponseWriter, r *http.Request, _ apitoken.Caller) error {
	q, err := query(r, "after", "wait", "limit")
	if err != nil {
		return err
	}
	var after int64
	if v, ok := q["after"]; ok {
		if after, err = strconv.ParseInt(v, 10, 64); err != nil || after < 0 {
			return errorf(http.StatusBadRequest, api.CodeBadRequest, `query parameter "after": want the seq of the last message delivered (0 or more), got %q`, v)
		}
	}
	var wait time.Duration
	if v, ok := q["wait"]; ok {
		if wait, err = time.ParseDuration(v); err != nil || wait < 0 || wait > MaxOutboundWait {
			return errorf(http.StatusBadRequest, api.CodeBadRequest, `query parameter "wait": want a duration from 0s to %s such as 30s, got %q`, MaxOutboundWait, v)
		}
	}
	limit := 100
	if v, ok := q["limit"]; ok {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > outbound.MaxBatch {
			return errorf(http.StatusBadRequest, api.CodeBadRequest, `query parameter "limit": want a number from 1 to %d, got %q`, outbound.MaxBatch, v)
		}
	}
	if wait > 0 {
		// The server's write timeout is for requests that answer at once;
		// a long poll gets its wait on top.
		rc := http.NewResponseController(w)
		if err := rc.SetWriteDeadline(time.Now().Add(wait + 15*time.Second)); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return err
		}
	}
	// A shutdown answers the poll with what there is (perhaps nothing):
	// the gateway asks again, of this replica once it is back or another.
	polled, done := s.untilDrain(r)
	defer done()
	b, err := s.outboundReader.Wait(polled.Context(), after, limit, wait)
	if err != nil {
		return err
	}
	if r.Context().Err() != nil {
		// The gateway went away; nobody to answer. 499 (nginx's "client
		// closed request") for the log and the metrics, not a 101.
		w.WriteHeader(499)
		return nil
	}
	writeJSON(w, http.StatusOK, b)
	return nil
}

// command answers POST /v1/command: an owner command handed over by the
// gateway; its answer goes out as outbound messages.
func (s *Server) command(w http.ResponseWriter, r *http.Request, _ apitoken.Caller) error {
	var in api.CommandRequest
	if err := decode(w, r, &in); err != nil {
		return err
	}
	res, err := s.commands.Handle(r.Context(), in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}
