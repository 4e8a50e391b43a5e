// Package pairing is DM pairing: the gate that decides, for every inbound
// message, whether to admit the sender, challenge them with a one-time code,
// or drop the message; and the operator's side: approve, reject, allow,
// revoke and clear pending requests.
//
// A Service answers Admit for allowed senders from an in-memory view of the
// allowlist that follows the store's change log, so the hot path does no I/O
// and allocates nothing. Changes made through the Service are in the view
// when the call returns; changes made by another process or replica arrive
// through Run within the store's notification latency (≤ 1 s).
//
// What the gate and the operator methods return are the types of package
// api (api.Decision, api.PendingRequest, api.AllowedSender, ...): the JSON
// the HTTP API answers with and the CLI prints with --json.
package pairing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync/atomic"
	"time"

	"github.com/pairgate/pairgate/api"
	"github.com/pairgate/pairgate/channel"
	"github.com/pairgate/pairgate/config"
	"github.com/pairgate/pairgate/internal/termtext"
	"github.com/pairgate/pairgate/secret"
	"github.com/pairgate/pairgate/store"
)

// Sentinel errors for callers of the operator methods. Store errors
// (store.ErrNotFound, store.ErrLockedOut, store.ErrUnavailable) pass through
// wrapped.
var (
	// ErrInvalidInput: a channel, account, sender or code that cannot be
	// right. The message names the field and what it should look like.
	ErrInvalidInput = errors.New("invalid input")
)

// MaxNameLen bounds sender display names and request ids, in bytes.
// Sender ids are bounded by their channel's adapter (channel.MaxSenderLen),
// account names by channel.NormalizeAccount.
const MaxNameLen = 128

// DefaultAccount is the account of a channel when none is named.
const DefaultAccount = channel.DefaultAccount

// Inbound is one message as the gate sees it.
type Inbound struct {
	Channel string
	// Account is "" for DefaultAccount, else a name channel.NormalizeAccount
	// accepts; it is case-folded, so "Work" is the account "work".
	Account    string
	Sender     string // raw; normalised by the channel's adapter
	SenderName string
	Chat       api.Chat // "" means api.ChatDM
	// ReplyBy: api.ReplyByOutbound records what the sender is to be told
	// as an outbound message instead of putting it in Decision.Reply
	// ("" means api.ReplyByAnswer).
	ReplyBy api.ReplyBy
}

// Options configure a Service.
type Options struct {
	Store    store.Store
	Secret   secret.Secret
	Config   *config.Config    // nil means config.Default()
	Channels *channel.Registry // nil means channel.NewRegistry()
	Now      func() time.Time  // nil means time.Now
	Logger   *slog.Logger      // nil means discard
}

// Service is DM pairing over one store. It is safe for concurrent use.
type Service struct {
	st       store.Store
	channels *channel.Registry
	now      func() time.Time
	log      *slog.Logger
	codes    codec
	view     *view
	budget   noticeBudget // of "too many requests" notices per scope
	// pol is what the Service takes from the config, resolved once so
	// Admit does a couple of map lookups instead of walking the config.
	// Reconfigure replaces it whole; every call loads it once and decides
	// by that one version.
	pol atomic.Pointer[policy]
}

// policy is a resolved configuration: per channel, what the gate needs
// before it looks at the allowlist, and the limits.
type policy struct {
	cfg        *config.Config // canonical
	lim        limits
	routes     map[string]*route
	fromConfig []configSender // every allow_from entry, for listings
}

// configSender is one allow_from entry of the config. Account is
// AnyAccount for a channel's own list.
type configSender struct {
	channel, account, sender string
	key                      string // where it is: pairing.channels.telegram.allow_from
}

// AnyAccount is the account of an allow_from entry of a channel's own list
// (pairing.channels.<channel>.allow_from), which admits the sender on every
// account of the channel. No real account has this name.
const AnyAccount = "*"

// route is one channel's adapter, policies and allow_from lists.
type route struct {
	ad       channel.Adapter
	policy   config.Policy       // for accounts not named in the config
	allow    map[string]struct{} // the channel's allow_from, normalised
	accounts map[string]accountRoute
}

// accountRoute is an account named in the config: its resolved policy and
// allow_from (its own entries plus the channel's).
type accountRoute struct {
	policy config.Policy
	allow  map[string]struct{}
}

type limits struct {
	codeTTL, rateWindow, declineWindow time.Duration
	maxPending                         int
	lockout                            store.LockoutPolicy
}

// New makes a Service. It takes the config through config.Canonical, so a
// config built in Go is checked and normalised (allow_from entries, account
// names) by the same rules as a file, and fails naming every problem.
func New(opts Options) (*Service, error) {
	if opts.Store == nil {
		return nil, errors.New("pairing: no store")
	}
	s := &Service{
		st:       opts.Store,
		channels: opts.Channels,
		now:      opts.Now,
		log:      opts.Logger,
		view:     newView(),
		codes: codec{
			codeKey: opts.Secret.Derive("pairgate/v1/dm-code"),
			hashKey: opts.Secret.Derive("pairgate/v1/dm-code-hash"),
		},
	}
	if s.channels == nil {
		s.channels = channel.NewRegistry()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	cfg := opts.Config
	if cfg == nil {
		cfg = config.Default()
	}
	p, err := s.resolve(cfg)
	if err != nil {
		return nil, err
	}
	s.pol.Store(p)
	return s, nil
}

// Reconfigure puts cfg's policies, allow_from lists and limits into effect
// at once, for every call that starts after it returns; calls in progress
// finish under the configuration they started with. A config that New
// would refuse is refused, naming every problem, and the running one is
// kept. The allowlist in the store is not touched.
func (s *Service) Reconfigure(cfg *config.Config) error {
	p, err := s.resolve(cfg)
	if err != nil {
		return err
	}
	s.pol.Store(p)
	return nil
}

// Config returns the configuration in effect, in canonical form. The
// caller must not change it.
func (s *Service) Config() *config.Config { return s.pol.Load().cfg }

// resolve checks and normalises cfg (config.Canonical) and resolves it into
// a policy.
func (s *Service) resolve(cfg *config.Config) (*policy, error) {
	canon, err := cfg.Canonical()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidInput, err)
	}
	l := canon.Pairing.Limits
	p := &policy{
		cfg: canon,
		lim: limits{
			codeTTL:       l.CodeTTL.Std(),
			rateWindow:    l.RateWindow.Std(),
			declineWindow: l.DeclineWindow.Std(),
			maxPending:    l.MaxPending,
			lockout: store.LockoutPolicy{
				MaxFailures: l.MaxFailures,
				Window:      l.FailureWindow.Std(),
				LockFor:     l.Lockout.Std(),
			},
		},
		routes: map[string]*route{},
	}
	for name := range canon.Pairing.Channels {
		if _, err := s.channels.Get(name); err != nil {
			return nil, fmt.Errorf("%w: pairing.channels.%s: %w", ErrInvalidInput, name, err)
		}
	}
	for _, name := range channel.Names() {
		ad, err := s.channels.Get(name)
		if err != nil {
			continue // a registry without this channel: Admit says unknown_channel
		}
		ch := canon.Pairing.Channels[name]
		key := "pairing.channels." + name
		r := &route{ad: ad, policy: canon.PolicyFor(name, ""), allow: set(ch.AllowFrom), accounts: map[string]accountRoute{}}
		p.fromConfig = appendSenders(p.fromConfig, name, AnyAccount, key+".allow_from", ch.AllowFrom)
		for _, acct := range slices.Sorted(maps.Keys(ch.Accounts)) {
			a := ch.Accounts[acct]
			ar := accountRoute{policy: canon.PolicyFor(name, acct), allow: maps.Clone(r.allow)}
			maps.Copy(ar.allow, set(a.AllowFrom))
			r.accounts[acct] = ar
			p.fromConfig = appendSenders(p.fromConfig, name, acct, key+".accounts."+acct+".allow_from", a.AllowFrom)
		}
		p.routes[name] = r
	}
	return p, nil
}

func set(list []string) map[string]struct{} {
	m := make(map[string]struct{}, len(list))
	for _, s := range list {
		m[s] = struct{}{}
	}
	return m
}

// appendSenders adds a list's entries, each once, sorted.
func appendSenders(to []configSender, ch, account, key string, list []string) []configSender {
	for _, sender := range slices.Compact(slices.Sorted(slices.Values(list))) {
		to = append(to, configSender{channel: ch, account: account, sender: sender, key: key})
	}
	return to
}

// Load reads the allowlist into memory. Admit loads it on first use; a
// daemon calls Load at start so the first message does not wait, and so a
// broken store is reported before serving.
func (s *Service) Load(ctx context.Context) error {
	if err := s.view.load(ctx, s.st); err != nil {
		return fmt.Errorf("load allowlist: %w", err)
	}
	return nil
}

// Run keeps the in-memory allowlist current with changes made by other
// processes and replicas until ctx ends, retrying while the store is
// unavailable. A gateway runs it in a goroutine for the life of the Service.
func (s *Service) Run(ctx context.Context) error {
	// A store that is down at start is waited for, not given up on:
	// until the allowlist loads, Admit drops everyone as unavailable.
	for {
		err := s.Load(ctx)
		if err == nil {
			break
		}
		s.log.Warn("pairing: loading the allowlist failed; retrying", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
	store.Follow(ctx, s.st, store.FollowOptions{
		After:   s.view.position(),
		OnError: func(err error) { s.log.Warn("pairing: following the change log failed; will retry", "err", err) },
		// Pruned past: the snapshot is the truth, read it again.
		OnCompacted: func(ctx context.Context) (int64, error) { return s.view.reload(ctx, s.st) },
	}, s.view.apply)
	return nil
}

// Admit runs the gate for one inbound message (SPEC section 2). It never
// returns an error: anything that goes wrong is a drop with reason
// unavailable, never an admit.
func (s *Service) Admit(ctx context.Context, in Inbound) api.Decision {
	pol := s.pol.Load()
	r := pol.routes[in.Channel]
	if r == nil {
		return api.Decision{Verdict: api.Drop, Reason: api.ReasonUnknownChannel}
	}
	account, err := accountName(in.Account)
	if err != nil {
		return api.Decision{Verdict: api.Drop, Reason: api.ReasonInvalidAccount}
	}
	sender, err := r.ad.Normalize(in.Sender)
	if err != nil {
		return api.Decision{Verdict: api.Drop, Reason: api.ReasonInvalidSender}
	}
	policy, allow := r.policy, r.allow
	if a, ok := r.accounts[account]; ok {
		policy, allow = a.policy, a.allow
	}
	switch policy {
	case config.PolicyDisabled:
		return api.Decision{Verdict: api.Drop, Reason: api.ReasonDisabled}
	case config.PolicyOpen:
		return api.Decision{Verdict: api.Admit, Reason: api.ReasonOpen}
	}
	scope := store.Scope{Channel: in.Channel, Account: account}
	if !s.view.loaded.Load() {
		if err := s.Load(ctx); err != nil {
			s.log.Error("pairing: allowlist unavailable; dropping", "channel", scope.Channel, "account", scope.Account, "err", err)
			return api.Decision{Verdict: api.Drop, Reason: api.ReasonUnavailable}
		}
	}
	if _, ok := allow[sender]; ok || s.view.contains(scope, sender) {
		return api.Decision{Verdict: api.Admit, Reason: api.ReasonAllowed}
	}
	if in.Chat == api.ChatGroup {
		return api.Decision{Verdict: api.Drop, Reason: api.ReasonGroup}
	}
	if policy != config.PolicyPairing {
		return api.Decision{Verdict: api.Drop, Reason: api.ReasonNotAllowed}
	}
	d := s.challenge(ctx, pol, r.ad, scope, sender, cleanName(in.SenderName), replyBy(in))
	s.log.Debug("pairing: gate decision", "channel", scope.Channel, "account", scope.Account,
		"sender", sender, "verdict", d.Verdict, "reason", d.Reason, "request_id", d.RequestID)
	return d
}

// challenge applies rule 5 for a sender who is not allowed. The owner's
// notices are recorded with a new request; what the sender is told goes in
// the decision's reply or, by api.ReplyByOutbound, is recorded with its
// cause as an outbound message.
func (s *Service) challenge(ctx context.Context, pol *policy, ad channel.Adapter, scope store.Scope, sender, name string, by api.ReplyBy) api.Decision {
	lim := pol.lim
	now := s.now()
	unavailable := func(step string, err error) api.Decision { return s.unavailable(scope, step, err) }
	// Repeat messages from a pending sender and senders arriving at a full
	// scope are the common cases under load: answer them from one read
	// (the lock, a decline, the sender's request and the scope's count),
	// so only a sender who may get a new code takes the write lock.
	g, err := s.st.GateState(ctx, scope, sender, now, now.Add(-lim.declineWindow), lim.maxPending)
	switch {
	case err != nil:
		return unavailable("read gate state", err)
	case !g.LockedUntil.IsZero():
		return api.Decision{Verdict: api.Drop, Reason: api.ReasonLockedOut}
	case g.Declined:
		return api.Decision{Verdict: api.Drop, Reason: api.ReasonDeclined}
	case g.Found:
		return s.remind(ctx, lim, ad, scope, g.Request, now, by)
	case g.Live >= lim.maxPending:
		return s.tooMany(ctx, lim, ad, scope, sender, now, by)
	}
	actor := store.Actor{Name: "gate", Source: "gate"}
	// A new request id (and so a new code) per attempt: a clash with a live
	// code is astronomically rare, but handled rather than assumed away.
	for attempt := 0; attempt < 4; attempt++ {
		id := newRequestID()
		code := s.codes.code(id)
		out := pol.notices(scope, sender, name, id)
		if by == api.ReplyByOutbound {
			out = append(out, codeMessage(scope, sender, id, now.Add(lim.codeTTL), store.CauseChallenge))
		}
		req, err := s.st.CreateRequest(ctx, store.CreateRequestParams{
			Request: store.Request{ID: id, Scope: scope, Sender: sender, Name: name, CodeHash: s.codes.hash(code),
				CreatedAt: now, ExpiresAt: now.Add(lim.codeTTL)},
			MaxPending: lim.maxPending,
			Actor:      actor,
			Outbound:   out,
		})
		switch {
		case err == nil:
			return s.challengeDecision(ad, scope, req.ID, code, lim.codeTTL, by)
		case errors.Is(err, store.ErrCodeConflict):
			continue
		case errors.Is(err, store.ErrAllowed):
			// Approved elsewhere a moment ago; the view catches up shortly.
			return api.Decision{Verdict: api.Admit, Reason: api.ReasonAllowed}
		case errors.Is(err, store.ErrPending):
			return s.remind(ctx, lim, ad, scope, req, now, by)
		case errors.Is(err, store.ErrCapReached):
			return s.tooMany(ctx, lim, ad, scope, sender, now, by)
		default:
			return unavailable("create request", err)
		}
	}
	return unavailable("create request", errors.New("no free code after 4 attempts"))
}

// unavailable is the answer to any storage error: drop, never admit.
func (s *Service) unavailable(scope store.Scope, step string, err error) api.Decision {
	s.log.Error("pairing: store error; dropping", "step", step, "channel", scope.Channel, "account", scope.Account, "err", err)
	return api.Decision{Verdict: api.Drop, Reason: api.ReasonUnavailable}
}

// remind answers a sender who already has a live request: the same code
// again once the rate window has passed since it was last sent (exactly one
// of several gateways sends it), otherwise silence.
func (s *Service) remind(ctx context.Context, lim limits, ad channel.Adapter, scope store.Scope, req store.Request, now time.Time, by api.ReplyBy) api.Decision {
	notAfter := now.Add(-lim.rateWindow)
	if req.LastSentAt.After(notAfter) {
		return api.Decision{Verdict: api.Drop, Reason: api.ReasonPending}
	}
	var out []store.OutboundMessage
	if by == api.ReplyByOutbound {
		out = append(out, codeMessage(scope, req.Sender, req.ID, req.ExpiresAt, store.CauseReminder))
	}
	sent, err := s.st.MarkRequestSent(ctx, req.ID, notAfter, now, out...)
	if err != nil {
		return s.unavailable(scope, "mark request sent", err)
	}
	if !sent {
		return api.Decision{Verdict: api.Drop, Reason: api.ReasonPending}
	}
	return s.challengeDecision(ad, scope, req.ID, s.codes.code(req.ID), req.ExpiresAt.Sub(now), by)
}

// tooMany answers a sender arriving at a full scope, telling them once per
// rate window.
func (s *Service) tooMany(ctx context.Context, lim limits, ad channel.Adapter, scope store.Scope, sender string, now time.Time, by api.ReplyBy) api.Decision {
	d := api.Decision{Verdict: api.Drop, Reason: api.ReasonMaxPending}
	if !s.budget.allows(scope, now, lim.rateWindow) {
		return d // a flood: no write for it (see noticeBudget)
	}
	var out []store.OutboundMessage
	if by == api.ReplyByOutbound {
		out = append(out, store.OutboundMessage{Channel: scope.Channel, Account: scope.Account, To: sender,
			Kind: store.OutboundText, Text: ad.TooManyText(), Cause: store.CauseMaxPending})
	}
	told, err := s.st.MarkNotice(ctx, scope, sender, string(api.ReasonMaxPending), now.Add(-lim.rateWindow), now, out...)
	if err != nil {
		return s.unavailable(scope, "mark notice", err)
	}
	if told {
		s.budget.spend(scope, now, lim.rateWindow)
	}
	if told && by != api.ReplyByOutbound {
		d.Reply = ad.TooManyText()
	}
	return d
}

func (s *Service) challengeDecision(ad channel.Adapter, scope store.Scope, id, code string, ttl time.Duration, by api.ReplyBy) api.Decision {
	d := api.Decision{
		Verdict:   api.Challenge,
		Reason:    api.ReasonChallenged,
		Code:      code,
		RequestID: id,
	}
	if by != api.ReplyByOutbound {
		d.Reply = ad.ChallengeText(channel.Challenge{Channel: scope.Channel, Account: scope.Account, Code: code, TTL: ttl})
	}
	return d
}

// accountName returns the canonical account for what a caller passed: ""
// is DefaultAccount, anything else goes through channel.NormalizeAccount.
func accountName(raw string) (string, error) {
	if raw == "" {
		return DefaultAccount, nil
	}
	return channel.NormalizeAccount(raw)
}

// cleanName makes a display name safe to store and show, by the rule every
// piece of outside text follows (termtext.Clean): control and bidi
// characters dropped, invalid UTF-8 replaced, cut to MaxNameLen bytes on a
// rune boundary.
func cleanName(name string) string {
	return termtext.Clean(name, MaxNameLen)
}
