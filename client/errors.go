package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/pairgate/pairgate/api"
)

// maxMessageLen bounds how much of a message or an error page an APIError
// keeps.
const maxMessageLen = 512

// APIError is a response with a status outside 2xx.
//
// When the body was pairgate's error object ({"error":{"code","message"}}),
// Code and Message are the daemon's. When it was not (a proxy's error page,
// an empty body, a redirect the client did not follow), Code is empty and
// Message is the start of the body, or the status text when the body is
// empty: a 404 from a proxy in front of the daemon is not a pairing request
// that was not found, so IsNotFound does not match it.
type APIError struct {
	Status  int    // the HTTP status code
	Code    string // one of the api.Code constants, or "" (see above)
	Message string // for people; control characters removed, at most 512 bytes
	// RetryAfter is the Retry-After header of the response (sent with
	// locked_out), zero when there was none.
	RetryAfter time.Duration
}

// Error returns "pairgate: <code> (<status>): <message>", or
// "pairgate: HTTP <status>: <message>" when the response had no code.
func (e *APIError) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("pairgate: HTTP %d: %s", e.Status, e.Message)
	}
	return fmt.Sprintf("pairgate: %s (%d): %s", e.Code, e.Status, e.Message)
}

// HasCode reports whether err is or wraps a *APIError with the given code.
func HasCode(err error, code string) bool {
	e, ok := errors.AsType[*APIError](err)
	return ok && code != "" && e.Code == code
}

// IsNotFound reports whether the daemon answered not_found: no live pending
// request has that code or id, or the sender is not on the allowlist.
func IsNotFound(err error) bool { return HasCode(err, api.CodeNotFound) }

// IsLockedOut reports whether approvals on the scope are locked after too
// many wrong codes; the *APIError's RetryAfter says for how long.
func IsLockedOut(err error) bool { return HasCode(err, api.CodeLockedOut) }

// IsUnauthorized reports whether the token was missing or not valid.
func IsUnauthorized(err error) bool { return HasCode(err, api.CodeUnauthorized) }

// IsForbidden reports whether the token may not make the call (a gateway
// token calling anything but Admit).
func IsForbidden(err error) bool { return HasCode(err, api.CodeForbidden) }

// IsUnavailable reports whether the daemon said its store is unavailable,
// or Ready found it not ready.
func IsUnavailable(err error) bool { return HasCode(err, api.CodeUnavailable) }

// newAPIError builds the error for a non-2xx response whose body (already
// cut to a bounded size) is b.
func newAPIError(resp *http.Response, b []byte) *APIError {
	e := &APIError{Status: resp.StatusCode, RetryAfter: retryAfter(resp.Header.Get("Retry-After"), time.Now())}
	var eb api.ErrorBody
	if json.Unmarshal(b, &eb) == nil && eb.Error.Code != "" {
		e.Code = clean(eb.Error.Code, 64)
		e.Message = clean(eb.Error.Message, maxMessageLen)
	} else {
		e.Message = clean(string(b), maxMessageLen)
	}
	if e.Message == "" {
		e.Message = http.StatusText(resp.StatusCode)
	}
	if e.Message == "" {
		e.Message = "no message"
	}
	return e
}

// retryAfter reads a Retry-After header: delay-seconds or an HTTP date
// (RFC 9110 section 10.2.3). Anything else, or a date in the past, is zero.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		// Cap it so the multiplication cannot overflow (about 292 years).
		if secs <= 0 {
			return 0
		}
		const maxSecs = int64(1<<63-1) / int64(time.Second)
		return time.Duration(min(secs, maxSecs)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// clean makes text from the network safe to print: whitespace runs become
// one space, control and invalid characters are dropped (a hostile page
// could otherwise move the cursor of the terminal showing the error), and
// the result is cut to at most n bytes on a character boundary.
func clean(s string, n int) string {
	var b strings.Builder
	space := false
	for _, r := range s {
		switch {
		case unicode.IsSpace(r):
			space = true
			continue
		case r == utf8.RuneError || unicode.IsControl(r) || !unicode.IsPrint(r):
			continue
		}
		sep := space && b.Len() > 0
		space = false
		if b.Len()+utf8.RuneLen(r)+btoi(sep) > n {
			break
		}
		if sep {
			b.WriteByte(' ')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
