package pairing

import (
	"cmp"
	"context"
	"crypto/hmac"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pairgate/pairgate/api"
	"github.com/pairgate/pairgate/channel"
	"github.com/pairgate/pairgate/store"
)

// ErrConfigAllowed: the sender is admitted by allow_from in the config, so
// there is nothing in the store to revoke; errors carrying it are a
// *ConfigAllowedError naming the keys.
var ErrConfigAllowed = errors.New("admitted by allow_from in the configuration")

// ConfigAllowedError is Revoke's answer for a sender who is on no
// allowlist in the store but is admitted by allow_from in the config.
type ConfigAllowedError struct {
	Scope  store.Scope
	Sender string
	Keys   []string // the allow_from keys that list them
}

func (e *ConfigAllowedError) Error() string {
	return fmt.Sprintf("%s on %s is admitted by %s in the configuration, not by the allowlist in the store: remove them there, then reload pairgate serve (SIGHUP) or restart it",
		e.Sender, e.Scope, strings.Join(e.Keys, " and "))
}

func (e *ConfigAllowedError) Unwrap() error { return ErrConfigAllowed }

func pendingFrom(r store.Request) api.PendingRequest {
	return api.PendingRequest{RequestID: r.ID, Channel: r.Scope.Channel, Account: r.Scope.Account, Sender: r.Sender,
		Name: r.Name, CreatedAt: r.CreatedAt, ExpiresAt: r.ExpiresAt}
}

func allowedFrom(e store.AllowEntry) api.AllowedSender {
	a := api.AllowedSender{Channel: e.Scope.Channel, Account: e.Scope.Account, Sender: e.Sender, Name: e.Name,
		ApprovedAt: e.ApprovedAt, ApprovedBy: e.ApprovedBy, Via: api.Via(e.Via), RevokedBy: e.RevokedBy}
	if !e.Active() {
		t := e.RevokedAt
		a.RevokedAt = &t
	}
	return a
}

// Target names a pending request: a channel, an account and either a code or
// a request id (anything starting with "req_").
type Target struct {
	Channel string
	Account string // "" means DefaultAccount; case-folded like Inbound.Account
	// CodeOrID is what the operator typed: a code, case-insensitive, spaces
	// and one hyphen ignored, or a request id.
	CodeOrID string
}

// scope checks a channel and account and returns the channel's adapter.
func (s *Service) scope(ch, account string) (channel.Adapter, store.Scope, error) {
	ad, err := s.channels.Get(ch)
	if err != nil {
		return nil, store.Scope{}, fmt.Errorf("%w: %w", ErrInvalidInput, err)
	}
	acct, err := accountName(account)
	if err != nil {
		return nil, store.Scope{}, fmt.Errorf("%w: %w", ErrInvalidInput, err)
	}
	return ad, store.Scope{Channel: ch, Account: acct}, nil
}

func (s *Service) sender(ad channel.Adapter, raw string) (string, error) {
	sender, err := ad.Normalize(raw)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalidInput, err)
	}
	return sender, nil
}

// target resolves a Target into store parameters.
func (s *Service) target(t Target, actor store.Actor) (channel.Adapter, store.ApproveParams, error) {
	ad, scope, err := s.scope(t.Channel, t.Account)
	if err != nil {
		return nil, store.ApproveParams{}, err
	}
	p := store.ApproveParams{Scope: scope, Actor: actor, Now: s.now()}
	in := strings.TrimSpace(t.CodeOrID)
	if strings.HasPrefix(strings.ToLower(in), RequestIDPrefix) {
		if len(in) > MaxNameLen {
			return nil, p, fmt.Errorf("%w: request id too long", ErrInvalidInput)
		}
		p.RequestID = strings.ToLower(in)
		return ad, p, nil
	}
	code, err := NormalizeCode(in)
	if err != nil {
		return nil, p, err
	}
	p.CodeHash = s.codes.hash(code)
	return ad, p, nil
}

// Approve approves the pending request named by t: the sender joins the
// allowlist and is admitted by this Service as soon as Approve returns.
//
// A request approved before, within its code's lifetime, gives a successful
// Approval with Already set: nothing changes, no notice goes out, and it is
// not a failure. Past that lifetime its code is unknown, like an expired
// one.
//
// A code that matches no live request counts as a failed approval; enough of
// them lock approvals on the scope (the error is then a *store.LockoutError
// saying until when). While locked, every approval in the scope is refused;
// `Allow` still works, for a sender the operator knows.
func (s *Service) Approve(ctx context.Context, t Target, notify bool, actor store.Actor) (api.Approval, error) {
	return s.ApproveWith(ctx, t, ApproveOptions{Notify: notify}, actor)
}

// ApproveOptions are the choices of ApproveWith.
type ApproveOptions struct {
	// Notify: the sender is told they were approved, by an outbound
	// message recorded with the approval (and the Approval's Notify text).
	Notify bool
	// Reply, when set, makes messages recorded in the approval's
	// transaction, given the request approved: an owner command's answer.
	Reply func(api.PendingRequest) []store.OutboundMessage
}

// ApproveWith is Approve with the choices of o.
func (s *Service) ApproveWith(ctx context.Context, t Target, o ApproveOptions, actor store.Actor) (api.Approval, error) {
	notify := o.Notify
	ad, p, err := s.target(t, actor)
	if err != nil {
		return api.Approval{}, err
	}
	p.Notify = notify
	p.Outbound = func(r store.Request) []store.OutboundMessage {
		var out []store.OutboundMessage
		if notify {
			out = append(out, store.OutboundMessage{Channel: r.Scope.Channel, Account: r.Scope.Account, To: r.Sender,
				Kind: store.OutboundText, Text: ad.ApprovedText(), Cause: store.CauseApproved})
		}
		if o.Reply != nil {
			out = append(out, o.Reply(pendingFrom(r))...)
		}
		return out
	}
	approved, err := s.st.Approve(ctx, p)
	req, entry := approved.Request, approved.Entry
	if errors.Is(err, store.ErrAlreadyApproved) {
		s.log.Info("pairing: approved already", "channel", p.Scope.Channel, "account", p.Scope.Account,
			"sender", entry.Sender, "request_id", req.ID, "by", actor.Name)
		return api.Approval{Allowed: allowedFrom(entry), RequestID: req.ID, Already: true}, nil
	}
	if errors.Is(err, store.ErrNotFound) && p.RequestID == "" {
		err = s.failedApproval(ctx, p)
	}
	if err != nil {
		return api.Approval{}, err
	}
	// The approval is the next change the view expects, unless the
	// follower is behind: then the view reads the log up to it.
	if !s.view.applyOwn(store.Change{Seq: approved.Seq, Kind: store.KindApproved, Scope: entry.Scope, Sender: entry.Sender}) {
		s.sync(ctx)
	}
	a := api.Approval{Allowed: allowedFrom(entry), RequestID: req.ID}
	if notify {
		a.Notify = ad.ApprovedText()
	}
	s.log.Info("pairing: approved", "channel", p.Scope.Channel, "account", p.Scope.Account,
		"sender", entry.Sender, "request_id", req.ID, "by", actor.Name)
	return a, nil
}

// failedApproval counts a wrong code and turns err into the message the
// operator should see.
//
// A code that belongs to a live request on another account of the channel
// still counts here: the operator named this account, and a code tried on
// one account that cost nothing there would let anyone with approval rights
// find, strike-free, which codes are live on the others. Once counted, the
// hint gives nothing away that approving on the right account would not.
func (s *Service) failedApproval(ctx context.Context, p store.ApproveParams) error {
	lockout := s.pol.Load().lim.lockout
	until, err := s.st.RecordApprovalFailure(ctx, p.Scope, p.Actor, p.Now, lockout)
	if err != nil {
		return err
	}
	s.log.Warn("pairing: approval with a wrong code", "channel", p.Scope.Channel, "account", p.Scope.Account, "by", p.Actor.Name)
	var failure error
	if !until.IsZero() {
		failure = &store.LockoutError{Scope: p.Scope, Until: until, Failures: lockout.MaxFailures}
	} else {
		failure = &detailed{kind: store.ErrNotFound, msg: fmt.Sprintf(
			"no pending request on %s has that code: it may have expired or been mistyped (%d wrong codes within %s lock approvals for %s)",
			p.Scope, lockout.MaxFailures, FormatDuration(lockout.Window), FormatDuration(lockout.LockFor))}
	}
	if account := s.accountOfCode(ctx, p); account != "" {
		return &WrongAccountError{Scope: p.Scope, Account: account, Err: failure}
	}
	return failure
}

// accountOfCode returns the other account of the channel that has a live
// request with p's code, or "". Codes are unique among live codes, and a
// channel holds at most max_pending live requests per account, so this is
// a short read. A failure to read only loses the hint.
func (s *Service) accountOfCode(ctx context.Context, p store.ApproveParams) string {
	reqs, err := s.st.ListRequests(ctx, store.RequestFilter{Channel: p.Scope.Channel}, p.Now)
	if err != nil {
		s.log.Warn("pairing: looking for the code on other accounts failed", "channel", p.Scope.Channel, "err", err)
		return ""
	}
	for _, r := range reqs {
		if r.Scope.Account != p.Scope.Account && hmac.Equal(r.CodeHash, p.CodeHash) {
			return r.Scope.Account
		}
	}
	return ""
}

// WrongAccountError is a wrong code that is the code of a live request on
// another account of the same channel: the operator probably left out or
// mistyped the account. It counted as a wrong code on Scope all the same;
// Err is that failure (not found, or the lockout it caused), which the
// error unwraps to.
type WrongAccountError struct {
	Scope   store.Scope // where the code was typed
	Account string      // the account of the channel whose request has it
	Err     error
}

func (e *WrongAccountError) Error() string {
	return fmt.Sprintf("%v; that code is pending on %s/%s", e.Err, e.Scope.Channel, e.Account)
}

func (e *WrongAccountError) Unwrap() error { return e.Err }

// AlreadyApprovedError is Reject's answer for a request that was approved
// already: there is nothing to reject, and removing the sender is a revoke.
// It unwraps to store.ErrAlreadyApproved.
type AlreadyApprovedError struct {
	Scope     store.Scope
	RequestID string
	Sender    string
}

func (e *AlreadyApprovedError) Error() string {
	return fmt.Sprintf("request %s on %s was approved already, so there is nothing to reject: %s is allowed; to remove them, revoke them",
		e.RequestID, e.Scope, e.Sender)
}

func (e *AlreadyApprovedError) Unwrap() error { return store.ErrAlreadyApproved }

// detailed is an error whose message stands on its own for the operator and
// that still matches its sentinel with errors.Is.
type detailed struct {
	kind error
	msg  string
}

func (e *detailed) Error() string { return e.msg }
func (e *detailed) Unwrap() error { return e.kind }

// FormatDuration writes a duration the way people do: 1h, 1h30m, 10m, 45s.
func FormatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// Reject deletes the pending request named by t and declines its sender for
// the decline window: they get no new code until it passes. A request that
// was approved already is not rejected (an error wrapping
// store.ErrAlreadyApproved says to revoke the sender instead) and is not a
// failure.
func (s *Service) Reject(ctx context.Context, t Target, actor store.Actor) (api.PendingRequest, error) {
	return s.RejectWith(ctx, t, nil, actor)
}

// RejectWith is Reject that records reply(request) in the rejection's
// transaction (an owner command's answer); reply may be nil.
func (s *Service) RejectWith(ctx context.Context, t Target, reply func(api.PendingRequest) []store.OutboundMessage, actor store.Actor) (api.PendingRequest, error) {
	_, p, err := s.target(t, actor)
	if err != nil {
		return api.PendingRequest{}, err
	}
	if reply != nil {
		p.Outbound = func(r store.Request) []store.OutboundMessage { return reply(pendingFrom(r)) }
	}
	req, err := s.st.Reject(ctx, p)
	if errors.Is(err, store.ErrAlreadyApproved) {
		return api.PendingRequest{}, &AlreadyApprovedError{Scope: p.Scope, RequestID: req.ID, Sender: req.Sender}
	}
	if errors.Is(err, store.ErrNotFound) && p.RequestID == "" {
		err = s.failedApproval(ctx, p)
	}
	if err != nil {
		return api.PendingRequest{}, err
	}
	return pendingFrom(req), nil
}

// Allow puts senders on the allowlist without a request (seeding, or a
// sender the operator knows). It is idempotent and reactivates revoked
// entries. Every sender is checked before any is added, and all are added
// in one transaction.
func (s *Service) Allow(ctx context.Context, ch, account string, senders []string, via store.Via, actor store.Actor) ([]api.AllowResult, error) {
	named := make([]NamedSender, len(senders))
	for i, raw := range senders {
		named[i].Sender = raw
	}
	return s.AllowNamed(ctx, ch, account, named, via, actor)
}

// NamedSender is a sender to allow and the display name to record for them
// ("" keeps the name on record).
type NamedSender struct {
	Sender string
	Name   string
}

// InvalidSendersError is the refusal of an Allow whose list holds senders
// that cannot be right: each by its position in the list, so a caller can
// point at the line it came from. Nothing was added. It matches
// ErrInvalidInput.
type InvalidSendersError struct {
	Senders []InvalidSender
}

// InvalidSender is one sender an Allow refused.
type InvalidSender struct {
	Index int   // in the list given
	Err   error // the channel's reason, wrapping channel.ErrInvalidSender
}

func (e *InvalidSendersError) Error() string {
	msgs := make([]string, len(e.Senders))
	for i, s := range e.Senders {
		msgs[i] = s.Err.Error()
	}
	return strings.Join(msgs, "; ")
}

// Is makes errors.Is(err, ErrInvalidInput) hold.
func (e *InvalidSendersError) Is(target error) bool { return target == ErrInvalidInput }

// AllowNamed is Allow with a display name for each sender, cleaned like the
// names senders give themselves. Every sender is checked before any is
// added: if any cannot be right, the error is an *InvalidSendersError
// naming all of them.
func (s *Service) AllowNamed(ctx context.Context, ch, account string, senders []NamedSender, via store.Via, actor store.Actor) ([]api.AllowResult, error) {
	if via == "" {
		via = store.ViaManual
	}
	list := make([]ImportedSender, len(senders))
	for i, n := range senders {
		list[i].NamedSender = n
	}
	return s.allow(ctx, ch, account, list, store.AllowParams{Via: via, Actor: actor})
}

// ImportedSender is a sender an import brings over from another pairing
// system.
type ImportedSender struct {
	NamedSender
	Revoked bool // the source had revoked them
}

// Import brings senders over from another pairing system (via import),
// checked like AllowNamed's, in one transaction. It never undoes what
// pairgate holds: a sender revoked here stays revoked, and one already
// allowed stays allowed. A sender its source had revoked comes over
// revoked, so they are on record and never admitted; Changed is false for
// every sender left as it was.
func (s *Service) Import(ctx context.Context, ch, account string, senders []ImportedSender, actor store.Actor) ([]api.AllowResult, error) {
	return s.allow(ctx, ch, account, senders, store.AllowParams{Via: store.ViaImport, Actor: actor, KeepRevoked: true})
}

// allow checks senders and writes them with p (its Scope, Senders and Now
// are set here).
func (s *Service) allow(ctx context.Context, ch, account string, senders []ImportedSender, p store.AllowParams) ([]api.AllowResult, error) {
	ad, scope, err := s.scope(ch, account)
	if err != nil {
		return nil, err
	}
	if len(senders) == 0 {
		return nil, fmt.Errorf("%w: no sender given", ErrInvalidInput)
	}
	list := make([]store.AllowSender, len(senders))
	var invalid InvalidSendersError
	for i, in := range senders {
		sender, err := ad.Normalize(in.Sender)
		if err != nil {
			invalid.Senders = append(invalid.Senders, InvalidSender{Index: i, Err: err})
			continue
		}
		list[i] = store.AllowSender{Sender: sender, Name: cleanName(in.Name), Revoked: in.Revoked}
	}
	if len(invalid.Senders) > 0 {
		return nil, &invalid
	}
	// One transaction for the whole list: a command killed half-way leaves
	// all of them allowed or none.
	p.Scope, p.Senders, p.Now = scope, list, s.now()
	res, err := s.st.Allow(ctx, p)
	if err != nil {
		return nil, err
	}
	s.sync(ctx)
	out := make([]api.AllowResult, len(res))
	for i, r := range res {
		out[i] = api.AllowResult{AllowedSender: allowedFrom(r.Entry), Changed: r.Changed}
	}
	return out, nil
}

// Revoke removes a sender from the allowlist (a soft delete). This Service
// stops admitting them before Revoke returns; other processes within 1 s.
func (s *Service) Revoke(ctx context.Context, ch, account, rawSender string, actor store.Actor) (api.AllowedSender, error) {
	return s.RevokeWith(ctx, ch, account, rawSender, nil, actor)
}

// RevokeWith is Revoke that records reply(scope, sender) in the
// revocation's transaction (an owner command's answer); reply may be nil.
func (s *Service) RevokeWith(ctx context.Context, ch, account, rawSender string,
	reply func(scope store.Scope, sender string) []store.OutboundMessage, actor store.Actor) (api.AllowedSender, error) {
	ad, scope, err := s.scope(ch, account)
	if err != nil {
		return api.AllowedSender{}, err
	}
	sender, err := s.sender(ad, rawSender)
	if err != nil {
		return api.AllowedSender{}, err
	}
	var out []store.OutboundMessage
	if reply != nil {
		out = reply(scope, sender)
	}
	e, err := s.st.Revoke(ctx, scope, sender, actor, s.now(), out...)
	if errors.Is(err, store.ErrNotFound) {
		if keys := s.pol.Load().configKeys(scope, sender); len(keys) > 0 {
			return api.AllowedSender{}, &ConfigAllowedError{Scope: scope, Sender: sender, Keys: keys}
		}
	}
	if err != nil {
		return api.AllowedSender{}, err
	}
	// Even if reading the log back fails, this process stops admitting the
	// sender now: removing from the view can only fail closed.
	s.view.remove(scope, sender)
	s.sync(ctx)
	return allowedFrom(e), nil
}

// Filter selects by channel and account; empty fields match all. An account
// without a channel is refused.
type Filter struct {
	Channel string
	Account string
}

func (s *Service) filter(f Filter) (store.RequestFilter, error) {
	if f.Channel == "" {
		if f.Account != "" {
			return store.RequestFilter{}, fmt.Errorf("%w: --account needs a channel", ErrInvalidInput)
		}
		return store.RequestFilter{}, nil
	}
	_, scope, err := s.scope(f.Channel, f.Account)
	if err != nil {
		return store.RequestFilter{}, err
	}
	if f.Account == "" {
		scope.Account = ""
	}
	return store.RequestFilter(scope), nil
}

// ListPending returns the live pending requests, oldest first.
func (s *Service) ListPending(ctx context.Context, f Filter) ([]api.PendingRequest, error) {
	rf, err := s.filter(f)
	if err != nil {
		return nil, err
	}
	reqs, err := s.st.ListRequests(ctx, rf, s.now())
	if err != nil {
		return nil, err
	}
	out := make([]api.PendingRequest, len(reqs))
	for i, r := range reqs {
		out[i] = pendingFrom(r)
	}
	return out, nil
}

// ListAllowed returns the allowlist, revoked entries too when asked, and
// the senders admitted by allow_from in the config (Via api.ViaConfig; a
// channel's own list under AnyAccount, which an account filter matches),
// ordered by channel, account and sender.
func (s *Service) ListAllowed(ctx context.Context, f Filter, includeRevoked bool) ([]api.AllowedSender, error) {
	rf, err := s.filter(f)
	if err != nil {
		return nil, err
	}
	entries, err := s.st.ListAllowed(ctx, rf, includeRevoked)
	if err != nil {
		return nil, err
	}
	out := make([]api.AllowedSender, len(entries))
	for i, e := range entries {
		out[i] = allowedFrom(e)
	}
	for _, c := range s.pol.Load().fromConfig {
		if (rf.Channel == "" || rf.Channel == c.channel) && (rf.Account == "" || rf.Account == c.account || c.account == AnyAccount) {
			out = append(out, api.AllowedSender{Channel: c.channel, Account: c.account, Sender: c.sender, Via: api.ViaConfig, Config: c.key})
		}
	}
	slices.SortStableFunc(out, func(a, b api.AllowedSender) int {
		return cmp.Or(cmp.Compare(a.Channel, b.Channel), cmp.Compare(a.Account, b.Account), cmp.Compare(a.Sender, b.Sender))
	})
	return out, nil
}

// AllowedByConfig returns the allow_from keys of the config that admit a
// sender on a channel and account ("" for DefaultAccount); none when only
// the store's allowlist (or nothing) does.
func (s *Service) AllowedByConfig(ch, account, rawSender string) ([]string, error) {
	ad, scope, err := s.scope(ch, account)
	if err != nil {
		return nil, err
	}
	sender, err := s.sender(ad, rawSender)
	if err != nil {
		return nil, err
	}
	return s.pol.Load().configKeys(scope, sender), nil
}

// configKeys returns the allow_from keys that list sender for scope.
func (p *policy) configKeys(scope store.Scope, sender string) []string {
	var keys []string
	for _, c := range p.fromConfig {
		if c.channel == scope.Channel && c.sender == sender && (c.account == scope.Account || c.account == AnyAccount) {
			keys = append(keys, c.key)
		}
	}
	return keys
}

// ListLocked returns the scopes whose approvals are locked now.
func (s *Service) ListLocked(ctx context.Context, f Filter) ([]api.Lockout, error) {
	rf, err := s.filter(f)
	if err != nil {
		return nil, err
	}
	locks, err := s.st.Lockouts(ctx, rf, s.now())
	if err != nil {
		return nil, err
	}
	out := make([]api.Lockout, len(locks))
	for i, l := range locks {
		out[i] = api.Lockout{Channel: l.Scope.Channel, Account: l.Scope.Account, Until: l.Until, Failures: l.Failures}
	}
	return out, nil
}

// Unlock lifts the lock on approvals of a channel and account, recording
// who did it, and starts the count of wrong codes from zero. A scope that is
// not locked is no error: the result says it was not.
func (s *Service) Unlock(ctx context.Context, ch, account string, actor store.Actor) (api.Unlocked, error) {
	_, scope, err := s.scope(ch, account)
	if err != nil {
		return api.Unlocked{}, err
	}
	u := api.Unlocked{Channel: scope.Channel, Account: scope.Account}
	l, err := s.st.Unlock(ctx, scope, actor, s.now())
	if errors.Is(err, store.ErrNotFound) {
		return u, nil
	}
	if err != nil {
		return api.Unlocked{}, err
	}
	s.log.Info("pairing: approvals unlocked", "channel", scope.Channel, "account", scope.Account, "by", actor.Name)
	u.WasLocked, u.Until, u.Failures = true, &l.Until, l.Failures
	return u, nil
}

// ClearPending deletes pending requests and returns how many.
func (s *Service) ClearPending(ctx context.Context, f Filter, actor store.Actor) (int, error) {
	rf, err := s.filter(f)
	if err != nil {
		return 0, err
	}
	return s.st.ClearRequests(ctx, rf, actor, s.now())
}

// sync brings the in-memory allowlist up to the store's latest change, so a
// change made through this Service is visible when the call returns. A
// failure here is logged: Run retries, and the store already holds the
// change.
func (s *Service) sync(ctx context.Context) {
	if err := s.view.catchUp(ctx, s.st); err != nil {
		s.log.Warn("pairing: allowlist view behind the store; will retry", "err", err)
	}
}

// FindPending finds the request that codeOrID names on any channel and
// account, live or approved within its lifetime: a request id, or a code
// (as Target.CodeOrID takes it). found is false when none does; a code that cannot be a code is ErrInvalidInput.
// An owner command names a request without its scope; the approval itself
// then runs on the scope found, with its lockout.
func (s *Service) FindPending(ctx context.Context, codeOrID string) (r api.PendingRequest, found bool, err error) {
	in := strings.TrimSpace(codeOrID)
	var id string
	var hash []byte
	if strings.HasPrefix(strings.ToLower(in), RequestIDPrefix) {
		id = strings.ToLower(in)
	} else {
		code, err := NormalizeCode(in)
		if err != nil {
			return api.PendingRequest{}, false, err
		}
		hash = s.codes.hash(code)
	}
	reqs, err := s.st.ListRequests(ctx, store.RequestFilter{}, s.now())
	if err != nil {
		return api.PendingRequest{}, false, err
	}
	for _, req := range reqs {
		if (id != "" && req.ID == id) || (hash != nil && hmac.Equal(req.CodeHash, hash)) {
			return pendingFrom(req), true, nil
		}
	}
	// Approved a moment ago: its scope, where approving again answers
	// "approved already" and is no wrong code.
	req, err := s.st.FindApproved(ctx, hash, id, s.now())
	if errors.Is(err, store.ErrNotFound) {
		return api.PendingRequest{}, false, nil
	}
	if err != nil {
		return api.PendingRequest{}, false, err
	}
	return pendingFrom(req), true, nil
}
