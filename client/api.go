package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/pairgate/pairgate/api"
)

// Admit runs the gate for one inbound message. Any error means the daemon
// did not decide: drop the message (fail closed).
func (c *Client) Admit(ctx context.Context, r api.AdmitRequest) (api.Decision, error) {
	var d api.Decision
	err := c.do(ctx, call{method: http.MethodPost, path: "/v1/admit", in: r, out: &d})
	if err == nil && d.Verdict == "" {
		err = errors.New("pairgate: POST /v1/admit: the response has no verdict")
	}
	if err != nil {
		return api.Decision{}, err
	}
	return d, nil
}

// Pending lists the live pending requests, oldest first. An empty channel
// lists every channel; an account needs a channel.
func (c *Client) Pending(ctx context.Context, channel, account string) ([]api.PendingRequest, error) {
	var out api.PendingList
	err := c.do(ctx, call{method: http.MethodGet, path: "/v1/pairing/requests", query: scopeQuery(channel, account),
		out: &out, limit: c.maxList})
	return out.Pending, err
}

// Approve approves a pending request: its sender joins the allowlist. A
// wrong code is a not_found error and counts towards the lockout; once
// locked, approvals on the scope fail with locked_out until RetryAfter has
// passed.
func (c *Client) Approve(ctx context.Context, r api.ApproveRequest) (api.Approval, error) {
	if err := oneOf("approve", r.Code, r.RequestID); err != nil {
		return api.Approval{}, err
	}
	var a api.Approval
	if err := c.do(ctx, call{method: http.MethodPost, path: "/v1/pairing/approve", in: r, out: &a}); err != nil {
		return api.Approval{}, err
	}
	return a, nil
}

// Reject deletes a pending request and declines its sender for the decline
// window; it returns the request that was rejected.
func (c *Client) Reject(ctx context.Context, r api.RejectRequest) (api.PendingRequest, error) {
	if err := oneOf("reject", r.Code, r.RequestID); err != nil {
		return api.PendingRequest{}, err
	}
	var out api.RejectResponse
	if err := c.do(ctx, call{method: http.MethodPost, path: "/v1/pairing/reject", in: r, out: &out}); err != nil {
		return api.PendingRequest{}, err
	}
	return out.Rejected, nil
}

// Allowed lists the allowlist, revoked entries too when includeRevoked. An
// empty channel lists every channel; an account needs a channel.
func (c *Client) Allowed(ctx context.Context, channel, account string, includeRevoked bool) ([]api.AllowedSender, error) {
	q := scopeQuery(channel, account)
	if includeRevoked {
		q.Set("include_revoked", "true")
	}
	var out api.AllowedList
	err := c.do(ctx, call{method: http.MethodGet, path: "/v1/pairing/allowed", query: q, out: &out, limit: c.maxList})
	return out.Allowed, err
}

// Allow puts sender on the allowlist without a pairing request. It is
// idempotent (Changed is false when the sender was already allowed) and
// reactivates a revoked entry. The API answers with a list, one entry per
// sender; today that is always one.
func (c *Client) Allow(ctx context.Context, channel, account, sender string) ([]api.AllowResult, error) {
	var out api.AllowResponse
	err := c.do(ctx, call{method: http.MethodPost, path: "/v1/pairing/allow",
		in: api.SenderRequest{Channel: channel, Account: account, Sender: sender}, out: &out})
	if err != nil {
		return nil, err
	}
	return out.Allowed, nil
}

// Revoke takes sender off the allowlist (a soft delete) and returns the
// revoked entry. The daemon stops admitting the sender before it answers.
func (c *Client) Revoke(ctx context.Context, channel, account, sender string) (api.AllowedSender, error) {
	var out api.RevokeResponse
	err := c.do(ctx, call{method: http.MethodPost, path: "/v1/pairing/revoke",
		in: api.SenderRequest{Channel: channel, Account: account, Sender: sender}, out: &out})
	if err != nil {
		return api.AllowedSender{}, err
	}
	return out.Revoked, nil
}

// Audit returns a page of the audit trail, newest first, as q selects; for
// the next, older page pass the answer's NextBefore as q.Before (it is 0
// after the last page).
func (c *Client) Audit(ctx context.Context, q api.AuditQuery) (api.AuditLog, error) {
	v := url.Values{}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Before > 0 {
		v.Set("before", strconv.FormatInt(q.Before, 10))
	}
	for key, val := range map[string]string{"kind": q.Kind, "channel": q.Channel, "actor": q.Actor} {
		if val != "" {
			v.Set(key, val)
		}
	}
	var out api.AuditLog
	err := c.do(ctx, call{method: http.MethodGet, path: "/v1/audit", query: v, out: &out, limit: c.maxList})
	return out, err
}

// Healthz checks that the daemon answers (GET /healthz, {"status":"ok"}).
func (c *Client) Healthz(ctx context.Context) error {
	return c.status(ctx, "/healthz", api.StatusOK)
}

// Ready checks that the daemon can serve: its store answers (GET /readyz,
// {"status":"ready"}). When it is not, the error is a *APIError with status
// 503 and code unavailable, so IsUnavailable(err) is true.
func (c *Client) Ready(ctx context.Context) error {
	return c.status(ctx, "/readyz", api.StatusReady)
}

// status does a health check: GET path must answer {"status": want}. The
// daemon answers /readyz with {"status":"unavailable"} and 503 when not
// ready; that becomes an unavailable *APIError.
func (c *Client) status(ctx context.Context, path, want string) error {
	var out api.Health
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
