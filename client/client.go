// Package client is a Go client for the pairgate HTTP API.
//
// A Client talks to one pairgate daemon (`pairgate serve`) with one API
// token. Every /v1 method needs a token: the admin token may call them all,
// a gateway token only Admit. Healthz and Ready send no token.
//
// Requests and answers are the types of package api (api.AdmitRequest,
// api.Decision, api.PendingRequest, ...): the ones the daemon encodes and
// the embedded gate returns, so a gateway that switches from embedding the
// gate to calling the daemon keeps its types. The client depends on nothing
// else of pairgate's (not the store, the config or its YAML library).
//
// An error the daemon answers with is returned as a *APIError carrying the
// HTTP status, the API's error code (api.CodeNotFound, api.CodeLockedOut,
// ...) and its message; test for one with IsNotFound, IsLockedOut,
// IsUnauthorized, IsForbidden, IsUnavailable or HasCode, or get the details
// with errors.As. Anything else (a refused connection, a cancelled context, a response that
// is not what the API sends) is an ordinary wrapped error, so
// errors.Is(err, context.Canceled) and the like work.
//
// A gateway must fail closed: when Admit returns an error, drop the message.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Limits on what the client reads. Anything bigger is refused rather than
// buffered: a misbehaving server or a proxy must not exhaust the caller's
// memory.
const (
	// MaxResponseBytes bounds a single-object response (a decision, an
	// approval, an error).
	MaxResponseBytes = 1 << 20
	// DefaultMaxListBytes bounds a list response (pending requests, the
	// allowlist, the audit log) unless WithMaxListBytes says otherwise. The
	// API has no paging, so an allowlist of a million senders is one
	// response of a couple of hundred megabytes.
	DefaultMaxListBytes = 64 << 20
	// drainBytes is how much of an unread body the client discards so the
	// connection can be reused; a longer body costs the connection instead.
	drainBytes = 64 << 10
)

// DefaultUserAgent is sent unless WithUserAgent says otherwise.
const DefaultUserAgent = "pairgate-client"

// DefaultTimeout bounds each call of a Client built without WithHTTPClient,
// on top of whatever deadline the caller's context has.
const DefaultTimeout = 30 * time.Second

// Client calls one pairgate daemon. It is safe for concurrent use; reuse one
// Client so its connections are kept alive.
type Client struct {
	base      *url.URL // scheme, host and path prefix; no trailing slash
	auth      string   // "Bearer <token>", or "" for no token
	hc        *http.Client
	userAgent string
	maxList   int64
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient makes the Client send its requests through hc, for a
// transport of your own (TLS settings, connection limits, a test server's
// client). The default is an *http.Client with DefaultTimeout that uses
// http.DefaultTransport and does not follow redirects, so the token and the
// request only ever go to the URL given to New. With hc, its redirect policy
// applies; the Go standard library drops the Authorization header on a
// redirect to another host.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		if hc != nil {
			c.hc = hc
		}
	}
}

// WithUserAgent sets the User-Agent header of every request.
func WithUserAgent(ua string) Option {
	return func(c *Client) { c.userAgent = ua }
}

// WithMaxListBytes bounds the size of list responses (Pending, Allowed,
// Audit); the default is DefaultMaxListBytes. n <= 0 keeps the default.
func WithMaxListBytes(n int64) Option {
	return func(c *Client) {
		if n > 0 {
			c.maxList = n
		}
	}
}

// New returns a Client for the daemon at baseURL, such as
// "http://127.0.0.1:7420" (the default listen address) or
// "https://pairgate.example.com/prefix" behind a reverse proxy. baseURL must
// be an absolute http or https URL without credentials, query or fragment.
//
// token is an API token sent as "Authorization: Bearer <token>" on every /v1
// call. It may be empty for a Client that only calls Healthz and Ready; /v1
// calls then fail with an unauthorized *APIError. Over plain http the token
// travels in clear text: use http only on loopback or a trusted network.
func New(baseURL, token string, opts ...Option) (*Client, error) {
	base, err := parseBase(baseURL)
	if err != nil {
		return nil, err
	}
	if err := checkToken(token); err != nil {
		return nil, err
	}
	c := &Client{
		base:      base,
		userAgent: DefaultUserAgent,
		maxList:   DefaultMaxListBytes,
		hc: &http.Client{
			Timeout: DefaultTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
	}
	if token != "" {
		c.auth = "Bearer " + token
	}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

func parseBase(raw string) (*url.URL, error) {
	if !strings.Contains(raw, "://") {
		return nil, fmt.Errorf("pairgate: base URL %q: want an http:// or https:// URL such as http://127.0.0.1:7420", raw)
	}
	u, err := url.Parse(raw)
	if err != nil {
		// Not the *url.Error itself: it quotes the input, which may hold a
		// password.
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		return nil, fmt.Errorf("pairgate: base URL: %w", err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("pairgate: base URL %q: want an http:// or https:// URL such as http://127.0.0.1:7420", u.Redacted())
	case u.Opaque != "" || u.Host == "" || u.Hostname() == "":
		return nil, fmt.Errorf("pairgate: base URL %q: no host", u.Redacted())
	case u.User != nil:
		// Credentials in a URL end up in logs and error messages; the API
		// takes a bearer token instead.
		return nil, errors.New("pairgate: base URL: credentials in the URL are not supported; pass the token to New")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return nil, fmt.Errorf("pairgate: base URL %q: no query or fragment allowed", u.Redacted())
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

// checkToken refuses what cannot be a bearer token. The error never quotes
// the token.
func checkToken(token string) error {
	for i := 0; i < len(token); i++ {
		if c := token[i]; c <= ' ' || c > '~' {
			return fmt.Errorf("pairgate: token: byte %d is not printable ASCII (spaces and line breaks included); check for a trailing newline", i)
		}
	}
	return nil
}

// call is one API request.
type call struct {
	method string
	path   string     // below the base URL, starting with "/"
	query  url.Values // nil for none
	in     any        // request body, JSON-encoded; nil for none
	out    any        // decoded from a 2xx body; nil to ignore it
	limit  int64      // most bytes of a 2xx body to read
	noAuth bool       // health checks carry no token
}

// do sends c and decodes the answer. A non-2xx answer is a *APIError.
func (c *Client) do(ctx context.Context, k call) error {
	u := c.base.JoinPath(k.path)
	if k.query != nil {
		u.RawQuery = k.query.Encode()
	}
	var body io.Reader
	if k.in != nil {
		b, err := json.Marshal(k.in)
		if err != nil {
			return fmt.Errorf("pairgate: %s %s: encoding request: %w", k.method, k.path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, k.method, u.String(), body)
	if err != nil {
		return fmt.Errorf("pairgate: %s %s: %w", k.method, k.path, err)
	}
	if k.in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.userAgent != "" {
		req.Header.Set("User-Agent", c.userAgent)
	}
	if c.auth != "" && !k.noAuth {
		req.Header.Set("Authorization", c.auth)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		// *url.Error names the method and URL; the URL holds no secret.
		return fmt.Errorf("pairgate: %w", err)
	}
	defer func() {
		// Drain a little so the connection goes back to the pool, then close.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainBytes))
		_ = resp.Body.Close()
	}()

	limit := k.limit
	ok := resp.StatusCode >= 200 && resp.StatusCode < 300
	if !ok || limit <= 0 {
		limit = MaxResponseBytes
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return fmt.Errorf("pairgate: %s %s: reading response: %w", k.method, k.path, err)
	}
	if !ok {
		if int64(len(b)) > limit {
			b = b[:limit] // an error page this long is only quoted
		}
		return newAPIError(resp, b)
	}
	if int64(len(b)) > limit {
		return fmt.Errorf("pairgate: %s %s: response larger than %d bytes", k.method, k.path, limit)
	}
	if k.out == nil {
		return nil
	}
	// Unknown fields are accepted: a newer daemon may add some.
	if err := json.Unmarshal(b, k.out); err != nil {
		return fmt.Errorf("pairgate: %s %s: decoding response (status %d): %w", k.method, k.path, resp.StatusCode, err)
	}
	return nil
}
