// Package errcode names the classes of error pairgate reports to programs:
// the "code" of {"error":{"code","message"}}, which the HTTP API answers
// with and the CLI prints on stderr with --json. A class that means the same
// thing in both has one name here; a program may branch on these, never on
// messages.
//
// The package is a leaf (no imports) so that the API client can share it
// without pulling in the server's dependencies.
package errcode

// Codes shared by the HTTP API and the CLI.
const (
	InvalidInput  = "invalid_input"  // an unknown channel, an account, sender, code or device id that cannot be right
	NotFound      = "not_found"      // no live request matches; sender not allowed; no such device or token
	Ambiguous     = "ambiguous"      // a device id prefix matches more than one device
	LockedOut     = "locked_out"     // approvals locked after wrong codes
	NotConfigured = "not_configured" // a setup code was asked for but no public URL is set
	Unavailable   = "unavailable"    // the store cannot be read or written

	AlreadyApproved = "already_approved"  // rejecting a request that was approved already
	AllowedByConfig = "allowed_by_config" // revoking a sender that allow_from in the config admits
)

// Codes of the HTTP API only.
const (
	BadRequest       = "bad_request"        // the body or query cannot be read
	Unauthorized     = "unauthorized"       // no token, or not a valid one
	Forbidden        = "forbidden"          // the token's scope does not allow the call
	MethodNotAllowed = "method_not_allowed" // wrong method
	TooLarge         = "too_large"          // body over 64 KiB
	Internal         = "internal"           // anything unexpected (the log has the detail)
)

// Codes of the CLI only.
const (
	Usage         = "usage"          // the command line is wrong: unknown command or flag, a missing or extra argument, a flag value out of range (exit 2)
	InvalidConfig = "invalid_config" // pairgate.yaml cannot be used (exit 2)
	Failed        = "failed"         // the operation failed for another reason (exit 1)
)

// Body is the JSON of an error: {"error":{"code","message"}}.
type Body struct {
	Error Detail `json:"error"`
}

// Detail is the inside of Body.
type Detail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}
