package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/pairgate/pairgate/api"
	"github.com/pairgate/pairgate/pairing"
	"github.com/pairgate/pairgate/store"
)

// AdmitRequest is one inbound message for the gate (the body of
// POST /v1/admit).
type AdmitRequest struct {
	Channel    string       `json:"channel"`
	Account    string       `json:"account,omitempty"` // "" means the default account
	Sender     string       `json:"sender"`            // raw; the daemon normalises it
	SenderName string       `json:"sender_name,omitempty"`
	Chat       pairing.Chat `json:"chat,omitempty"` // "" means pairing.ChatDM
}

// ApproveRequest names the pending request to approve (the body of
// POST /v1/pairing/approve). Exactly one of Code and RequestID is set.
type ApproveRequest struct {
	Channel   string `json:"channel"`
	Account   string `json:"account,omitempty"`
	Code      string `json:"code,omitempty"`       // as the sender was given it; case and one hyphen don't matter
	RequestID string `json:"request_id,omitempty"` // "req_…"
	// Notify asks for the sender to be told they were approved: the
	// Approval's Notify text is set, and the change record says so for a
	// gateway that delivers it.
	Notify bool `json:"notify,omitempty"`
}

// RejectRequest names the pending request to reject (the body of
// POST /v1/pairing/reject). Exactly one of Code and RequestID is set.
type RejectRequest struct {
	Channel   string `json:"channel"`
	Account   string `json:"account,omitempty"`
	Code      string `json:"code,omitempty"`
	RequestID string `json:"request_id,omitempty"`
}

// Change is one record of the audit log, as GET /v1/audit sends it.
type Change struct {
	Seq       int64            `json:"seq"`
	At        time.Time        `json:"at"` // RFC 3339
	Kind      store.ChangeKind `json:"kind"`
	Channel   string           `json:"channel"`
	Account   string           `json:"account"`
	Sender    string           `json:"sender"`     // "" when the change is not about one sender
	RequestID string           `json:"request_id"` // "" when the change is not about one request
	Actor     string           `json:"actor"`      // who: "cli:alice", "token:ops", "gate"
	Source    string           `json:"source"`     // from where: "cli", "api 127.0.0.1:5123"
	Detail    string           `json:"detail"`     // a short note; never a code or a token
}

// senderBody is the body of allow and revoke.
type senderBody struct {
	Channel string `json:"channel"`
	Account string `json:"account,omitempty"`
	Sender  string `json:"sender"`
}

// Admit runs the gate for one inbound message. Any error means the daemon
// did not decide: drop the message (fail closed).
func (c *Client) Admit(ctx context.Context, r AdmitRequest) (pairing.Decision, error) {
	var d pairing.Decision
	err := c.do(ctx, call{method: http.MethodPost, path: "/v1/admit", in: r, out: &d})
	if err == nil && d.Verdict == "" {
		err = errors.New("pairgate: POST /v1/admit: the response has no verdict")
	}
	if err != nil {
		return pairing.Decision{}, err
	}
	return d, nil
}

// Pending lists the live pending requests, oldest first. An empty channel
// lists every channel; an account needs a channel.
func (c *Client) Pending(ctx context.Context, channel, account string) ([]pairing.PendingRequest, error) {
	var out struct {
		Pending []pairing.PendingRequest `json:"pending"`
	}
	err := c.do(ctx, call{method: http.MethodGet, path: "/v1/pairing/requests", query: scopeQuery(channel, account),
		out: &out, limit: c.maxList})
	return out.Pending, err
}

// Approve approves a pending request: its sender joins the allowlist. A
// wrong code is a not_found error and counts towards the lockout; once
// locked, approvals on the scope fail with locked_out until RetryAfter has
// passed.
func (c *Client) Approve(ctx context.Context, r ApproveRequest) (pairing.Approval, error) {
	if err := oneOf("approve", r.Code, r.RequestID); err != nil {
		return pairing.Approval{}, err
	}
	var a pairing.Approval
	if err := c.do(ctx, call{method: http.MethodPost, path: "/v1/pairing/approve", in: r, out: &a}); err != nil {
		return pairing.Approval{}, err
	}
	return a, nil
}

// Reject deletes a pending request and declines its sender for the decline
// window; it returns the request that was rejected.
func (c *Client) Reject(ctx context.Context, r RejectRequest) (pairing.PendingRequest, error) {
	if err := oneOf("reject", r.Code, r.RequestID); err != nil {
		return pairing.PendingRequest{}, err
	}
	var out struct {
		Rejected pairing.PendingRequest `json:"rejected"`
	}
	if err := c.do(ctx, call{method: http.MethodPost, path: "/v1/pairing/reject", in: r, out: &out}); err != nil {
		return pairing.PendingRequest{}, err
	}
	return out.Rejected, nil
}

// Allowed lists the allowlist, revoked entries too when includeRevoked. An
// empty channel lists every channel; an account needs a channel.
func (c *Client) Allowed(ctx context.Context, channel, account string, includeRevoked bool) ([]pairing.AllowedSender, error) {
	q := scopeQuery(channel, account)
	if includeRevoked {
		q.Set("include_revoked", "true")
	}
	var out struct {
		Allowed []pairing.AllowedSender `json:"allowed"`
	}
	err := c.do(ctx, call{method: http.MethodGet, path: "/v1/pairing/allowed", query: q, out: &out, limit: c.maxList})
	return out.Allowed, err
}

// Allow puts sender on the allowlist without a pairing request. It is
// idempotent (Changed is false when the sender was already allowed) and
// reactivates a revoked entry. The API answers with a list, one entry per
// sender; today that is always one.
func (c *Client) Allow(ctx context.Context, channel, account, sender string) ([]pairing.AllowResult, error) {
	var out struct {
		Allowed []pairing.AllowResult `json:"allowed"`
	}
	err := c.do(ctx, call{method: http.MethodPost, path: "/v1/pairing/allow",
		in: senderBody{Channel: channel, Account: account, Sender: sender}, out: &out})
	if err != nil {
		return nil, err
	}
	return out.Allowed, nil
}

// Revoke takes sender off the allowlist (a soft delete) and returns the
// revoked entry. The daemon stops admitting the sender before it answers.
func (c *Client) Revoke(ctx context.Context, channel, account, sender string) (pairing.AllowedSender, error) {
	var out struct {
		Revoked pairing.AllowedSender `json:"revoked"`
	}
	err := c.do(ctx, call{method: http.MethodPost, path: "/v1/pairing/revoke",
		in: senderBody{Channel: channel, Account: account, Sender: sender}, out: &out})
	if err != nil {
		return pairing.AllowedSender{}, err
	}
	return out.Revoked, nil
}

// Audit returns the latest changes, newest first: at most limit of them, or
// the daemon's default number when limit <= 0.
func (c *Client) Audit(ctx context.Context, limit int) ([]Change, error) {
	var q url.Values
	if limit > 0 {
		q = url.Values{"limit": {strconv.Itoa(limit)}}
	}
	var out struct {
		Changes []Change `json:"changes"`
	}
	err := c.do(ctx, call{method: http.MethodGet, path: "/v1/audit", query: q, out: &out, limit: c.maxList})
	return out.Changes, err
}

// Healthz checks that the daemon answers (GET /healthz, {"status":"ok"}).
func (c *Client) Healthz(ctx context.Context) error {
	return c.status(ctx, "/healthz", "ok")
}

// Ready checks that the daemon can serve: its store answers (GET /readyz,
// {"status":"ready"}). When it is not, the error is a *APIError with status
// 503 and code unavailable, so IsUnavailable(err) is true.
func (c *Client) Ready(ctx context.Context) error {
	return c.status(ctx, "/readyz", "ready")
}

// status does a health check: GET path must answer {"status": want}. The
// daemon answers /readyz with {"status":"unavailable"} and 503 when not
// ready; that becomes an unavailable *APIError.
func (c *Client) status(ctx context.Context, path, want string) error {
	var out struct {
		Status string `json:"status"`
	}
	err := c.do(ctx, call{method: http.MethodGet, path: path, out: &out, noAuth: true})
	if e, ok := errors.AsType[*APIError](err); ok && e.Code == "" && e.Status == http.StatusServiceUnavailable {
		// The daemon's own {"status":"unavailable"} says no more than the
		// code does; a proxy's page may say which upstream is down.
		e.Code = api.CodeUnavailable
		if strings.HasPrefix(e.Message, "{") {
			e.Message = "not ready"
		} else {
			e.Message = "not ready: " + e.Message
		}
		return e
	}
	if err != nil {
		return err
	}
	if out.Status != want {
		return fmt.Errorf("pairgate: GET %s: status %q, want %q", path, clean(out.Status, 64), want)
	}
	return nil
}

// scopeQuery is the channel and account filter of the list calls; empty
// values are left out.
func scopeQuery(channel, account string) url.Values {
	q := url.Values{}
	if channel != "" {
		q.Set("channel", channel)
	}
	if account != "" {
		q.Set("account", account)
	}
	return q
}

// oneOf checks the caller named exactly one of a code and a request id; the
// daemon would refuse the request anyway, but this says which mistake it was
// without a round trip.
func oneOf(op, code, requestID string) error {
	switch {
	case code == "" && requestID == "":
		return fmt.Errorf("pairgate: %s: set Code or RequestID", op)
	case code != "" && requestID != "":
		return fmt.Errorf("pairgate: %s: set Code or RequestID, not both", op)
	}
	return nil
}
