// Package store defines the persistence contract of pairgate: the typed
// entities of DM pairing, the Store interface every backend implements, and
// the sentinel errors callers test with errors.Is.
//
// A Store holds no policy of its own beyond what must be atomic: the pending
// cap, approve-once, the lockout counter and the change log are each done in
// one transaction so that concurrent gateways, CLIs and replicas cannot race
// them. Every method takes the current time from its caller (the injected
// clock), never from the wall clock, so expiry is testable without sleeping.
//
// Every state change appends a Change to one ordered log in the same
// transaction as the change (the outbox pattern). Followers (the in-memory
// allowlist view, metrics, events) read the log by sequence number and are
// woken through Changed.
package store

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors. Backends wrap them with context; callers use errors.Is.
var (
	// ErrNotFound: no live object matched (an unknown or expired request,
	// an unknown sender).
	ErrNotFound = errors.New("not found")
	// ErrPending: the sender already has a live pending request in that
	// scope. CreateRequest returns it together with the existing request.
	ErrPending = errors.New("sender already has a pending request")
	// ErrAllowed: the sender is already on the scope's allowlist, so no
	// request is needed. A gate whose in-memory view lags the store (an
	// approval made by another process a moment ago) learns it here.
	ErrAllowed = errors.New("sender is already allowed")
	// ErrAlreadyApproved: the request named by code or id was approved
	// already, and its code is still within its lifetime. Approve returns
	// it together with the request and the sender's allow entry as it is
	// now; Reject together with the request. It is no wrong code: a double
	// click, a retry and the loser of a race all get it.
	ErrAlreadyApproved = errors.New("already approved")
	// ErrCapReached: the scope already holds the maximum number of live
	// pending requests.
	ErrCapReached = errors.New("pending request cap reached")
	// ErrCodeConflict: the code hash is already used by another live
	// request. The caller draws a new code and retries.
	ErrCodeConflict = errors.New("code already in use")
	// ErrLockedOut: approvals in the scope are locked after too many
	// failed attempts. Errors carrying it unwrap to a *LockoutError too.
	ErrLockedOut = errors.New("approvals locked out")
	// ErrTokenUsed: a setup token's id was already consumed.
	ErrTokenUsed = errors.New("setup token already used")
	// ErrKeyInUse: a setup-token key with that number is still kept (it
	// signs, or verifies tokens it signed before it was retired). The
	// caller reads the keys again and picks another number.
	ErrKeyInUse = errors.New("setup-token key number in use")
	// ErrUnavailable: the store cannot be read or written (corrupt file,
	// lost connection, closed store). Callers fail closed on it.
	ErrUnavailable = errors.New("store unavailable")
	// ErrCompacted: the change log no longer holds the changes after the
	// position asked for (retention pruned them). A follower reloads from
	// a snapshot (the allowlist from ScanAllowed) and goes on from there.
	ErrCompacted = errors.New("change log pruned past this position")
)

// LockoutError tells until when approvals in a scope are locked, and why.
type LockoutError struct {
	Scope    Scope
	Until    time.Time
	Failures int // failed approvals that caused the lock
}

func (e *LockoutError) Error() string {
	return "approvals on " + e.Scope.String() + " locked out until " + e.Until.UTC().Format(time.RFC3339)
}

// Is makes errors.Is(err, ErrLockedOut) hold for a *LockoutError.
func (e *LockoutError) Is(target error) bool { return target == ErrLockedOut }

// Lockout is a lock on the approvals of a scope.
type Lockout struct {
	Scope    Scope
	Until    time.Time
	Failures int // failed approvals that caused the lock
}

// Scope is the unit of DM-pairing state: one bot account on one channel.
type Scope struct {
	Channel string
	Account string
}

func (s Scope) String() string { return s.Channel + "/" + s.Account }

// Request is a sender waiting for approval. The code itself is never stored:
// only CodeHash, a keyed hash that is useless without the pairing secret.
type Request struct {
	ID       string
	Scope    Scope
	Sender   string
	Name     string
	CodeHash []byte
	// CreatedAt fixes expiry: repeat messages never extend a code.
	CreatedAt time.Time
	ExpiresAt time.Time
	// LastSentAt is when the code was last sent to the sender; it bounds
	// reminders to one per rate window. CreateRequest sets it to CreatedAt,
	// or keeps a later one given: a request an import brought over with the
	// code another system gave has it at ExpiresAt, since pairgate cannot
	// send that code again.
	LastSentAt time.Time
}

// Via records how an allow entry came to be.
type Via string

// The ways a sender joins the allowlist.
const (
	ViaCode    Via = "code"
	ViaRequest Via = "request"
	ViaManual  Via = "manual"
	ViaImport  Via = "import"
)

// AllowEntry is an approved sender. Revocation is a soft delete: the entry
// stays, with RevokedAt set, until it is reactivated.
type AllowEntry struct {
	Scope      Scope
	Sender     string
	Name       string
	ApprovedAt time.Time
	ApprovedBy string
	Via        Via
	RevokedAt  time.Time // zero while active
	RevokedBy  string
}

// Active reports whether the entry admits its sender.
func (e AllowEntry) Active() bool { return e.RevokedAt.IsZero() }

// Actor says who made a change and from where, for the audit log.
type Actor struct {
	Name   string // e.g. "cli:alice", "token:ops", "gate"
	Source string // e.g. "cli", "api 127.0.0.1:5123", "gate"
}

// ChangeKind names a record in the change log.
type ChangeKind string

// Change kinds. Followers of the allowlist react to KindAllowed and
// KindRevoked; the rest are for audit, metrics and events.
const (
	KindRequested     ChangeKind = "pairing.requested" // a request (and code) was created
	KindApproved      ChangeKind = "pairing.approved"  // a request was approved: sender allowed
	KindAllowed       ChangeKind = "pairing.allowed"   // a sender was allowed manually or imported
	KindRejected      ChangeKind = "pairing.rejected"  // a request was rejected: sender declined
	KindRevoked       ChangeKind = "pairing.revoked"   // an allow entry was revoked
	KindExpired       ChangeKind = "pairing.expired"   // a request expired and was purged
	KindCleared       ChangeKind = "pairing.cleared"   // a request was removed by clear-pending
	KindApproveFailed ChangeKind = "pairing.approve_failed"
	KindLockedOut     ChangeKind = "pairing.locked_out" // approvals in a scope were locked
	KindUnlocked      ChangeKind = "pairing.unlocked"   // an operator lifted a scope's lock
	KindTokenCreated  ChangeKind = "token.created"      // an API token was minted
	KindTokenRevoked  ChangeKind = "token.revoked"      // an API token was revoked

	KindSetupIssued     ChangeKind = "setup_token.issued" // a setup code was issued (Detail: "role R[, label L]")
	KindKeyRotated      ChangeKind = "key.rotated"        // a new setup-token key signs
	KindDeviceRequested ChangeKind = "device.requested"   // a device presented a setup token
	KindDeviceApproved  ChangeKind = "device.approved"
	KindDeviceRejected  ChangeKind = "device.rejected"
	KindDevicePaired    ChangeKind = "device.paired"  // its device token was delivered
	KindDeviceRotated   ChangeKind = "device.rotated" // its device token was replaced
	KindDeviceRevoked   ChangeKind = "device.revoked"
	KindDeviceRemoved   ChangeKind = "device.removed"
)

// ChangeKinds returns every change kind, in the order declared above: for
// checking a kind named from outside (the audit API's filter) and telling
// the caller which ones there are. A test checks it against the
// declarations, so a new kind cannot be left out.
func ChangeKinds() []ChangeKind {
	return []ChangeKind{
		KindRequested, KindApproved, KindAllowed, KindRejected, KindRevoked, KindExpired, KindCleared,
		KindApproveFailed, KindLockedOut, KindUnlocked, KindTokenCreated, KindTokenRevoked,
		KindSetupIssued, KindKeyRotated, KindDeviceRequested, KindDeviceApproved, KindDeviceRejected,
		KindDevicePaired, KindDeviceRotated, KindDeviceRevoked, KindDeviceRemoved,
	}
}

// SigningKey is one setup-token key by its number. The key itself is
// derived from the pairing secret and the number; the store keeps which
// number signs and since when.
type SigningKey struct {
	// KID is the key's number, 1 to 255: the first byte of every token it
	// signs. A number comes back into use only after its key was dropped.
	KID       uint8
	CreatedAt time.Time
	RetiredAt time.Time // zero for the key that signs now
}

// SetupToken is what the store keeps of an issued setup token: its id, and
// what the token stands for, which the token itself does not carry. The
// token's tag proves it was issued; this row says for what, and UsedAt
// makes it single use.
type SetupToken struct {
	ID        string // lowercase hex of the token's 12-byte id
	KID       uint8  // the key that signed it
	Role      string
	Scopes    []string
	Label     string
	URL       string // the /pair URL the setup code was issued for
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    time.Time // zero until a device pairs with it
}

// DeviceStatus is where a device request stands.
type DeviceStatus string

// Device request states. A pending request past its ExpiresAt is expired.
const (
	DevicePending  DeviceStatus = "pending"
	DeviceApproved DeviceStatus = "approved"
	DeviceRejected DeviceStatus = "rejected"
)

// DeviceRequest is a device that presented a setup token and waits for the
// operator.
type DeviceRequest struct {
	ID        string // "dreq_…"
	DeviceID  string // lowercase hex SHA-256 of PublicKey
	PublicKey []byte // raw 32-byte Ed25519 key
	Name      string
	Platform  string
	Role      string
	Scopes    []string
	Label     string
	CheckCode string
	// Remote is the address (host) the device connected from.
	Remote    string
	CreatedAt time.Time
	ExpiresAt time.Time
	Status    DeviceStatus
	DecidedAt time.Time
	DecidedBy string
	// Delivered is set once the device token went out; it goes out once.
	Delivered bool
}

// Device is a paired device. Its token is kept only as a hash.
type Device struct {
	DeviceID   string
	PublicKey  []byte
	Name       string
	Platform   string
	Role       string
	Scopes     []string
	Label      string // the setup code's, from the request it paired with
	TokenHash  []byte
	RequestID  string
	PairedAt   time.Time
	LastSeenAt time.Time
	RevokedAt  time.Time // zero while active
}

// TokenScope is what an API token may do.
type TokenScope string

// Token scopes.
const (
	// ScopeAdmin may call every API.
	ScopeAdmin TokenScope = "admin"
	// ScopeGateway may only do what a gateway does: ask the gate (POST
	// /v1/admit), hand over owner commands (POST /v1/command) and fetch
	// outbound messages (GET /v1/outbound).
	ScopeGateway TokenScope = "gateway"
)

// APIToken is a bearer token for the HTTP API. Only its SHA-256 hash is
// stored; the token itself is shown once, when it is made.
type APIToken struct {
	ID        string
	Name      string
	Scope     TokenScope
	Hash      []byte
	CreatedAt time.Time
	CreatedBy string
	RevokedAt time.Time // zero while active
}

// FollowOptions configure Follow.
type FollowOptions struct {
	// After is the sequence number to follow from: fn gets the changes
	// after it.
	After int64
	// Retry is how soon a failed read (or a failed fn) is tried again when
	// no wake-up comes first. Default 1s: a change is never left waiting
	// for an unrelated later change to wake the follower.
	Retry time.Duration
	// OnError, when set, is told of every failed read or fn; the follower
	// goes on regardless.
	OnError func(error)
	// OnCompacted is called when retention pruned the log past the
	// follower's position (ErrCompacted): the follower reloads what it
	// keeps from a snapshot and returns the position the snapshot covers,
	// from which Follow goes on. A failure is retried like a failed read.
	// Without it, Follow goes on from the log's head.
	OnCompacted func(ctx context.Context) (int64, error)
}

// Head returns the sequence number of the newest change (0 for an empty
// log): where a follower that starts "from now" begins. While the store is
// unavailable it retries every o.Retry, telling o.OnError, until ctx ends
// (then it returns ctx's error). o.After is not used.
func Head(ctx context.Context, st ChangeLog, o FollowOptions) (int64, error) {
	if o.Retry <= 0 {
		o.Retry = time.Second
	}
	for {
		recent, err := st.RecentChanges(ctx, ChangeQuery{Limit: 1})
		switch {
		case err == nil && len(recent) == 1:
			return recent[0].Seq, nil
		case err == nil:
			return 0, nil
		case ctx.Err() != nil:
			return 0, ctx.Err()
		case o.OnError != nil:
			o.OnError(err)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(o.Retry):
		}
	}
}

// StartCursor returns the position consumer name goes on from: its
// cursor, or, on its first run, the log's head, recorded as its cursor, so
// that a new consumer (a publisher of events or notices) handles what
// happens from then on, not the whole retained history. While the store is
// unavailable it retries every o.Retry, telling o.OnError, until ctx ends
// (then it returns ctx's error). o.After is not used.
func StartCursor(ctx context.Context, st ChangeLog, name string, o FollowOptions) (int64, error) {
	return startAt(ctx, o,
		func() (int64, bool, error) { return st.Cursor(ctx, name) },
		func() (int64, error) { return Head(ctx, st, o) },
		func(seq int64) error { return st.SetCursor(ctx, name, seq, time.Now()) })
}

// StartOutboundCursor is StartCursor for a publisher of outbound messages
// (OutboundLog's cursors and head).
func StartOutboundCursor(ctx context.Context, st OutboundLog, name string, o FollowOptions) (int64, error) {
	return startAt(ctx, o,
		func() (int64, bool, error) { return st.OutboundCursor(ctx, name) },
		func() (int64, error) { return st.OutboundHead(ctx) },
		func(seq int64) error { return st.SetOutboundCursor(ctx, name, seq, time.Now()) })
}

// startAt is the retrying loop of StartCursor over one log's cursor.
func startAt(ctx context.Context, o FollowOptions, cursor func() (int64, bool, error), head func() (int64, error), set func(int64) error) (int64, error) {
	if o.Retry <= 0 {
		o.Retry = time.Second
	}
	for {
		seq, found, err := cursor()
		if err == nil && found {
			return seq, nil
		}
		if err == nil {
			if seq, err = head(); err == nil {
				if err = set(seq); err == nil {
					return seq, nil
				}
			}
		}
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		if o.OnError != nil {
			o.OnError(err)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(o.Retry):
		}
	}
}

// followBatch is how many changes Follow reads at a time.
const followBatch = 1000

// Follow calls fn with every change after o.After, in order and in batches,
// as they are appended, until ctx ends; it returns ctx's error then. It is
// the one loop every follower of the change log runs.
//
// A batch is handed on only once: its position advances when fn returns nil.
// A failing read or fn is retried at the next wake-up or after o.Retry,
// whichever comes first, so a follower survives a store that is briefly
// unavailable and never sits on a change it failed to read. fn must be
// idempotent for the batch it failed on, since it sees that batch again.
func Follow(ctx context.Context, st ChangeLog, o FollowOptions, fn func([]Change) error) error {
	if o.Retry <= 0 {
		o.Retry = time.Second
	}
	seq := o.After
	retry := time.NewTimer(o.Retry)
	retry.Stop()
	defer retry.Stop()
	for {
		wake := st.Changed()
		failed := false
		for {
			changes, err := st.Changes(ctx, seq, followBatch)
			if errors.Is(err, ErrCompacted) {
				var at int64
				if o.OnCompacted != nil {
					at, err = o.OnCompacted(ctx)
				} else {
					at, err = Head(ctx, st, FollowOptions{Retry: o.Retry, OnError: o.OnError})
				}
				if err == nil {
					seq = at
					continue
				}
			}
			if err == nil && len(changes) > 0 {
				err = fn(changes)
			}
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				if o.OnError != nil {
					o.OnError(err)
				}
				failed = true
				break
			}
			if len(changes) == 0 {
				break
			}
			seq = changes[len(changes)-1].Seq
			if len(changes) < followBatch {
				break
			}
		}
		var retryC <-chan time.Time
		if failed {
			retry.Reset(o.Retry)
			retryC = retry.C
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wake:
		case <-retryC:
		}
		retry.Stop()
	}
}

// AdmitsSender reports whether a change of this kind puts its sender on the
// allowlist.
func (k ChangeKind) AdmitsSender() bool { return k == KindApproved || k == KindAllowed }

// Change is one record of the ordered change log, which doubles as the
// audit log. Seq is strictly increasing in commit order.
type Change struct {
	Seq       int64
	At        time.Time
	Kind      ChangeKind
	Scope     Scope
	Sender    string // empty when the change is not about one sender
	RequestID string // empty when the change is not about one request
	DeviceID  string // empty when the change is not about one device
	Actor     Actor
	// Detail is a short, human-readable note ("via code", "5 failures")
	// for the audit log. It never holds a code or a token, and nothing
	// reads it back: programs use Data.
	Detail string
	// Data is the change's typed payload.
	Data ChangeData
}

// ChangeDataVersion is the version of ChangeData that this pairgate writes.
const ChangeDataVersion = 1

// ChangeData is the typed payload of a change, stored as JSON. Which fields
// are set depends on the kind, as each field says; unset fields are left
// out of the JSON. Version tells readers which fields to expect; a reader
// ignores fields it does not know.
type ChangeData struct {
	Version int `json:"v"`
	// Via: how the sender joined the allowlist (pairing.approved,
	// pairing.allowed).
	Via Via `json:"via,omitempty"`
	// Notify: the sender is to be told they were approved
	// (pairing.approved).
	Notify bool `json:"notify,omitempty"`
	// Failures: wrong codes counted in the window (pairing.approve_failed),
	// or that caused the lock (pairing.locked_out, pairing.unlocked).
	Failures int `json:"failures,omitempty"`
	// MaxFailures: the count that locks (pairing.approve_failed).
	MaxFailures int `json:"max_failures,omitempty"`
	// Until: when the lock ends, unix milliseconds (pairing.locked_out,
	// pairing.unlocked).
	Until int64 `json:"until,omitempty"`
	// Role and Label: what a setup code or device request is for
	// (setup_token.issued, device.requested).
	Role  string `json:"role,omitempty"`
	Label string `json:"label,omitempty"`
	// KID: the setup-token key's number (key.rotated, setup_token.issued).
	KID int `json:"kid,omitempty"`
	// Name: the sender's display name (pairing.requested) or what a device
	// calls itself (device.requested); Platform: what a device says it runs
	// on (device.requested).
	Name     string `json:"name,omitempty"`
	Platform string `json:"platform,omitempty"`
	// Remote and CheckCode: the address a device connected from and the
	// check code the operator compares with the device's screen
	// (device.requested). A check code is no secret: it proves nothing
	// without the device's key.
	Remote    string `json:"remote,omitempty"`
	CheckCode string `json:"check_code,omitempty"`
	// Expires: when the request expires, unix milliseconds
	// (pairing.requested, device.requested).
	Expires int64 `json:"expires,omitempty"`
	// Scope: an API token's scope (token.created, token.revoked).
	TokenScope TokenScope `json:"token_scope,omitempty"`
}

// GateState is what the gate reads about a sender who is not allowed.
type GateState struct {
	LockedUntil time.Time // the scope's approval lock; zero when not locked
	Declined    bool      // the sender was rejected at or after declinedSince
	Request     Request   // the sender's live request, when Found
	Found       bool
	Live        int // live requests in the scope, counted up to limit
}

// RequestFilter selects requests or allow entries. Empty fields match all.
type RequestFilter struct {
	Channel string
	Account string
}

// CreateRequestParams is the input of CreateRequest.
type CreateRequestParams struct {
	Request    Request // ID, Scope, Sender, Name, CodeHash, CreatedAt, ExpiresAt; LastSentAt if later than CreatedAt
	MaxPending int
	Actor      Actor
	// Outbound is recorded with the request, if it is created: the
	// challenge, the owner's notices.
	Outbound []OutboundMessage
}

// ApproveParams is the input of Approve. Exactly one of CodeHash and
// RequestID is set.
type ApproveParams struct {
	Scope     Scope
	CodeHash  []byte
	RequestID string
	Actor     Actor
	Now       time.Time
	// Notify is recorded on the approval's change (Data.Notify): the
	// sender is to be told.
	Notify bool
	// Outbound, when set, is called inside the transaction with the
	// request taken, and what it returns is recorded with the approval or
	// rejection (the sender's "approved" notice, the reply to the owner),
	// so messages can name a request found by its code. It is not called
	// when nothing is approved or rejected. It must not block.
	Outbound func(Request) []OutboundMessage
}

// AllowParams is the input of Allow.
type AllowParams struct {
	Scope   Scope
	Senders []AllowSender // at least one
	Via     Via           // ViaManual or ViaImport
	Actor   Actor
	Now     time.Time
	// KeepRevoked leaves a revoked entry revoked (Changed false), where
	// Allow would otherwise reactivate it: an import never undoes a
	// revocation. Decided in the transaction that writes, so a revocation
	// made while an import runs stands.
	KeepRevoked bool
}

// AllowSender is one sender to allow, with the name to record (empty keeps
// the name already on record).
type AllowSender struct {
	Sender string
	Name   string
	// Revoked records the sender as revoked (an import of an entry its
	// source had revoked), so it is on record and never admitted: written
	// only when the sender has no entry at all (Changed false otherwise),
	// with a KindRevoked change.
	Revoked bool
}

// Approved is what Approve did.
type Approved struct {
	Request Request    // the request approved
	Entry   AllowEntry // the sender's allow entry, as it is now
	// Seq is the change log position of the KindApproved change Approve
	// recorded, so that a reader of the log (an allowlist in memory) can
	// apply it without reading it back; 0 with ErrAlreadyApproved.
	Seq int64
}

// AllowResult is what Allow did for one sender.
type AllowResult struct {
	Entry AllowEntry
	// Changed is false when the sender was already allowed: nothing was
	// written or recorded for them.
	Changed bool
}

// GCPolicy says what GarbageCollect may delete: rows whose window has
// passed. A zero duration keeps that kind of row forever.
type GCPolicy struct {
	// RateWindow: a notice older than this no longer holds a message back.
	RateWindow time.Duration
	// FailureWindow: a failed approval older than this no longer counts.
	FailureWindow time.Duration
	// DeclineWindow: a decline older than this no longer refuses a code.
	DeclineWindow time.Duration
	// SetupTokens: how long after it expired a setup token's row is kept
	// (a late device still gets token_expired from the token itself).
	SetupTokens time.Duration
	// DeviceRequests: how long a decided or expired device request is kept.
	DeviceRequests time.Duration
	// Outbound: how long outbound messages are kept after they were
	// recorded (a gateway away longer misses them).
	Outbound time.Duration
	// Retention: how long changes are kept in the log (the audit log).
	// A change is never pruned before every live cursor has passed it.
	Retention time.Duration
	// StaleCursor: a cursor not moved for this long (a consumer that is
	// gone) no longer holds retention back. Zero: every cursor holds.
	StaleCursor time.Duration
}

// GCBatch bounds how many rows of each kind one GarbageCollect call
// deletes (and how many changes it prunes), so a backlog is collected over
// several calls without holding the write lock long.
const GCBatch = 10000

// GCResult counts what one GarbageCollect call deleted.
type GCResult struct {
	Requests       int // expired pending requests (recorded as KindExpired)
	Approvals      int // approvals older than their code's lifetime
	Lockouts       int // lockouts that ended
	Notices        int
	Failures       int
	Declines       int
	SetupTokens    int
	DeviceRequests int
	WebSessions    int // web sessions and sign-in links that expired
	Outbound       int // outbound messages past GCPolicy.Outbound
	Changes        int // changes pruned from the log
}

// LockoutPolicy tells RecordApprovalFailure when to lock a scope.
type LockoutPolicy struct {
	MaxFailures int           // failures within Window that lock the scope
	Window      time.Duration // how far back failures count
	LockFor     time.Duration // how long the lock lasts
}

// Store is the persistence contract. All methods are safe for concurrent use,
// also by several processes (SQLite) or replicas (PostgreSQL) sharing one
// database. Times are truncated to milliseconds by backends.
type Store interface {
	PairingStore
	TokenStore
	DeviceStore
	WebSessionStore
	ChangeLog
	OutboundLog

	// AcquireLease takes or renews the lease name for holder until
	// now+ttl, if it is free, expired, or already holder's; it reports
	// whether holder has it. Of several callers for a free lease exactly
	// one gets it. It appends no change.
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration, now time.Time) (bool, error)

	// ReleaseLease gives the lease up, if holder has it, so another can
	// take it at once.
	ReleaseLease(ctx context.Context, name, holder string) error

	// GarbageCollect deletes what the rules no longer need at now, as p
	// says, and reports how much. Requests that expired are recorded as
	// KindExpired, as ExpireRequests does. Each call does a bounded amount
	// of work (so it holds the write lock briefly); a daemon calls it on
	// a ticker.
	GarbageCollect(ctx context.Context, now time.Time, p GCPolicy) (GCResult, error)

	// Ping reports whether the store can both read and write now.
	Ping(ctx context.Context) error

	// Close releases the store. Further calls return ErrUnavailable.
	Close() error
}

// PairingStore is the part of the store DM pairing needs: requests, the
// allowlist, declines, lockouts and notices.
type PairingStore interface {
	// CreateRequest, in one transaction: purges expired requests of the
	// scope (recording KindExpired), returns ErrAllowed if the sender has an
	// active allow entry, ErrPending with the existing
	// live request if the sender already has one, ErrCapReached if the
	// scope holds MaxPending live requests, ErrCodeConflict if CodeHash is
	// held by another live request; otherwise inserts the request and
	// records KindRequested.
	CreateRequest(ctx context.Context, p CreateRequestParams) (Request, error)

	// PendingFor reads the sender's live request in scope (found false if
	// none) and how many live requests the scope holds, counting at most
	// limit. It is a read that lets the gate answer repeat messages and a
	// full scope without taking the write lock; CreateRequest still decides
	// atomically.
	PendingFor(ctx context.Context, scope Scope, sender string, now time.Time, limit int) (r Request, found bool, live int, err error)

	// GateState reads, in one statement and so one snapshot, what the gate
	// needs before it decides on a sender who is not allowed: what
	// LockedUntil(scope, now), DeclinedSince(scope, sender, declinedSince)
	// and PendingFor(scope, sender, now, limit) would answer.
	GateState(ctx context.Context, scope Scope, sender string, now, declinedSince time.Time, limit int) (GateState, error)

	// MarkRequestSent sets LastSentAt to now on a live request whose
	// LastSentAt is at or before notAfter. It reports whether it did, so
	// exactly one of several concurrent callers resends a code; out (the
	// reminder) is recorded only if it did.
	MarkRequestSent(ctx context.Context, id string, notAfter, now time.Time, out ...OutboundMessage) (bool, error)

	// ListRequests returns the live (unexpired at now) requests, oldest
	// first.
	ListRequests(ctx context.Context, f RequestFilter, now time.Time) ([]Request, error)

	// Approve, in one transaction: refuses with a *LockoutError while the
	// scope is locked; finds the live request by code hash or id; deletes
	// it; inserts or reactivates the sender's allow entry (Via code or
	// request); clears a decline; remembers the approval until the
	// request's ExpiresAt; records KindApproved.
	//
	// A request of the scope approved before and not yet past its
	// ExpiresAt gives ErrAlreadyApproved with that request and the
	// sender's allow entry as it is now (revoked, perhaps), and changes
	// nothing. Anything else is ErrNotFound. Of concurrent approvals of one
	// request exactly one succeeds; the others get ErrAlreadyApproved.
	Approve(ctx context.Context, p ApproveParams) (Approved, error)

	// Reject, in one transaction: finds the live request by code hash or
	// id, deletes it, marks the sender declined at now, and records
	// KindRejected. A request approved within its lifetime gives
	// ErrAlreadyApproved with the request and changes nothing; anything
	// else is ErrNotFound. Lockout does not apply.
	Reject(ctx context.Context, p ApproveParams) (Request, error)

	// FindApproved returns the request approved within its lifetime (not
	// past its ExpiresAt at now) whose code hash is codeHash or, with
	// codeHash nil, whose id is id, on any scope; ErrNotFound if none. An
	// owner command that names a request without its scope finds where
	// it was approved with it.
	FindApproved(ctx context.Context, codeHash []byte, id string, now time.Time) (Request, error)

	// ClearRequests deletes the pending requests matching f, recording
	// KindCleared for each, and returns how many it deleted.
	ClearRequests(ctx context.Context, f RequestFilter, actor Actor, now time.Time) (int, error)

	// ExpireRequests purges every request expired at now, recording
	// KindExpired for each, and returns how many it purged. It also
	// forgets approvals whose requests' lifetime is over (no record).
	ExpireRequests(ctx context.Context, now time.Time) (int, error)

	// Allow, in one transaction for all of p.Senders (all or none are
	// allowed): inserts an active allow entry or reactivates a revoked one
	// and records KindAllowed; a pending request of the sender is deleted
	// (recording KindCleared). On an already active entry it changes
	// nothing, records nothing and reports Changed == false. Results are in
	// the order of p.Senders.
	Allow(ctx context.Context, p AllowParams) ([]AllowResult, error)

	// Revoke soft-deletes an active allow entry and records KindRevoked.
	// ErrNotFound if the sender has no active entry.
	// out is recorded with the revocation.
	Revoke(ctx context.Context, scope Scope, sender string, actor Actor, now time.Time, out ...OutboundMessage) (AllowEntry, error)

	// ListAllowed returns allow entries matching f, ordered by scope and
	// sender; revoked entries only when includeRevoked.
	ListAllowed(ctx context.Context, f RequestFilter, includeRevoked bool) ([]AllowEntry, error)

	// ScanAllowed calls fn for every active allow entry from one
	// consistent snapshot and returns the sequence number of the last
	// change that snapshot includes. A follower that loads the snapshot and
	// then applies Changes after that sequence misses nothing.
	ScanAllowed(ctx context.Context, fn func(scope Scope, sender string) error) (seq int64, err error)

	// DeclinedSince reports whether the sender was rejected at or after
	// since.
	DeclinedSince(ctx context.Context, scope Scope, sender string, since time.Time) (bool, error)

	// LockedUntil returns the end of the scope's approval lock, or the zero
	// time when approvals are not locked at now.
	LockedUntil(ctx context.Context, scope Scope, now time.Time) (time.Time, error)

	// RecordApprovalFailure, in one transaction: counts a failed approval
	// (KindApproveFailed) and, when the scope reaches p.MaxFailures within
	// p.Window, locks it until now+p.LockFor (KindLockedOut) and resets the
	// count. It returns the lock's end, or the zero time if not locked.
	RecordApprovalFailure(ctx context.Context, scope Scope, actor Actor, now time.Time, p LockoutPolicy) (time.Time, error)

	// Lockouts returns the locks in force at now on scopes matching f,
	// ordered by channel and account.
	Lockouts(ctx context.Context, f RequestFilter, now time.Time) ([]Lockout, error)

	// Unlock, in one transaction: lifts the scope's lock in force at now,
	// forgets the scope's failed approvals (the count starts from zero),
	// records KindUnlocked, and returns the lock it lifted. ErrNotFound if
	// the scope is not locked at now; then nothing changes.
	Unlock(ctx context.Context, scope Scope, actor Actor, now time.Time) (Lockout, error)

	// MarkNotice records that the sender was told something of the given
	// kind (e.g. "max_pending") at now, if it was last told at or before
	// notAfter (or never). It reports whether it did, so a notice is sent
	// at most once per window even with concurrent gateways; out (the
	// notice's text) is recorded only if it did.
	MarkNotice(ctx context.Context, scope Scope, sender, kind string, notAfter, now time.Time, out ...OutboundMessage) (bool, error)
}

// TokenStore keeps the daemon's API tokens.
type TokenStore interface {
	// CreateToken stores a new API token (ID and Hash unique) and records
	// KindTokenCreated.
	CreateToken(ctx context.Context, t APIToken, actor Actor) error

	// ListTokens returns API tokens oldest first; revoked ones only when
	// includeRevoked.
	ListTokens(ctx context.Context, includeRevoked bool) ([]APIToken, error)

	// RevokeToken marks an active token revoked and records
	// KindTokenRevoked; ErrNotFound if no active token has that id.
	RevokeToken(ctx context.Context, id string, actor Actor, now time.Time) (APIToken, error)
}

// WebSessionKind tells a signed-in browser from a sign-in link.
type WebSessionKind string

const (
	// WebSessionBrowser is a browser signed in to the web page.
	WebSessionBrowser WebSessionKind = "session"
	// WebSessionLink is a single-use sign-in link (pairgate web-link) not
	// used yet.
	WebSessionLink WebSessionKind = "link"
)

// WebSession is a browser signed in to the web page, or a sign-in link not
// used yet. Only the SHA-256 of its secret (the cookie or the link's token)
// is kept.
type WebSession struct {
	Hash []byte // SHA-256 of the secret; unique
	Kind WebSessionKind
	// TokenHash is the SHA-256 of the API token (or admin token) the
	// browser signed in with, so revoking that token ends the session; nil
	// for a sign-in link and a session made from one (its authority is
	// whoever could run pairgate web-link on the store).
	TokenHash []byte
	CreatedAt time.Time
	ExpiresAt time.Time
	Remote    string // the address that signed in or asked for the link, for the log
}

// WebSessionStore keeps the web page's sessions, so signing out ends a
// session on every replica.
type WebSessionStore interface {
	// CreateWebSession stores s (of either kind); its Hash is unique.
	CreateWebSession(ctx context.Context, s WebSession) error

	// WebSession returns the session of kind WebSessionBrowser with that
	// hash that has not expired at now; ErrNotFound otherwise.
	WebSession(ctx context.Context, hash []byte, now time.Time) (WebSession, error)

	// DeleteWebSession deletes the session or link with that hash (signing
	// out); deleting one that is gone is not an error.
	DeleteWebSession(ctx context.Context, hash []byte) error

	// RedeemWebLink, in one transaction, deletes the unexpired sign-in
	// link with hash link and stores session: of several callers with one
	// link exactly one succeeds; the others, and a link that expired or
	// never existed, get ErrNotFound and store nothing.
	RedeemWebLink(ctx context.Context, link []byte, session WebSession, now time.Time) error
}

// DeviceStore is the part of the store device pairing needs: setup-token
// keys, setup tokens, device requests and devices.
type DeviceStore interface {
	// SigningKeys returns the setup-token keys kept: the one that signs
	// (RetiredAt zero) first, then retired ones, newest first.
	SigningKeys(ctx context.Context) ([]SigningKey, error)

	// RotateSigningKey, in one transaction: retires the signing key
	// (RetiredAt = k.CreatedAt), drops keys retired at or before
	// dropBefore, adds k as the signing key and records KindKeyRotated.
	// With no key yet it just adds k. ErrKeyInUse if a key kept after the
	// drop has k's number (also when a concurrent rotation took it).
	RotateSigningKey(ctx context.Context, k SigningKey, dropBefore time.Time, actor Actor) error

	// CreateSetupToken, in one transaction: deletes setup tokens that
	// expired at or before purgeBefore, stores t (its ID unique) and records
	// KindSetupIssued.
	// out (a setup code sent to the owner's chat) is recorded with it.
	CreateSetupToken(ctx context.Context, t SetupToken, purgeBefore time.Time, actor Actor, out ...OutboundMessage) error

	// GetSetupToken returns a stored setup token, used or not (ErrNotFound
	// if none).
	GetSetupToken(ctx context.Context, id string) (SetupToken, error)

	// CreateDeviceRequest, in one transaction: consumes the setup token
	// tokenID (UsedAt = r.CreatedAt), inserts the pending request and
	// records KindDeviceRequested. ErrTokenUsed if the token was consumed
	// before, also by a concurrent caller: exactly one wins. ErrNotFound if
	// no such token is stored or it expired at or before r.CreatedAt.
	// out (the owner's notices) is recorded with the request.
	CreateDeviceRequest(ctx context.Context, r DeviceRequest, tokenID string, actor Actor, out ...OutboundMessage) error

	// GetDeviceRequest returns a request in any state (ErrNotFound if none).
	GetDeviceRequest(ctx context.Context, id string) (DeviceRequest, error)

	// ListDeviceRequests returns pending requests not expired at now,
	// oldest first.
	ListDeviceRequests(ctx context.Context, now time.Time) ([]DeviceRequest, error)

	// DecideDeviceRequest approves or rejects a request that is pending and
	// not expired at now (else ErrNotFound): of concurrent decisions and
	// expiry exactly one wins. Records KindDeviceApproved or
	// KindDeviceRejected.
	// out (the reply to the owner) is recorded with the decision.
	DecideDeviceRequest(ctx context.Context, id string, approve bool, actor Actor, now time.Time, out ...OutboundMessage) (DeviceRequest, error)

	// DeliverDeviceToken, in one transaction, for an approved request whose
	// token was not yet delivered (else ErrNotFound): marks it delivered,
	// creates or replaces the device with tokenHash and the request's name,
	// platform, role, scopes and label (clearing a revocation), and records
	// KindDevicePaired. It happens once.
	DeliverDeviceToken(ctx context.Context, requestID string, tokenHash []byte, now time.Time) (Device, error)

	// GetDevice returns a device, revoked or not (ErrNotFound if none).
	GetDevice(ctx context.Context, deviceID string) (Device, error)

	// ListDevices returns every device, oldest pairing first.
	ListDevices(ctx context.Context) ([]Device, error)

	// RotateDeviceToken replaces an active device's token hash (the old
	// token stops working) and records KindDeviceRotated.
	RotateDeviceToken(ctx context.Context, deviceID string, tokenHash []byte, actor Actor, now time.Time) (Device, error)

	// RevokeDevice disables an active device and records KindDeviceRevoked.
	RevokeDevice(ctx context.Context, deviceID string, actor Actor, now time.Time) (Device, error)

	// RemoveDevice deletes a device (revoked or not) and records
	// KindDeviceRemoved.
	RemoveDevice(ctx context.Context, deviceID string, actor Actor, now time.Time) error

	// TouchDevice sets a device's LastSeenAt. No change record.
	TouchDevice(ctx context.Context, deviceID string, now time.Time) error
}

// OutboundKind is what an outbound message holds.
type OutboundKind string

// Outbound message kinds.
const (
	OutboundText  OutboundKind = "text"
	OutboundImage OutboundKind = "image" // a PNG
)

// OutboundTemplate says how an outbound message that carries a secret is
// made when it is read: the store keeps only Ref, never the secret.
type OutboundTemplate string

// Outbound templates.
const (
	// TemplateNone: Text and PNG are the message, as stored.
	TemplateNone OutboundTemplate = ""
	// TemplateChallenge: the pairing code of request Ref, in the
	// channel's challenge text.
	TemplateChallenge OutboundTemplate = "challenge"
	// TemplateSetupCode: the setup code of setup token Ref, as text.
	TemplateSetupCode OutboundTemplate = "setup_code"
	// TemplateSetupQR: the setup code of setup token Ref, as a QR PNG.
	TemplateSetupQR OutboundTemplate = "setup_qr"
)

// OutboundMessage is one message pairgate wants delivered to a sender or
// the owner: a code sent again, an "approved" notice, an owner's notice of
// a new request, the reply to an owner command. It is recorded in the
// transaction of its cause and delivered at least once by every route
// (NATS, the HTTP long poll, ...), which pass Seq back to read on.
type OutboundMessage struct {
	Seq       int64 // set by the store, from 1, no gaps, in commit order
	At        time.Time
	Channel   string
	Account   string
	To        string // the sender or owner, as the channel's adapter writes ids
	Kind      OutboundKind
	Text      string // TemplateNone text messages
	PNG       []byte // TemplateNone images
	ParseMode string // "" for plain text
	Template  OutboundTemplate
	Ref       string    // the request or setup token a template renders
	ExpiresAt time.Time // a templated secret is not delivered after this; zero for none
	// Cause says why it was sent: one of the Cause constants.
	Cause string
}

// Causes of outbound messages (OutboundMessage.Cause).
const (
	CauseChallenge  = "challenge"   // a new request's code, to its sender
	CauseReminder   = "reminder"    // the code again, after the rate window
	CauseMaxPending = "max_pending" // the sender is told the queue is full
	CauseApproved   = "approved"    // the sender is told they were approved
	CauseNotice     = "notice"      // the owner is told of a new request
	CauseCommand    = "command"     // the answer to an owner command
)

// OutboundLog is the ordered log of outbound messages and the positions
// of their publishers. Messages are appended by the transactions that
// cause them (CreateRequestParams.Outbound, ApproveParams.Outbound and the
// out arguments of the other methods) or, for a reply that changes
// nothing else, by AppendOutbound.
type OutboundLog interface {
	// AppendOutbound records msgs in one transaction, in order, and
	// returns them with Seq and At (now) set.
	AppendOutbound(ctx context.Context, msgs []OutboundMessage, now time.Time) ([]OutboundMessage, error)

	// Outbound returns up to limit messages with Seq > after, in order.
	// Sequence numbers have no gaps and are committed in order, so a
	// reader that passes the last Seq it handled never skips one.
	// Messages older than the retention of GCPolicy.Outbound are gone.
	Outbound(ctx context.Context, after int64, limit int) ([]OutboundMessage, error)

	// OutboundHead returns the Seq of the newest outbound message (0 if
	// none was ever recorded).
	OutboundHead(ctx context.Context) (int64, error)

	// OutboundCursor returns how far publisher name has delivered (found
	// false if it never recorded a position).
	OutboundCursor(ctx context.Context, name string) (seq int64, found bool, err error)

	// SetOutboundCursor records that publisher name has delivered every
	// message up to seq. A cursor never moves back.
	SetOutboundCursor(ctx context.Context, name string, seq int64, now time.Time) error
}

// ChangeQuery selects changes for the audit view, newest first.
type ChangeQuery struct {
	Limit   int        // at most this many (required, > 0)
	Before  int64      // only Seq < Before; 0 means from the newest
	Kind    ChangeKind // only this kind; "" means any
	Channel string     // only changes of this channel; "" means any
	Actor   string     // only changes whose Actor.Name is this; "" means any
}

// ChangeLog is the ordered log of every change (the outbox and the audit
// log) and the positions of its consumers.
type ChangeLog interface {
	// Changes returns up to limit changes with Seq > after, in order.
	// Sequence numbers have no gaps and are committed in order, so a
	// follower that reads from its last position never skips a change.
	// After retention pruned past after, it returns ErrCompacted.
	Changes(ctx context.Context, after int64, limit int) ([]Change, error)

	// RecentChanges returns the newest changes that q selects, at most
	// q.Limit of them, newest first: the audit view. To read the next page,
	// pass the Seq of the last change returned as q.Before. A q.Limit below
	// 1 or a negative q.Before is an error.
	RecentChanges(ctx context.Context, q ChangeQuery) ([]Change, error)

	// Changed returns a channel that is closed when changes (or outbound
	// messages) may have been appended after the call: by this store at
	// once, by other processes or replicas within the backend's poll or
	// notify latency (≤ 1 s). Call it again after each wake-up.
	Changed() <-chan struct{}

	// Cursor returns how far consumer name has handled the change log
	// (found false if it never recorded a position).
	Cursor(ctx context.Context, name string) (seq int64, found bool, err error)

	// SetCursor records that consumer name has handled every change up
	// to seq. A cursor never moves back (a lower seq is ignored), holds
	// retention back until it has passed a change, and appends no change.
	SetCursor(ctx context.Context, name string, seq int64, now time.Time) error
}
