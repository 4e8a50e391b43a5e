package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pairgate/pairgate/api"
	"github.com/pairgate/pairgate/apitoken"
	"github.com/pairgate/pairgate/channel"
	"github.com/pairgate/pairgate/device"
	"github.com/pairgate/pairgate/pairing"
	"github.com/pairgate/pairgate/store"
)

// apiError is an error with its HTTP status and a stable code; the message
// is safe to show the caller (it never holds a code or a token).
type apiError struct {
	status     int
	code       string
	msg        string
	retryAfter time.Duration
}

func (e *apiError) Error() string { return e.code + ": " + e.msg }

func errorf(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, msg: fmt.Sprintf(format, args...)}
}

// ErrorCode classifies an error from the pairing, device and store packages
// by the code the API answers it with (one of the api.Code constants), or ""
// for anything unexpected. The CLI's --json errors use it too, so one error
// has one code wherever it is reported.
func ErrorCode(err error) string {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		return ae.code
	case errors.Is(err, store.ErrLockedOut):
		return api.CodeLockedOut
	case errors.Is(err, device.ErrNoPublicURL):
		return api.CodeNotConfigured
	case errors.Is(err, device.ErrAmbiguous):
		return api.CodeAmbiguous
	case errors.Is(err, pairing.ErrConfigAllowed):
		return api.CodeAllowedByConfig
	case errors.Is(err, store.ErrAlreadyApproved):
		return api.CodeAlreadyApproved
	case errors.Is(err, device.ErrInvalidInput), errors.Is(err, pairing.ErrInvalidInput), errors.Is(err, device.ErrBadSetupCode),
		errors.Is(err, channel.ErrUnknownChannel), errors.Is(err, channel.ErrInvalidAccount), errors.Is(err, channel.ErrInvalidSender):
		return api.CodeInvalidInput
	case errors.Is(err, store.ErrNotFound):
		return api.CodeNotFound
	case errors.Is(err, store.ErrUnavailable):
		return api.CodeUnavailable
	}
	return ""
}

// toAPIError maps library errors to HTTP. Anything unexpected is a 500
// whose message does not leak internals; the log has the detail.
func toAPIError(err error, now time.Time) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	var wrong *pairing.WrongAccountError
	if errors.As(err, &wrong) {
		e := *toAPIError(wrong.Err, now)
		e.msg += fmt.Sprintf(`; that code is pending on %s/%s: did you mean "account":%q?`, wrong.Scope.Channel, wrong.Account, wrong.Account)
		return &e
	}
	switch ErrorCode(err) {
	case api.CodeLockedOut:
		var lock *store.LockoutError
		if !errors.As(err, &lock) {
			return errorf(http.StatusTooManyRequests, api.CodeLockedOut, "%s", err.Error())
		}
		e := errorf(http.StatusTooManyRequests, api.CodeLockedOut, "approvals on %s are locked until %s after %d wrong codes; admit a sender you know with POST /v1/pairing/allow",
			lock.Scope, lock.Until.UTC().Format(time.RFC3339), lock.Failures)
		e.retryAfter = lock.Until.Sub(now)
		return e
	case api.CodeNotConfigured:
		return errorf(http.StatusConflict, api.CodeNotConfigured, "%s", err.Error())
	case api.CodeAmbiguous:
		return errorf(http.StatusConflict, api.CodeAmbiguous, "%s", err.Error())
	case api.CodeAllowedByConfig:
		return errorf(http.StatusConflict, api.CodeAllowedByConfig, "%s", err.Error())
	case api.CodeAlreadyApproved:
		return errorf(http.StatusConflict, api.CodeAlreadyApproved, "%s", err.Error())
	case api.CodeInvalidInput:
		return errorf(http.StatusBadRequest, api.CodeInvalidInput, "%s", strings.TrimPrefix(err.Error(), pairing.ErrInvalidInput.Error()+": "))
	case api.CodeNotFound:
		return errorf(http.StatusNotFound, api.CodeNotFound, "%s", err.Error())
	case api.CodeUnavailable:
		return errorf(http.StatusServiceUnavailable, api.CodeUnavailable, "the store is unavailable; try again shortly")
	}
	return errorf(http.StatusInternalServerError, api.CodeInternal, "internal error")
}

func writeError(w http.ResponseWriter, e *apiError) {
	if e.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(e.retryAfter.Seconds()+0.999)))
	}
	writeJSON(w, e.status, api.ErrorBody{Error: api.ErrorDetail{Code: e.code, Message: e.msg}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// decode reads one JSON object of at most MaxBodyBytes into v, refusing
// unknown fields, wrong types and trailing data, with messages that name
// the field.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	if r.ContentLength > MaxBodyBytes {
		// Refused before the body is touched: reading it is what makes
		// net/http send "100 Continue" to a client that asked first, which
		// would then send a body only to have it cut off.
		return tooLarge()
	}
	return decodeFrom(http.MaxBytesReader(w, r.Body, MaxBodyBytes), v)
}

// decodeFrom is decode's reading of body, whatever carries it (an HTTP
// body cut off at MaxBodyBytes, a NATS message).
func decodeFrom(body io.Reader, v any) error {
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		// Anything but the end of the body after the object is refused:
		// More() alone misses a stray "}" or "]".
		if _, terr := dec.Token(); !errors.Is(terr, io.EOF) {
			var tooBig *http.MaxBytesError
			if errors.As(terr, &tooBig) {
				err = terr
			} else {
				err = errors.New("trailing data after the JSON object")
			}
		}
	}
	var tooBig *http.MaxBytesError
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &tooBig):
		return tooLarge()
	case errors.Is(err, io.EOF):
		return errorf(http.StatusBadRequest, api.CodeBadRequest, "the body is empty; send a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errorf(http.StatusBadRequest, api.CodeBadRequest, "the JSON body ends early")
	case errors.As(err, &syntax):
		return errorf(http.StatusBadRequest, api.CodeBadRequest, "malformed JSON at byte %d: %v", syntax.Offset, err)
	case errors.As(err, &typ) && typ.Field == "":
		return errorf(http.StatusBadRequest, api.CodeBadRequest, "the body must be a JSON object, not a JSON %s", typ.Value)
	case errors.As(err, &typ):
		return errorf(http.StatusBadRequest, api.CodeBadRequest, "field %q: want %s, got JSON %s", typ.Field, typ.Type, typ.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return errorf(http.StatusBadRequest, api.CodeBadRequest, "unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
	}
	return errorf(http.StatusBadRequest, api.CodeBadRequest, "%v", err)
}

// ReadAdmit reads an admit body as POST /v1/admit does, for another route
// to the gate (the NATS service): the same limit, the same strict decoding
// and the same checks, so a body is refused by both routes or by neither,
// with the same error. An error is answered with Refusal.
func ReadAdmit(data []byte) (api.AdmitRequest, error) {
	var in api.AdmitRequest
	if len(data) > MaxBodyBytes {
		return in, tooLarge()
	}
	if err := decodeFrom(bytes.NewReader(data), &in); err != nil {
		return in, err
	}
	return in, checkAdmit(in)
}

// ReadCommand reads a command body (POST /v1/command, NATS
// pairgate.command) by the API's rules: at most MaxBodyBytes, unknown
// fields refused.
func ReadCommand(data []byte) (api.CommandRequest, error) {
	var in api.CommandRequest
	if len(data) > MaxBodyBytes {
		return in, tooLarge()
	}
	return in, decodeFrom(bytes.NewReader(data), &in)
}

// Refusal is the HTTP status and the error body the API answers err with
// (as it would answer it on its own routes).
func Refusal(err error, now time.Time) (int, api.ErrorBody) {
	e := toAPIError(err, now)
	return e.status, api.ErrorBody{Error: api.ErrorDetail{Code: e.code, Message: e.msg}}
}

// Inbound is the gate's view of an admit body; by is how the reply goes
// out when the body does not say (the HTTP API answers it, NATS records
// it as outbound).
func Inbound(in api.AdmitRequest, by api.ReplyBy) pairing.Inbound {
	if in.ReplyBy != "" {
		by = in.ReplyBy
	}
	return pairing.Inbound{Channel: in.Channel, Account: in.Account, Sender: in.Sender, SenderName: in.SenderName,
		Chat: in.Chat, ReplyBy: by}
}

// checkAdmit refuses an admit body the gate cannot decide: a chat other
// than dm or group, a reply_by other than answer or outbound, or no
// channel or sender. Everything else is the gate's
// to answer with a decision.
func checkAdmit(in api.AdmitRequest) error {
	switch in.Chat {
	case "", api.ChatDM, api.ChatGroup:
	default:
		return errorf(http.StatusBadRequest, api.CodeInvalidInput, `field "chat": want "dm" or "group", got %q`, in.Chat)
	}
	switch in.ReplyBy {
	case "", api.ReplyByAnswer, api.ReplyByOutbound:
	default:
		return errorf(http.StatusBadRequest, api.CodeInvalidInput, `field "reply_by": want "answer" or "outbound", got %q`, in.ReplyBy)
	}
	if in.Channel == "" || in.Sender == "" {
		return errorf(http.StatusBadRequest, api.CodeInvalidInput, `fields "channel" and "sender" are required`)
	}
	return nil
}

func tooLarge() *apiError {
	return errorf(http.StatusRequestEntityTooLarge, api.CodeTooLarge, "the body is over %d bytes", MaxBodyBytes)
}

// route is one API endpoint.
type route struct {
	method  string
	scope   store.TokenScope // "" means no authentication (health, metrics)
	name    string           // metrics label
	handle  func(w http.ResponseWriter, r *http.Request, c apitoken.Caller) error
	metrics *routeMetrics
	// session marks a route whose requests last as long as a client stays
	// connected (the /pair WebSocket): counted, but kept out of the
	// latency histogram, where hours-long sessions would drown the API's.
	session bool
}

func (s *Server) routeTable(reg *prometheus.Registry) map[string]route {
	// One failing collector (the pending gauge while the store is down)
	// must not blind the whole scrape during the outage it should show.
	prom := promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg, ErrorHandling: promhttp.ContinueOnError,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)})
	rs := map[string]route{
		"/v1/admit":            {method: http.MethodPost, scope: store.ScopeGateway, handle: s.admit},
		"/v1/pairing/requests": {method: http.MethodGet, scope: store.ScopeAdmin, handle: s.listRequests},
		"/v1/pairing/approve":  {method: http.MethodPost, scope: store.ScopeAdmin, handle: s.approve},
		"/v1/pairing/reject":   {method: http.MethodPost, scope: store.ScopeAdmin, handle: s.reject},
		"/v1/pairing/allowed":  {method: http.MethodGet, scope: store.ScopeAdmin, handle: s.listAllowed},
		"/v1/pairing/allow":    {method: http.MethodPost, scope: store.ScopeAdmin, handle: s.allow},
		"/v1/pairing/revoke":   {method: http.MethodPost, scope: store.ScopeAdmin, handle: s.revoke},
		"/v1/pairing/unlock":   {method: http.MethodPost, scope: store.ScopeAdmin, handle: s.unlock},
		"/v1/audit":            {method: http.MethodGet, scope: store.ScopeAdmin, handle: s.audit},
		"/v1/events":           {method: http.MethodGet, scope: store.ScopeAdmin, handle: s.events, session: true},
		"/v1/outbound":         {method: http.MethodGet, scope: store.ScopeGateway, handle: s.outbound, session: true},
		"/v1/command":          {method: http.MethodPost, scope: store.ScopeGateway, handle: s.command},

		"/pair":                             {method: http.MethodGet, handle: s.pair, session: true},
		"/v1/setup-codes":                   {method: http.MethodPost, scope: store.ScopeAdmin, handle: s.setupCode},
		"/v1/devices":                       {method: http.MethodGet, scope: store.ScopeAdmin, handle: s.listDevices},
		"/v1/devices/requests/{id}/approve": {method: http.MethodPost, scope: store.ScopeAdmin, handle: s.decideDevice(true)},
		"/v1/devices/requests/{id}/reject":  {method: http.MethodPost, scope: store.ScopeAdmin, handle: s.decideDevice(false)},
		"/v1/devices/{id}/revoke":           {method: http.MethodPost, scope: store.ScopeAdmin, handle: s.revokeDevice},
		"/v1/devices/{id}/rotate":           {method: http.MethodPost, scope: store.ScopeAdmin, handle: s.rotateDevice},
		"/healthz": {method: http.MethodGet, handle: func(w http.ResponseWriter, r *http.Request, _ apitoken.Caller) error {
			writeJSON(w, http.StatusOK, api.Health{Status: api.StatusOK})
			return nil
		}},
		"/readyz": {method: http.MethodGet, handle: func(w http.ResponseWriter, r *http.Request, _ apitoken.Caller) error {
			if err := s.Ready(r.Context()); err != nil {
				s.log.Warn("server: not ready", "err", err)
				writeJSON(w, http.StatusServiceUnavailable, api.Health{Status: api.StatusUnavailable})
				return nil
			}
			writeJSON(w, http.StatusOK, api.Health{Status: api.StatusReady})
			return nil
		}},
		"/metrics": {method: http.MethodGet, handle: func(w http.ResponseWriter, r *http.Request, _ apitoken.Caller) error {
			prom.ServeHTTP(w, r)
			return nil
		}},
	}
	for path, rt := range rs {
		rt.name = path
		rt.metrics = s.metrics.forRoute(path, rt.session)
		rs[path] = rt
	}
	return rs
}

// statusWriter remembers the status for metrics and the request log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController and the WebSocket upgrade reach the
// connection underneath.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// mux builds the router: one pattern per route, each wrapped so that it
// authenticates, records metrics and writes errors the same way.
func (s *Server) mux() http.Handler {
	m := http.NewServeMux()
	for pattern, rt := range s.routes {
		m.Handle(pattern, s.wrap(rt))
	}
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if s.web != nil && !strings.HasPrefix(r.URL.Path, "/v1/") {
			s.web.ServeHTTP(w, r)
			return
		}
		writeError(w, errorf(http.StatusNotFound, api.CodeNotFound, "no such endpoint %s; see the API table in README.md", r.URL.Path))
		s.metrics.unrouted.Inc()
		s.logRequest(r, "unknown", http.StatusNotFound, time.Now())
	})
	return m
}

func (s *Server) wrap(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		if err := s.serveRoute(sw, r, rt); err != nil {
			ae := toAPIError(err, s.now())
			if ae.status >= 500 {
				s.log.Error("server: request failed", "route", rt.name, "err", err)
			}
			writeError(sw, ae)
		}
		if sw.status == 0 {
			sw.status = http.StatusSwitchingProtocols // a hijacked WebSocket upgrade
		}
		rt.metrics.observe(sw.status, time.Since(start))
		s.logRequest(r, rt.name, sw.status, start)
	})
}

func (s *Server) serveRoute(w http.ResponseWriter, r *http.Request, rt route) error {
	if r.Method != rt.method && !(rt.method == http.MethodGet && r.Method == http.MethodHead) {
		w.Header().Set("Allow", rt.method)
		return errorf(http.StatusMethodNotAllowed, api.CodeMethodNotAllowed, "%s takes %s, not %s", rt.name, rt.method, r.Method)
	}
	var c apitoken.Caller
	if rt.scope != "" {
		scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			w.Header().Set("WWW-Authenticate", `Bearer realm="pairgate"`)
			return errorf(http.StatusUnauthorized, api.CodeUnauthorized, "send Authorization: Bearer <token> (the admin token is in $PAIRGATE_HOME/admin.token; gateways use 'pairgate tokens create --scope gateway')")
		}
		if c, ok = s.tokens.Authenticate(r.Context(), strings.TrimSpace(token)); !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="pairgate", error="invalid_token"`)
			return errorf(http.StatusUnauthorized, api.CodeUnauthorized, "the token is unknown or revoked")
		}
		if rt.scope == store.ScopeAdmin && c.Scope != store.ScopeAdmin {
			return errorf(http.StatusForbidden, api.CodeForbidden, "a %s token may only call POST /v1/admit, POST /v1/command and GET /v1/outbound; use an admin token", c.Scope)
		}
	}
	return rt.handle(w, r, c)
}

func (s *Server) logRequest(r *http.Request, route string, status int, start time.Time) {
	if !s.log.Enabled(r.Context(), slog.LevelDebug) { // checked first so the hot path builds no attributes
		return
	}
	s.log.Debug("http request", "method", r.Method, "route", route, "status", status,
		"duration_ms", float64(time.Since(start).Microseconds())/1000, "remote", r.RemoteAddr)
}

func (s *Server) actor(r *http.Request, c apitoken.Caller) store.Actor {
	return store.Actor{Name: c.Name, Source: "api " + r.RemoteAddr}
}

func (s *Server) admit(w http.ResponseWriter, r *http.Request, _ apitoken.Caller) error {
	var in api.AdmitRequest
	if err := decode(w, r, &in); err != nil {
		return err
	}
	if err := checkAdmit(in); err != nil {
		return err
	}
	d := s.pairing.Admit(r.Context(), Inbound(in, api.ReplyByAnswer))
	s.metrics.decision(in.Channel, d)
	writeJSON(w, http.StatusOK, d)
	return nil
}

// target names the request of an approve or reject body.
func target(channel, account, code, requestID string) (pairing.Target, error) {
	if (code == "") == (requestID == "") {
		return pairing.Target{}, errorf(http.StatusBadRequest, api.CodeInvalidInput, `send exactly one of "code" and "request_id"`)
	}
	if requestID != "" && !strings.HasPrefix(strings.ToLower(requestID), pairing.RequestIDPrefix) {
		return pairing.Target{}, errorf(http.StatusBadRequest, api.CodeInvalidInput, `"request_id" starts with %q`, pairing.RequestIDPrefix)
	}
	return pairing.Target{Channel: channel, Account: account, CodeOrID: code + requestID}, nil
}

func (s *Server) approve(w http.ResponseWriter, r *http.Request, c apitoken.Caller) error {
	var in api.ApproveRequest
	if err := decode(w, r, &in); err != nil {
		return err
	}
	t, err := target(in.Channel, in.Account, in.Code, in.RequestID)
	if err != nil {
		return err
	}
	a, err := s.pairing.Approve(r.Context(), t, in.Notify, s.actor(r, c))
	if errors.Is(err, store.ErrLockedOut) {
		s.metrics.approvalLockedOut(in.Channel)
	}
	if err != nil {
		return err
	}
	if a.Already {
		s.metrics.approvalAlready(a.Allowed.Channel)
	}
	writeJSON(w, http.StatusOK, a)
	return nil
}

func (s *Server) reject(w http.ResponseWriter, r *http.Request, c apitoken.Caller) error {
	var in struct {
		api.RejectRequest
		// Notify is approve's: known here only to be refused with a
		// clearer message than "unknown field".
		Notify bool `json:"notify"`
	}
	if err := decode(w, r, &in); err != nil {
		return err
	}
	if in.Notify {
		return errorf(http.StatusBadRequest, api.CodeInvalidInput, `"notify" applies to approve only`)
	}
	t, err := target(in.Channel, in.Account, in.Code, in.RequestID)
	if err != nil {
		return err
	}
	p, err := s.pairing.Reject(r.Context(), t, s.actor(r, c))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, api.RejectResponse{Rejected: p})
	return nil
}

func (s *Server) allow(w http.ResponseWriter, r *http.Request, c apitoken.Caller) error {
	var in api.SenderRequest
	if err := decode(w, r, &in); err != nil {
		return err
	}
	res, err := s.pairing.Allow(r.Context(), in.Channel, in.Account, []string{in.Sender}, store.ViaManual, s.actor(r, c))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, api.AllowResponse{Allowed: res})
	return nil
}

func (s *Server) revoke(w http.ResponseWriter, r *http.Request, c apitoken.Caller) error {
	var in api.SenderRequest
	if err := decode(w, r, &in); err != nil {
		return err
	}
	e, err := s.pairing.Revoke(r.Context(), in.Channel, in.Account, in.Sender, s.actor(r, c))
	if err != nil {
		return err
	}
	out := api.RevokeResponse{Revoked: e}
	// Revoked in the store, but allow_from in the config still admits them.
	if keys, err := s.pairing.AllowedByConfig(in.Channel, in.Account, in.Sender); err == nil {
		out.StillAllowedBy = keys
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// query reads the allowed query parameters of r (see parseQuery).
func query(r *http.Request, allowed ...string) (map[string]string, error) {
	return parseQuery(r.URL.RawQuery, allowed...)
}

// parseQuery reads a raw query string strictly, refusing unknown and
// repeated parameters the way the JSON decoder refuses unknown and
// duplicate fields. url.ParseQuery (behind r.URL.Query) skips the pairs it
// cannot read, and a filter skipped that way listed every channel; here a
// pair that cannot be read is a 400 naming it. Pairs are separated by "&"
// only: a ";" is refused rather than guessed at (Go stopped splitting on it
// in 1.17). Keys and values are unescaped with url.QueryUnescape.
func parseQuery(raw string, allowed ...string) (map[string]string, error) {
	type param struct{ key, value string }
	var params []param
	for pair := range strings.SplitSeq(raw, "&") {
		if pair == "" {
			continue // "a=1&&b=2" and a trailing "&" are harmless
		}
		rawKey, rawValue, _ := strings.Cut(pair, "=")
		key, err := url.QueryUnescape(rawKey)
		switch {
		case strings.Contains(rawKey, ";"):
			return nil, badQuery(pair, `";" is not a separator: separate parameters with "&"`)
		case err != nil:
			return nil, badQuery(pair, err.Error())
		}
		if strings.Contains(rawValue, ";") {
			return nil, badQuery(key, `";" is not a separator: separate parameters with "&" (write a ";" in a value as %3B)`)
		}
		value, err := url.QueryUnescape(rawValue)
		if err != nil {
			return nil, badQuery(key, err.Error())
		}
		params = append(params, param{key, value})
	}
	out := make(map[string]string, len(params))
	count := make(map[string]int, len(params))
	for _, p := range params {
		if !slices.Contains(allowed, p.key) {
			return nil, errorf(http.StatusBadRequest, api.CodeBadRequest, "unknown query parameter %q (known: %s)", p.key, strings.Join(allowed, ", "))
		}
		out[p.key] = p.value
		count[p.key]++
	}
	for _, p := range params {
		if n := count[p.key]; n > 1 {
			return nil, errorf(http.StatusBadRequest, api.CodeBadRequest, "query parameter %q given %d times", p.key, n)
		}
	}
	return out, nil
}

// badQuery names a query parameter that cannot be read: its key, or the
// whole pair as sent when the key itself cannot be read.
func badQuery(name, problem string) *apiError {
	return errorf(http.StatusBadRequest, api.CodeBadRequest, "query parameter %q: %s", name, problem)
}

func (s *Server) listRequests(w http.ResponseWriter, r *http.Request, _ apitoken.Caller) error {
	q, err := query(r, "channel", "account")
	if err != nil {
		return err
	}
	f := pairing.Filter{Channel: q["channel"], Account: q["account"]}
	pending, err := s.pairing.ListPending(r.Context(), f)
	if err != nil {
		return err
	}
	locked, err := s.pairing.ListLocked(r.Context(), f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, api.PendingList{Pending: pending, Locked: locked})
	return nil
}

func (s *Server) unlock(w http.ResponseWriter, r *http.Request, c apitoken.Caller) error {
	var in api.UnlockRequest
	if err := decode(w, r, &in); err != nil {
		return err
	}
	u, err := s.pairing.Unlock(r.Context(), in.Channel, in.Account, s.actor(r, c))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, api.UnlockResponse{Unlocked: u})
	return nil
}

func (s *Server) listAllowed(w http.ResponseWriter, r *http.Request, _ apitoken.Caller) error {
	q, err := query(r, "channel", "account", "include_revoked")
	if err != nil {
		return err
	}
	include := false
	if v, ok := q["include_revoked"]; ok {
		if include, err = strconv.ParseBool(v); err != nil {
			return errorf(http.StatusBadRequest, api.CodeBadRequest, `query parameter "include_revoked": want true or false, got %q`, v)
		}
	}
	list, err := s.pairing.ListAllowed(r.Context(), pairing.Filter{Channel: q["channel"], Account: q["account"]}, include)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, api.AllowedList{Allowed: list})
	return nil
}

func (s *Server) audit(w http.ResponseWriter, r *http.Request, _ apitoken.Caller) error {
	q, err := query(r, "limit", "before", "kind", "channel", "actor")
	if err != nil {
		return err
	}
	cq := store.ChangeQuery{Limit: 100, Channel: q["channel"], Actor: q["actor"]}
	if v, ok := q["limit"]; ok {
		if cq.Limit, err = strconv.Atoi(v); err != nil || cq.Limit < 1 || cq.Limit > 1000 {
			return errorf(http.StatusBadRequest, api.CodeBadRequest, `query parameter "limit": want a number from 1 to 1000, got %q`, v)
		}
	}
	if v, ok := q["before"]; ok {
		if cq.Before, err = strconv.ParseInt(v, 10, 64); err != nil || cq.Before < 1 {
			return errorf(http.StatusBadRequest, api.CodeBadRequest, `query parameter "before": want a change's seq (a positive number), got %q`, v)
		}
	}
	// kind= (empty), like channel= and actor=, means any: what a form's
	// "any" choice sends. An unknown kind would silently select nothing,
	// so a typo would look like "no such changes": it is refused instead.
	if v := q["kind"]; v != "" {
		kinds := store.ChangeKinds()
		if !slices.Contains(kinds, store.ChangeKind(v)) {
			names := make([]string, len(kinds))
			for i, k := range kinds {
				names[i] = string(k)
			}
			return errorf(http.StatusBadRequest, api.CodeBadRequest, `query parameter "kind": unknown kind %q (known: %s)`, v, strings.Join(names, ", "))
		}
		cq.Kind = store.ChangeKind(v)
	}
	changes, err := s.st.RecentChanges(r.Context(), cq)
	if err != nil {
		return err
	}
	out := make([]api.Change, len(changes))
	for i, c := range changes {
		out[i] = ChangeView(c)
	}
	res := api.AuditLog{Changes: out}
	// A full page may have older matches; a short one is the last.
	if len(changes) == cq.Limit {
		res.NextBefore = changes[len(changes)-1].Seq
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}
