package api

import "time"

// Verdict is the gate's answer for one message.
type Verdict string

// Verdicts.
const (
	Admit     Verdict = "admit"     // hand the message to the agent
	Challenge Verdict = "challenge" // send the Reply (the pairing code) and drop the message
	Drop      Verdict = "drop"      // drop the message; send the Reply if there is one
)

// Reason says why the gate decided as it did (SPEC section 2).
type Reason string

// Reasons, in the order the gate's rules apply.
const (
	ReasonUnknownChannel Reason = "unknown_channel"
	ReasonInvalidAccount Reason = "invalid_account"
	ReasonInvalidSender  Reason = "invalid_sender"
	ReasonDisabled       Reason = "disabled"
	ReasonOpen           Reason = "open"
	ReasonAllowed        Reason = "allowed"
	ReasonGroup          Reason = "group"
	ReasonNotAllowed     Reason = "not_allowed"
	ReasonLockedOut      Reason = "locked_out"
	ReasonDeclined       Reason = "declined"
	ReasonPending        Reason = "pending"
	ReasonMaxPending     Reason = "max_pending"
	ReasonChallenged     Reason = "challenged"
	ReasonUnavailable    Reason = "unavailable"
)

// Chat is the kind of conversation a message came from.
type Chat string

// Chat kinds.
const (
	ChatDM    Chat = "dm"
	ChatGroup Chat = "group"
)

// AdmitRequest is one inbound message for the gate: the body of
// POST /v1/admit.
type AdmitRequest struct {
	Channel    string `json:"channel"`
	Account    string `json:"account,omitempty"` // "" means the default account
	Sender     string `json:"sender"`            // raw; the gate normalises it
	SenderName string `json:"sender_name,omitempty"`
	Chat       Chat   `json:"chat,omitempty"` // "" means ChatDM
	// ReplyBy says who sends the sender what the gate has to say (the
	// code, a reminder): "answer" (the default of POST /v1/admit) puts it
	// in the decision's reply for the caller to send; "outbound" (the
	// default of NATS pairgate.admit) records it as an outbound message,
	// delivered through GET /v1/outbound and NATS, and leaves reply out.
	ReplyBy ReplyBy `json:"reply_by,omitempty"`
}

// ReplyBy is how the gate's reply reaches the sender.
type ReplyBy string

// The ways a reply is delivered.
const (
	ReplyByAnswer   ReplyBy = "answer"
	ReplyByOutbound ReplyBy = "outbound"
)

// Outbound is a message pairgate wants a gateway to deliver: the answer of
// GET /v1/outbound, and the payload of the NATS outbound subjects. A
// gateway that delivered up to Seq asks for after=Seq; Seq is also the
// receiver's idempotency key.
type Outbound struct {
	Seq     int64  `json:"seq"`
	Channel string `json:"channel"`
	Account string `json:"account"`
	To      string `json:"to"`   // a sender id as the channel's adapter writes it
	Kind    string `json:"kind"` // "text" or "image"
	Text    string `json:"text,omitempty"`
	// PNG is an image's bytes (base64 in JSON).
	PNG       []byte `json:"png,omitempty"`
	ParseMode string `json:"parse_mode,omitempty"`
	// Cause says why it is sent: challenge, reminder, max_pending,
	// approved, notice (to the owner, of a new request), command (the
	// reply to an owner command).
	Cause string    `json:"cause"`
	At    time.Time `json:"at"`
}

// OutboundBatch is the answer of GET /v1/outbound: the messages after the
// seq asked for, oldest first, and the seq to ask after next (the last
// message's, or the one asked for when there is none).
type OutboundBatch struct {
	Messages []Outbound `json:"messages"`
	Next     int64      `json:"next"`
}

// Decision is the gate's answer for one message: the answer of
// POST /v1/admit, and of `pairgate admit --json`. Reply, when set, is what
// to send the sender; no Reply means say nothing.
type Decision struct {
	Verdict   Verdict `json:"verdict"`
	Reason    Reason  `json:"reason"`
	Code      string  `json:"code,omitempty"`       // the pairing code of a challenge
	RequestID string  `json:"request_id,omitempty"` // the pending request of a challenge
	Reply     string  `json:"reply,omitempty"`
}

// PendingRequest is a sender waiting for approval, as operators see it.
type PendingRequest struct {
	RequestID string    `json:"request_id"`
	Channel   string    `json:"channel"`
	Account   string    `json:"account"`
	Sender    string    `json:"sender"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Lockout is a channel and account whose approvals are locked after wrong
// codes.
type Lockout struct {
	Channel  string    `json:"channel"`
	Account  string    `json:"account"`
	Until    time.Time `json:"until"`
	Failures int       `json:"failures"`
}

// PendingList is the answer of GET /v1/pairing/requests and of `pairgate
// pairing list --json`: the live pending requests, oldest first, and the
// scopes whose approvals are locked.
type PendingList struct {
	Pending []PendingRequest `json:"pending"`
	Locked  []Lockout        `json:"locked"`
}

// ApproveRequest names the pending request to approve: the body of
// POST /v1/pairing/approve. Exactly one of Code and RequestID is set.
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

// RejectRequest names the pending request to reject: the body of
// POST /v1/pairing/reject. Exactly one of Code and RequestID is set.
type RejectRequest struct {
	Channel   string `json:"channel"`
	Account   string `json:"account,omitempty"`
	Code      string `json:"code,omitempty"`
	RequestID string `json:"request_id,omitempty"`
}

// SenderRequest names one sender: the body of POST /v1/pairing/allow and
// POST /v1/pairing/revoke.
type SenderRequest struct {
	Channel string `json:"channel"`
	Account string `json:"account,omitempty"`
	Sender  string `json:"sender"`
}

// UnlockRequest names the scope to unlock: the body of
// POST /v1/pairing/unlock.
type UnlockRequest struct {
	Channel string `json:"channel"`
	Account string `json:"account,omitempty"`
}

// Via says how a sender came to be allowed.
type Via string

// Vias.
const (
	ViaCode    Via = "code"    // approved by the code the sender was given
	ViaRequest Via = "request" // approved by request id
	ViaManual  Via = "manual"  // allowed by an operator without a request
	ViaImport  Via = "import"  // brought over from another system
	// ViaConfig is a sender admitted by allow_from in the config, not by
	// the allowlist in the store: they are removed there, not revoked.
	ViaConfig Via = "config"
)

// AllowedSender is an allow entry as operators see it: one in the store,
// or (ViaConfig) an allow_from entry of the config.
type AllowedSender struct {
	Channel string `json:"channel"`
	// Account is "*" for an entry of a channel's own allow_from: every
	// account of the channel.
	Account    string     `json:"account"`
	Sender     string     `json:"sender"`
	Name       string     `json:"name"`
	ApprovedAt time.Time  `json:"approved_at,omitzero"` // zero for ViaConfig
	ApprovedBy string     `json:"approved_by,omitempty"`
	Via        Via        `json:"via"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
	RevokedBy  string     `json:"revoked_by,omitempty"`
	// Config is, for ViaConfig, the key of the config the entry is in
	// (pairing.channels.telegram.allow_from).
	Config string `json:"config,omitempty"`
}

// AllowedList is the answer of GET /v1/pairing/allowed and of `pairgate
// pairing allowed --json`.
type AllowedList struct {
	Allowed []AllowedSender `json:"allowed"`
}

// Approval is the answer of POST /v1/pairing/approve and of `pairgate
// pairing approve --json`.
type Approval struct {
	Allowed AllowedSender `json:"allowed"`
	// RequestID is the request that was approved.
	RequestID string `json:"request_id"`
	// Already is set when the request had been approved before (a double
	// click, a retry, the loser of a race): nothing changed, and Allowed
	// is the sender's entry as it is now, revoked perhaps. It is never a
	// wrong code.
	Already bool `json:"already"`
	// Notify is the channel's "approved" text, set when the caller asked
	// for the sender to be notified: it was recorded as an outbound
	// message to the sender (cause "approved"), which the gateway
	// delivers.
	Notify string `json:"notify,omitempty"`
}

// RejectResponse is the answer of POST /v1/pairing/reject and of `pairgate
// pairing reject --json`: the request that was rejected.
type RejectResponse struct {
	Rejected PendingRequest `json:"rejected"`
}

// AllowResult is one sender of an allow.
type AllowResult struct {
	AllowedSender
	// Changed is false when the sender was already allowed.
	Changed bool `json:"changed"`
}

// AllowResponse is the answer of POST /v1/pairing/allow and of `pairgate
// pairing allow --json`: one result per sender.
type AllowResponse struct {
	Allowed []AllowResult `json:"allowed"`
}

// RevokeResponse is the answer of POST /v1/pairing/revoke and of `pairgate
// pairing revoke --json`.
type RevokeResponse struct {
	Revoked AllowedSender `json:"revoked"`
	// StillAllowedBy names the allow_from keys of the config that still
	// admit the sender, revoked in the store.
	StillAllowedBy []string `json:"still_allowed_by,omitempty"`
}

// Unlocked says whether a scope was locked and, if so, the lock that was
// lifted.
type Unlocked struct {
	Channel   string     `json:"channel"`
	Account   string     `json:"account"`
	WasLocked bool       `json:"was_locked"`
	Until     *time.Time `json:"until,omitempty"`
	Failures  int        `json:"failures,omitempty"`
}

// UnlockResponse is the answer of POST /v1/pairing/unlock and of `pairgate
// pairing unlock --json`.
type UnlockResponse struct {
	Unlocked Unlocked `json:"unlocked"`
}

// Change is one record of the audit log.
type Change struct {
	Seq       int64     `json:"seq"`
	At        time.Time `json:"at"`
	Kind      string    `json:"kind"` // pairing.approved, device.revoked, token.created, …
	Channel   string    `json:"channel"`
	Account   string    `json:"account"`
	Sender    string    `json:"sender"`     // "" when the change is not about one sender
	RequestID string    `json:"request_id"` // "" when the change is not about one request
	Actor     string    `json:"actor"`      // who: "cli:alice", "token:ops", "gate"
	Source    string    `json:"source"`     // from where: "cli", "api 127.0.0.1:5123"
	Detail    string    `json:"detail"`     // a short note; never a code or a token
}

// AuditLog is the answer of GET /v1/audit: the latest changes the query
// selects, newest first.
type AuditLog struct {
	Changes []Change `json:"changes"`
	// NextBefore is the before= that reads the next, older page: set when
	// the page is full (the next one may still be empty), left out on a
	// short page, which is the last.
	NextBefore int64 `json:"next_before,omitempty"`
}

// AuditQuery selects a page of GET /v1/audit: at most Limit changes (the
// daemon's default, 100, when 0), older than Before (0: from the newest),
// of that Kind, Channel and Actor where set.
type AuditQuery struct {
	Limit   int
	Before  int64
	Kind    string
	Channel string
	Actor   string
}

// Health is the answer of GET /healthz and GET /readyz.
type Health struct {
	Status string `json:"status"` // StatusOK, StatusReady or StatusUnavailable
}

// Health statuses.
const (
	StatusOK          = "ok"          // /healthz: the daemon answers
	StatusReady       = "ready"       // /readyz: the store can be read and written
	StatusUnavailable = "unavailable" // /readyz, with 503: it cannot
)

// CommandRequest is the body of POST /v1/command and of NATS
// pairgate.command: a message that starts with "/", as the gateway got it.
type CommandRequest struct {
	Channel    string `json:"channel"`
	Account    string `json:"account,omitempty"` // "" means the default account
	Sender     string `json:"sender"`            // raw; normalised by the channel's adapter
	SenderName string `json:"sender_name,omitempty"`
	Chat       Chat   `json:"chat,omitempty"` // "" means ChatDM
	Text       string `json:"text"`
}

// CommandResult is the answer to a CommandRequest. Handled is false for a
// message that is no pairgate command (the gateway passes it on as any
// other message); when true, the gateway drops the message: what pairgate
// answers is Messages outbound messages to the sender, delivered like any
// other (GET /v1/outbound, NATS).
type CommandResult struct {
	Handled  bool   `json:"handled"`
	Command  string `json:"command,omitempty"` // "approve", "pair", ...
	Messages int    `json:"messages"`
}
