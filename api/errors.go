package api

// Error codes: the "code" of an error body. The HTTP API answers with them
// and the CLI prints them on stderr with --json; a class of error that means
// the same thing in both has one name here. Programs may branch on codes,
// never on messages.
const (
	CodeInvalidInput    = "invalid_input"     // 400: an unknown channel; an account, sender, code or device id that cannot be right; a missing field
	CodeNotFound        = "not_found"         // 404: no live request matches; sender not allowed; no such device, token or route
	CodeAmbiguous       = "ambiguous"         // 409: a device id prefix matches more than one device
	CodeNotConfigured   = "not_configured"    // 409: a setup code was asked for but no public URL is set
	CodeAlreadyApproved = "already_approved"  // 409: rejecting a request that was approved already
	CodeAllowedByConfig = "allowed_by_config" // 409: revoking a sender that allow_from in the config admits
	CodeLockedOut       = "locked_out"        // 429: approvals locked after wrong codes; Retry-After says for how long
	CodeUnavailable     = "unavailable"       // 503: the store cannot be read or written
)

// Codes of the HTTP API only.
const (
	CodeBadRequest       = "bad_request"        // 400: the body or query cannot be read
	CodeUnauthorized     = "unauthorized"       // 401: no token, or not a valid one
	CodeForbidden        = "forbidden"          // 403: the token's scope does not allow the call
	CodeMethodNotAllowed = "method_not_allowed" // 405: wrong method
	CodeTooLarge         = "too_large"          // 413: body over 64 KiB
	CodeInternal         = "internal"           // 500: anything unexpected (the daemon's log has the detail)
)

// Codes of the CLI only.
const (
	CodeUsage         = "usage"          // the command line is wrong: unknown command or flag, a missing or extra argument, a flag value out of range (exit 2)
	CodeInvalidConfig = "invalid_config" // pairgate.yaml cannot be used (exit 2)
	CodeFailed        = "failed"         // the operation failed for another reason (exit 1)
)

// ErrorBody is the JSON of an error: {"error":{"code","message"}}.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the inside of ErrorBody. Message is for people; it never
// holds a code or a token.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}
