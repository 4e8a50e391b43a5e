package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pairgate/pairgate/api"
	"github.com/pairgate/pairgate/client"
)

const testToken = "pgt_test_0123456789abcdefghijklmnopqrstuv"

// seen is what the test server received.
type seen struct {
	Method      string
	Path        string
	Query       string
	Auth        string
	ContentType string
	UserAgent   string
	Body        string
}

// canned is what the test server answers.
type canned struct {
	status int
	header map[string]string
	body   string
}

// recorder is an httptest.Server that records each request and answers with
// one canned response.
type recorder struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []seen
	resp canned
}

func newRecorder(t *testing.T, resp canned) *recorder {
	t.Helper()
	r := &recorder{resp: resp}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, err := io.ReadAll(req.Body)
		if err != nil {
			t.Errorf("server: reading body: %v", err)
		}
		r.mu.Lock()
		r.reqs = append(r.reqs, seen{
			Method: req.Method, Path: req.URL.Path, Query: req.URL.RawQuery,
			Auth: req.Header.Get("Authorization"), ContentType: req.Header.Get("Content-Type"),
			UserAgent: req.Header.Get("User-Agent"), Body: string(b),
		})
		r.mu.Unlock()
		for k, v := range r.resp.header {
			w.Header().Set(k, v)
		}
		if r.resp.body != "" && w.Header().Get("Content-Type") == "" {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(r.resp.status)
		_, _ = io.WriteString(w, r.resp.body)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *recorder) requests() []seen {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]seen(nil), r.reqs...)
}

func newClient(t *testing.T, url string, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(url, testToken, opts...)
	if err != nil {
		t.Fatalf("New(%q): %v", url, err)
	}
	return c
}

var (
	t0      = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	t0JSON  = `"2026-03-01T12:00:00Z"`
	t1      = t0.Add(time.Hour)
	t1JSON  = `"2026-03-01T13:00:00Z"`
	pending = api.PendingRequest{RequestID: "req_abc", Channel: "telegram", Account: "default",
		Sender: "123456789", Name: "Alice", CreatedAt: t0, ExpiresAt: t1}
	pendingJSON = `{"request_id":"req_abc","channel":"telegram","account":"default","sender":"123456789",` +
		`"name":"Alice","created_at":` + t0JSON + `,"expires_at":` + t1JSON + `}`
	allowed = api.AllowedSender{Channel: "telegram", Account: "default", Sender: "123456789",
		Name: "Alice", ApprovedAt: t0, ApprovedBy: "token:admin", Via: api.ViaCode}
	allowedJSON = `{"channel":"telegram","account":"default","sender":"123456789","name":"Alice",` +
		`"approved_at":` + t0JSON + `,"approved_by":"token:admin","via":"code"}`
	revoked = api.AllowedSender{Channel: "telegram", Account: "work", Sender: "42",
		ApprovedAt: t0, ApprovedBy: "cli:bob", Via: api.ViaManual, RevokedAt: &t1, RevokedBy: "token:admin"}
	revokedJSON = `{"channel":"telegram","account":"work","sender":"42","name":"",` +
		`"approved_at":` + t0JSON + `,"approved_by":"cli:bob","via":"manual","revoked_at":` + t1JSON +
		`,"revoked_by":"token:admin"}`
)

// TestMethods pins the wire contract of every method: what is sent (method,
// path, query, token, body byte for byte) and how the answer is decoded.
func TestMethods(t *testing.T) {
	const ua = client.DefaultUserAgent
	tests := []struct {
		name string
		call func(context.Context, *client.Client) (any, error)
		resp string // 200 body
		want any
		req  seen
	}{
		{
			name: "admit minimal",
			call: func(ctx context.Context, c *client.Client) (any, error) {
				return c.Admit(ctx, api.AdmitRequest{Channel: "telegram", Sender: "123456789"})
			},
			resp: `{"verdict":"admit","reason":"allowed"}`,
			want: api.Decision{Verdict: api.Admit, Reason: api.ReasonAllowed},
			req: seen{Method: "POST", Path: "/v1/admit", Auth: "Bearer " + testToken, ContentType: "application/json",
				UserAgent: ua, Body: `{"channel":"telegram","sender":"123456789"}`},
		},
		{
			name: "admit full, challenged",
			call: func(ctx context.Context, c *client.Client) (any, error) {
				return c.Admit(ctx, api.AdmitRequest{Channel: "telegram", Account: "work", Sender: "tg:42",
					SenderName: "Bob", Chat: api.ChatDM})
			},
			resp: `{"verdict":"challenge","reason":"challenged","code":"ABCD2345","request_id":"req_x","reply":"Access…","future_field":1}`,
			want: api.Decision{Verdict: api.Challenge, Reason: api.ReasonChallenged, Code: "ABCD2345",
				RequestID: "req_x", Reply: "Access…"},
			req: seen{Method: "POST", Path: "/v1/admit", Auth: "Bearer " + testToken, ContentType: "application/json",
				UserAgent: ua, Body: `{"channel":"telegram","account":"work","sender":"tg:42","sender_name":"Bob","chat":"dm"}`},
		},
		{
			name: "pending, no filter",
			call: func(ctx context.Context, c *client.Client) (any, error) { return c.Pending(ctx, "", "") },
			resp: `{"pending":[` + pendingJSON + `]}`,
			want: []api.PendingRequest{pending},
			req:  seen{Method: "GET", Path: "/v1/pairing/requests", Auth: "Bearer " + testToken, UserAgent: ua},
		},
		{
			name: "pending, channel and account",
			call: func(ctx context.Context, c *client.Client) (any, error) { return c.Pending(ctx, "telegram", "a b&c") },
			resp: `{"pending":[]}`,
			want: []api.PendingRequest{},
			req: seen{Method: "GET", Path: "/v1/pairing/requests", Query: "account=a+b%26c&channel=telegram",
				Auth: "Bearer " + testToken, UserAgent: ua},
		},
		{
			name: "approve by code with notify",
			call: func(ctx context.Context, c *client.Client) (any, error) {
				return c.Approve(ctx, api.ApproveRequest{Channel: "telegram", Code: "abcd-2345", Notify: true})
			},
			resp: `{"allowed":` + allowedJSON + `,"request_id":"req_abc","notify":"You're in."}`,
			want: api.Approval{Allowed: allowed, RequestID: "req_abc", Notify: "You're in."},
			req: seen{Method: "POST", Path: "/v1/pairing/approve", Auth: "Bearer " + testToken, ContentType: "application/json",
				UserAgent: ua, Body: `{"channel":"telegram","code":"abcd-2345","notify":true}`},
		},
		{
			name: "approve by request id",
			call: func(ctx context.Context, c *client.Client) (any, error) {
				return c.Approve(ctx, api.ApproveRequest{Channel: "telegram", Account: "work", RequestID: "req_abc"})
			},
			resp: `{"allowed":` + allowedJSON + `,"request_id":"req_abc"}`,
			want: api.Approval{Allowed: allowed, RequestID: "req_abc"},
			req: seen{Method: "POST", Path: "/v1/pairing/approve", Auth: "Bearer " + testToken, ContentType: "application/json",
				UserAgent: ua, Body: `{"channel":"telegram","account":"work","request_id":"req_abc"}`},
		},
		{
			name: "reject",
			call: func(ctx context.Context, c *client.Client) (any, error) {
				return c.Reject(ctx, api.RejectRequest{Channel: "telegram", Code: "ABCD2345"})
			},
			resp: `{"rejected":` + pendingJSON + `}`,
			want: pending,
			req: seen{Method: "POST", Path: "/v1/pairing/reject", Auth: "Bearer " + testToken, ContentType: "application/json",
				UserAgent: ua, Body: `{"channel":"telegram","code":"ABCD2345"}`},
		},
		{
			name: "allowed",
			call: func(ctx context.Context, c *client.Client) (any, error) { return c.Allowed(ctx, "telegram", "", false) },
			resp: `{"allowed":[` + allowedJSON + `]}`,
			want: []api.AllowedSender{allowed},
			req: seen{Method: "GET", Path: "/v1/pairing/allowed", Query: "channel=telegram",
				Auth: "Bearer " + testToken, UserAgent: ua},
		},
		{
			name: "allowed with revoked",
			call: func(ctx context.Context, c *client.Client) (any, error) {
				return c.Allowed(ctx, "telegram", "work", true)
			},
			resp: `{"allowed":[` + allowedJSON + `,` + revokedJSON + `]}`,
			want: []api.AllowedSender{allowed, revoked},
			req: seen{Method: "GET", Path: "/v1/pairing/allowed", Query: "account=work&channel=telegram&include_revoked=true",
				Auth: "Bearer " + testToken, UserAgent: ua},
		},
		{
			name: "allow",
			call: func(ctx context.Context, c *client.Client) (any, error) {
				return c.Allow(ctx, "telegram", "", "123456789")
			},
			resp: `{"allowed":[{"channel":"telegram","account":"default","sender":"123456789","name":"Alice",` +
				`"approved_at":` + t0JSON + `,"approved_by":"token:admin","via":"code","changed":true}]}`,
			want: []api.AllowResult{{AllowedSender: allowed, Changed: true}},
			req: seen{Method: "POST", Path: "/v1/pairing/allow", Auth: "Bearer " + testToken, ContentType: "application/json",
				UserAgent: ua, Body: `{"channel":"telegram","sender":"123456789"}`},
		},
		{
			name: "revoke",
			call: func(ctx context.Context, c *client.Client) (any, error) {
				return c.Revoke(ctx, "telegram", "work", "42")
			},
			resp: `{"revoked":` + revokedJSON + `}`,
			want: revoked,
			req: seen{Method: "POST", Path: "/v1/pairing/revoke", Auth: "Bearer " + testToken, ContentType: "application/json",
				UserAgent: ua, Body: `{"channel":"telegram","account":"work","sender":"42"}`},
		},
		{
			name: "audit with limit",
			call: func(ctx context.Context, c *client.Client) (any, error) {
				l, err := c.Audit(ctx, api.AuditQuery{Limit: 50})
				return l.Changes, err
			},
			resp: `{"changes":[{"seq":7,"at":"2026-03-01T13:00:00.123456789Z","kind":"pairing.approved","channel":"telegram",` +
				`"account":"default","sender":"123456789","request_id":"req_abc","actor":"token:admin",` +
				`"source":"api 127.0.0.1:5123","detail":"via code"},{"seq":6,"at":` + t0JSON + `,"kind":"pairing.requested",` +
				`"channel":"telegram","account":"default","sender":"123456789","request_id":"req_abc","actor":"gate",` +
				`"source":"gate","detail":""}]}`,
			want: []api.Change{
				{Seq: 7, At: t1.Add(123456789), Kind: "pairing.approved", Channel: "telegram", Account: "default",
					Sender: "123456789", RequestID: "req_abc", Actor: "token:admin", Source: "api 127.0.0.1:5123", Detail: "via code"},
				{Seq: 6, At: t0, Kind: "pairing.requested", Channel: "telegram", Account: "default",
					Sender: "123456789", RequestID: "req_abc", Actor: "gate", Source: "gate"},
			},
			req: seen{Method: "GET", Path: "/v1/audit", Query: "limit=50", Auth: "Bearer " + testToken, UserAgent: ua},
		},
		{
			name: "audit, default limit",
			call: func(ctx context.Context, c *client.Client) (any, error) {
				l, err := c.Audit(ctx, api.AuditQuery{})
				return l.Changes, err
			},
			resp: `{"changes":[]}`,
			want: []api.Change{},
			req:  seen{Method: "GET", Path: "/v1/audit", Auth: "Bearer " + testToken, UserAgent: ua},
		},
		{
			name: "audit, filtered, next page",
			call: func(ctx context.Context, c *client.Client) (any, error) {
				return c.Audit(ctx, api.AuditQuery{Limit: 1, Before: 9, Kind: "pairing.approved", Channel: "telegram", Actor: "cli:ana b"})
			},
			resp: `{"changes":[],"next_before":5}`,
			want: api.AuditLog{Changes: []api.Change{}, NextBefore: 5},
			req: seen{Method: "GET", Path: "/v1/audit", Query: "actor=cli%3Aana+b&before=9&channel=telegram&kind=pairing.approved&limit=1",
				Auth: "Bearer " + testToken, UserAgent: ua},
		},
		{
			name: "healthz sends no token",
			call: func(ctx context.Context, c *client.Client) (any, error) { return nil, c.Healthz(ctx) },
			resp: `{"status":"ok"}`,
			req:  seen{Method: "GET", Path: "/healthz", UserAgent: ua},
		},
		{
			name: "ready",
			call: func(ctx context.Context, c *client.Client) (any, error) { return nil, c.Ready(ctx) },
			resp: `{"status":"ready"}`,
			req:  seen{Method: "GET", Path: "/readyz", UserAgent: ua},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newRecorder(t, canned{status: http.StatusOK, body: tt.resp})
			got, err := tt.call(t.Context(), newClient(t, srv.URL))
			if err != nil {
				t.Fatalf("error: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]seen{tt.req}, srv.requests()); diff != "" {
				t.Errorf("request (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBasePathAndUserAgent(t *testing.T) {
	srv := newRecorder(t, canned{status: http.StatusOK, body: `{"verdict":"drop","reason":"group"}`})
	c := newClient(t, srv.URL+"/pairgate/", client.WithUserAgent("gw/1.0"))
	if _, err := c.Admit(t.Context(), api.AdmitRequest{Channel: "telegram", Sender: "1", Chat: api.ChatGroup}); err != nil {
		t.Fatal(err)
	}
	want := []seen{{Method: "POST", Path: "/pairgate/v1/admit", Auth: "Bearer " + testToken, ContentType: "application/json",
		UserAgent: "gw/1.0", Body: `{"channel":"telegram","sender":"1","chat":"group"}`}}
	if diff := cmp.Diff(want, srv.requests()); diff != "" {
		t.Errorf("request (-want +got):\n%s", diff)
	}
}

func TestNoTokenSendsNoHeader(t *testing.T) {
	srv := newRecorder(t, canned{status: http.StatusUnauthorized,
		body: `{"error":{"code":"unauthorized","message":"missing bearer token"}}`})
	c, err := client.New(srv.URL, "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Pending(t.Context(), "", "")
	if !client.IsUnauthorized(err) {
		t.Errorf("err = %v, want unauthorized", err)
	}
	if got := srv.requests()[0].Auth; got != "" {
		t.Errorf("Authorization = %q, want none", got)
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name string
		resp canned
		want *client.APIError
		str  string // Error()
	}{
		{
			name: "locked out with Retry-After",
			resp: canned{status: 429, header: map[string]string{"Retry-After": "3600"},
				body: `{"error":{"code":"locked_out","message":"approvals on telegram/default are locked until 13:00 after 5 wrong codes"}}`},
			want: &client.APIError{Status: 429, Code: "locked_out", RetryAfter: time.Hour,
				Message: "approvals on telegram/default are locked until 13:00 after 5 wrong codes"},
			str: "pairgate: locked_out (429): approvals on telegram/default are locked until 13:00 after 5 wrong codes",
		},
		{
			name: "not found",
			resp: canned{status: 404, body: `{"error":{"code":"not_found","message":"no pending request has that code"}}`},
			want: &client.APIError{Status: 404, Code: "not_found", Message: "no pending request has that code"},
			str:  "pairgate: not_found (404): no pending request has that code",
		},
		{
			name: "forbidden",
			resp: canned{status: 403, body: `{"error":{"code":"forbidden","message":"a gateway token may only call /v1/admit"}}`},
			want: &client.APIError{Status: 403, Code: "forbidden", Message: "a gateway token may only call /v1/admit"},
		},
		{
			name: "invalid input",
			resp: canned{status: 400, body: `{"error":{"code":"invalid_input","message":"telegram sender \"bob\": want a numeric id"}}` + "\n"},
			want: &client.APIError{Status: 400, Code: "invalid_input", Message: `telegram sender "bob": want a numeric id`},
		},
		{
			name: "unavailable",
			resp: canned{status: 503, body: `{"error":{"code":"unavailable","message":"the store does not answer"}}`},
			want: &client.APIError{Status: 503, Code: "unavailable", Message: "the store does not answer"},
		},
		{
			name: "proxy page, not JSON",
			resp: canned{status: 502, header: map[string]string{"Content-Type": "text/html"},
				body: "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>nginx</body>\r\n</html>\r\n"},
			want: &client.APIError{Status: 502,
				Message: "<html> <head><title>502 Bad Gateway</title></head> <body>nginx</body> </html>"},
			str: "pairgate: HTTP 502: <html> <head><title>502 Bad Gateway</title></head> <body>nginx</body> </html>",
		},
		{
			name: "proxy 404 is not not_found",
			resp: canned{status: 404, header: map[string]string{"Content-Type": "text/plain"}, body: "404 page not found\n"},
			want: &client.APIError{Status: 404, Message: "404 page not found"},
		},
		{
			name: "empty body",
			resp: canned{status: 500},
			want: &client.APIError{Status: 500, Message: "Internal Server Error"},
			str:  "pairgate: HTTP 500: Internal Server Error",
		},
		{
			name: "JSON without the error object",
			resp: canned{status: 400, body: `{"message":"nope"}`},
			want: &client.APIError{Status: 400, Message: `{"message":"nope"}`},
		},
		{
			name: "terminal escapes and bidi overrides are removed",
			resp: canned{status: 400, body: `{"error":{"code":"bad_request","message":"a\u001b[2Jb\u202ec\td"}}`},
			want: &client.APIError{Status: 400, Code: "bad_request", Message: "a[2Jbc d"},
		},
		{
			name: "long page is cut",
			resp: canned{status: 500, header: map[string]string{"Content-Type": "text/plain"}, body: strings.Repeat("é", 3<<20)},
			want: &client.APIError{Status: 500, Message: strings.Repeat("é", 256)},
		},
		{
			name: "garbage Retry-After is ignored",
			resp: canned{status: 429, header: map[string]string{"Retry-After": "soon"},
				body: `{"error":{"code":"locked_out","message":"locked"}}`},
			want: &client.APIError{Status: 429, Code: "locked_out", Message: "locked"},
		},
		{
			name: "Retry-After date in the past is zero",
			resp: canned{status: 429, header: map[string]string{"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"},
				body: `{"error":{"code":"locked_out","message":"locked"}}`},
			want: &client.APIError{Status: 429, Code: "locked_out", Message: "locked"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newRecorder(t, tt.resp)
			_, err := newClient(t, srv.URL).Approve(t.Context(), api.ApproveRequest{Channel: "telegram", Code: "ABCD2345"})
			got, ok := errors.AsType[*client.APIError](err)
			if !ok {
				t.Fatalf("error %v (%T) is not a *APIError", err, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("APIError (-want +got):\n%s", diff)
			}
			if tt.str != "" && err.Error() != tt.str {
				t.Errorf("Error() = %q, want %q", err.Error(), tt.str)
			}
			checks := map[string]struct{ got, want bool }{
				"IsNotFound":     {client.IsNotFound(err), tt.want.Code == api.CodeNotFound},
				"IsLockedOut":    {client.IsLockedOut(err), tt.want.Code == api.CodeLockedOut},
				"IsUnauthorized": {client.IsUnauthorized(err), tt.want.Code == api.CodeUnauthorized},
				"IsForbidden":    {client.IsForbidden(err), tt.want.Code == api.CodeForbidden},
				"IsUnavailable":  {client.IsUnavailable(err), tt.want.Code == api.CodeUnavailable},
			}
			for name, c := range checks {
				if c.got != c.want {
					t.Errorf("%s = %v, want %v", name, c.got, c.want)
				}
			}
		})
	}
}

func TestRetryAfterDate(t *testing.T) {
	when := time.Now().Add(2 * time.Hour).UTC().Format(http.TimeFormat)
	srv := newRecorder(t, canned{status: 429, header: map[string]string{"Retry-After": when},
		body: `{"error":{"code":"locked_out","message":"locked"}}`})
	_, err := newClient(t, srv.URL).Approve(t.Context(), api.ApproveRequest{Channel: "telegram", Code: "ABCD2345"})
	e, ok := errors.AsType[*client.APIError](err)
	if !ok {
		t.Fatalf("error %v is not a *APIError", err)
	}
	if e.RetryAfter < time.Hour+58*time.Minute || e.RetryAfter > 2*time.Hour {
		t.Errorf("RetryAfter = %v, want about 2h", e.RetryAfter)
	}
}

func TestErrorWrapping(t *testing.T) {
	// A caller that wraps the error still finds the code.
	err := fmt.Errorf("approving: %w", &client.APIError{Status: 404, Code: api.CodeNotFound, Message: "x"})
	if !client.IsNotFound(err) || client.IsLockedOut(err) || !client.HasCode(err, "not_found") || client.HasCode(err, "") {
		t.Errorf("helpers do not see through wrapping: %v", err)
	}
	if client.IsNotFound(errors.New("not_found")) || client.IsNotFound(nil) {
		t.Error("IsNotFound matched an error that is not an APIError")
	}
}

func TestReadyUnavailable(t *testing.T) {
	srv := newRecorder(t, canned{status: 503, body: `{"status":"unavailable"}`})
	err := newClient(t, srv.URL).Ready(t.Context())
	want := &client.APIError{Status: 503, Code: api.CodeUnavailable, Message: "not ready"}
	got, _ := errors.AsType[*client.APIError](err)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("APIError (-want +got):\n%s", diff)
	}
	if !client.IsUnavailable(err) {
		t.Errorf("IsUnavailable(%v) = false", err)
	}
}

// A 200 that is not what the API sends is an error, not a success: a
// misrouted base URL must not look healthy, and Admit must not return a
// decision without a verdict.
func TestUnexpectedSuccessBodies(t *testing.T) {
	tests := []struct {
		name, body string
		call       func(context.Context, *client.Client) error
		wantErr    string
	}{
		{"healthz from another server", "<html>welcome</html>",
			func(ctx context.Context, c *client.Client) error { return c.Healthz(ctx) }, "decoding response"},
		{"healthz other status", `{"status":"starting"}`,
			func(ctx context.Context, c *client.Client) error { return c.Healthz(ctx) }, `status "starting", want "ok"`},
		{"ready says ok", `{"status":"ok"}`,
			func(ctx context.Context, c *client.Client) error { return c.Ready(ctx) }, `status "ok", want "ready"`},
		{"admit without verdict", `{}`,
			func(ctx context.Context, c *client.Client) error {
				_, err := c.Admit(ctx, api.AdmitRequest{Channel: "telegram", Sender: "1"})
				return err
			}, "no verdict"},
		{"admit empty body", ``,
			func(ctx context.Context, c *client.Client) error {
				_, err := c.Admit(ctx, api.AdmitRequest{Channel: "telegram", Sender: "1"})
				return err
			}, "decoding response"},
		{"admit truncated", `{"verdict":"admit"`,
			func(ctx context.Context, c *client.Client) error {
				_, err := c.Admit(ctx, api.AdmitRequest{Channel: "telegram", Sender: "1"})
				return err
			}, "decoding response"},
		{"admit too large", `{"verdict":"admit","reply":"` + strings.Repeat("x", client.MaxResponseBytes) + `"}`,
			func(ctx context.Context, c *client.Client) error {
				_, err := c.Admit(ctx, api.AdmitRequest{Channel: "telegram", Sender: "1"})
				return err
			}, "response larger than 1048576 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newRecorder(t, canned{status: http.StatusOK, body: tt.body})
			err := tt.call(t.Context(), newClient(t, srv.URL))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want one containing %q", err, tt.wantErr)
			}
			if _, ok := errors.AsType[*client.APIError](err); ok {
				t.Errorf("err = %v is a *APIError; the server answered 200", err)
			}
		})
	}
}

func TestListLimit(t *testing.T) {
	body := `{"allowed":[` + strings.Repeat(allowedJSON+",", 20) + allowedJSON + `]}`
	srv := newRecorder(t, canned{status: http.StatusOK, body: body})
	if got, err := newClient(t, srv.URL).Allowed(t.Context(), "", "", false); err != nil || len(got) != 21 {
		t.Fatalf("default limit: %d entries, err %v", len(got), err)
	}
	_, err := newClient(t, srv.URL, client.WithMaxListBytes(1000)).Allowed(t.Context(), "", "", false)
	if err == nil || !strings.Contains(err.Error(), "response larger than 1000 bytes") {
		t.Errorf("err = %v, want too large", err)
	}
}

func TestApproveRejectNeedOneOfCodeAndID(t *testing.T) {
	srv := newRecorder(t, canned{status: http.StatusOK, body: `{}`})
	c := newClient(t, srv.URL)
	ctx := t.Context()
	errs := []error{}
	_, err := c.Approve(ctx, api.ApproveRequest{Channel: "telegram"})
	errs = append(errs, err)
	_, err = c.Approve(ctx, api.ApproveRequest{Channel: "telegram", Code: "ABCD2345", RequestID: "req_x"})
	errs = append(errs, err)
	_, err = c.Reject(ctx, api.RejectRequest{Channel: "telegram"})
	errs = append(errs, err)
	_, err = c.Reject(ctx, api.RejectRequest{Channel: "telegram", Code: "ABCD2345", RequestID: "req_x"})
	errs = append(errs, err)
	for i, err := range errs {
		if err == nil || !strings.Contains(err.Error(), "set Code or RequestID") {
			t.Errorf("call %d: err = %v, want a complaint about Code and RequestID", i, err)
		}
	}
	if n := len(srv.requests()); n != 0 {
		t.Errorf("%d requests sent, want none", n)
	}
}

// blockingServer answers nothing until the request's context ends.
func blockingServer(t *testing.T) (*httptest.Server, <-chan struct{}) {
	t.Helper()
	arrived := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The server notices a closed connection, and cancels the
		// request's context, only once the body has been read.
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case arrived <- struct{}{}:
		default:
		}
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	return srv, arrived
}

func TestContextCancel(t *testing.T) {
	srv, arrived := blockingServer(t)
	c := newClient(t, srv.URL)
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		<-arrived
		cancel()
	}()
	_, err := c.Admit(ctx, api.AdmitRequest{Channel: "telegram", Sender: "1"})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if _, ok := errors.AsType[*client.APIError](err); ok {
		t.Errorf("err = %v is a *APIError", err)
	}
}

func TestContextDeadline(t *testing.T) {
	srv, _ := blockingServer(t)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	err := newClient(t, srv.URL).Healthz(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want context.DeadlineExceeded", err)
	}
}

func TestAlreadyCancelledSendsNothing(t *testing.T) {
	srv := newRecorder(t, canned{status: http.StatusOK, body: `{"verdict":"admit","reason":"allowed"}`})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := newClient(t, srv.URL).Admit(ctx, api.AdmitRequest{Channel: "telegram", Sender: "1"})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if n := len(srv.requests()); n != 0 {
		t.Errorf("%d requests sent, want none", n)
	}
}

// The default client does not follow redirects: the token and the request go
// only to the URL given to New.
func TestNoRedirect(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhere.Add(1) }))
	t.Cleanup(other.Close)
	srv := newRecorder(t, canned{status: http.StatusTemporaryRedirect,
		header: map[string]string{"Location": other.URL + "/v1/admit", "Content-Type": "text/plain"}})
	_, err := newClient(t, srv.URL).Admit(t.Context(), api.AdmitRequest{Channel: "telegram", Sender: "1"})
	want := &client.APIError{Status: http.StatusTemporaryRedirect, Message: "Temporary Redirect"}
	got, _ := errors.AsType[*client.APIError](err)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("APIError (-want +got):\n%s", diff)
	}
	if n := elsewhere.Load(); n != 0 {
		t.Errorf("redirect followed: the other server got %d requests", n)
	}
}

// Bodies are drained and closed, error bodies too, so one connection serves
// every call.
func TestKeepAlive(t *testing.T) {
	answers := []canned{
		{status: 200, body: `{"verdict":"admit","reason":"allowed"}`},
		{status: 404, body: `{"error":{"code":"not_found","message":"no such request"}}`},
		{status: 502, header: map[string]string{"Content-Type": "text/html"}, body: strings.Repeat("<p>bad gateway</p>", 2000)},
		{status: 200, body: `{"pending":[` + pendingJSON + `]}`},
		{status: 429, header: map[string]string{"Retry-After": "60"}, body: `{"error":{"code":"locked_out","message":"locked"}}`},
		{status: 200, body: `{"status":"ok"}`},
	}
	var i atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := answers[int(i.Add(1)-1)%len(answers)]
		for k, v := range a.header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(a.status)
		_, _ = io.WriteString(w, a.body)
	}))
	var conns atomic.Int32
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	c := newClient(t, srv.URL, client.WithHTTPClient(srv.Client()))
	ctx := t.Context()
	for range 2 {
		_, _ = c.Admit(ctx, api.AdmitRequest{Channel: "telegram", Sender: "1"})
		_, _ = c.Approve(ctx, api.ApproveRequest{Channel: "telegram", Code: "ABCD2345"})
		_, _ = c.Revoke(ctx, "telegram", "", "1")
		_, _ = c.Pending(ctx, "", "")
		_, _ = c.Approve(ctx, api.ApproveRequest{Channel: "telegram", Code: "ABCD2345"})
		_ = c.Healthz(ctx)
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections opened for 12 sequential calls, want 1", n)
	}
}

func TestConcurrentUse(t *testing.T) {
	srv := newRecorder(t, canned{status: http.StatusOK, body: `{"verdict":"admit","reason":"allowed"}`})
	c := newClient(t, srv.URL)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				if _, err := c.Admit(t.Context(), api.AdmitRequest{Channel: "telegram", Sender: "1"}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := len(srv.requests()); n != 160 {
		t.Errorf("%d requests, want 160", n)
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		url, token string
		wantErr    string // "" means valid
	}{
		{"http://127.0.0.1:7420", testToken, ""},
		{"https://pairgate.example.com/prefix/", testToken, ""},
		{"http://[::1]:7420", "", ""},
		{"127.0.0.1:7420", testToken, "want an http:// or https:// URL"},
		{"ftp://example.com", testToken, "want an http:// or https:// URL"},
		{"/v1", testToken, "want an http:// or https:// URL"},
		{"http://", testToken, "no host"},
		{"http://:7420", testToken, "no host"},
		{"http://user:pw@127.0.0.1:7420", testToken, "credentials in the URL"},
		{"http://user:secretpw@127.0.0.1:bad", testToken, "invalid port"},
		{"ftp://user:secretpw@127.0.0.1", testToken, "want an http://"},
		{"http://127.0.0.1:7420?x=1", testToken, "no query or fragment"},
		{"http://127.0.0.1:7420/#frag", testToken, "no query or fragment"},
		{"http://127.0.0.1:port", testToken, "invalid port"},
		{"http://127.0.0.1:7420", testToken + "\n", "not printable ASCII"},
		{"http://127.0.0.1:7420", "a b", "not printable ASCII"},
		{"http://127.0.0.1:7420", "tök", "not printable ASCII"},
	}
	for _, tt := range tests {
		_, err := client.New(tt.url, tt.token)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("New(%q): %v", tt.url, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("New(%q, %q) = %v, want an error containing %q", tt.url, tt.token, err, tt.wantErr)
		case err != nil && tt.token != "" && strings.Contains(err.Error(), strings.TrimSpace(tt.token)):
			t.Errorf("New: the error quotes the token: %v", err)
		case err != nil && strings.Contains(err.Error(), "secretpw"):
			t.Errorf("New: the error quotes the password: %v", err)
		}
	}
}

func TestTransportErrorIsNotAPIError(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there now
	_, err := newClient(t, url).Admit(t.Context(), api.AdmitRequest{Channel: "telegram", Sender: "1"})
	if err == nil {
		t.Fatal("no error from a closed server")
	}
	if _, ok := errors.AsType[*client.APIError](err); ok {
		t.Errorf("err = %v is a *APIError", err)
	}
	if strings.Contains(err.Error(), testToken) {
		t.Errorf("the error quotes the token: %v", err)
	}
}
