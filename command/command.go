// Package command runs the owner's commands in chat: /pair, /pending,
// /approve, /reject, /revoke, /devices and /approve-device (SPEC section 4).
//
// A gateway hands pairgate every message that starts with "/" before any
// agent sees it. Only a sender listed as an owner (config owner.senders, or
// the notice chat) may run a command; the check is made on every command,
// from the configuration in effect. A non-owner gets one plain refusal,
// the same for every command, which says nothing of what the command would
// have done. A message that is no pairgate command is not handled, and the
// gateway passes it on.
//
// The answer is outbound messages to the sender who sent the command, on
// the channel and account it came in on, never to anyone else. Where a
// command changes something (an approval, a setup code), its answer is
// recorded in the same transaction as the change.
package command

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/pairgate/pairgate/api"
	"github.com/pairgate/pairgate/channel"
	"github.com/pairgate/pairgate/device"
	"github.com/pairgate/pairgate/internal/termtext"
	"github.com/pairgate/pairgate/pairing"
	"github.com/pairgate/pairgate/store"
)

// ErrInvalidInput is wrapped by the errors of a request that cannot be a
// command message (no channel, no sender, an unknown chat). It is
// pairing's: callers that map one map both.
var ErrInvalidInput = pairing.ErrInvalidInput

// MaxTextLen bounds a command message, in bytes.
const MaxTextLen = 4096

// Refusal is what a non-owner is told, whatever the command, once per rate
// window.
const Refusal = "Sorry, I can't do that."

// Options configure a Service.
type Options struct {
	Pairing *pairing.Service // required; its configuration says who the owners are
	Devices *device.Service  // nil: /pair, /devices and /approve-device answer that device pairing is off
	Store   store.Store
	Now     func() time.Time
	Logger  *slog.Logger
}

// Service runs owner commands. It is safe for concurrent use.
type Service struct {
	o Options
}

// New makes a Service.
func New(o Options) (*Service, error) {
	if o.Pairing == nil || o.Store == nil {
		return nil, errors.New("command: Pairing and Store are required")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{o: o}, nil
}

// run is one command being answered.
type run struct {
	s      *Service
	ctx    context.Context
	scope  store.Scope // where it came in, where the answer goes
	sender string      // normalised
	chat   api.Chat
	actor  store.Actor
}

// reply is a text to the command's sender.
func (r *run) reply(text string) store.OutboundMessage {
	return store.OutboundMessage{Channel: r.scope.Channel, Account: r.scope.Account, To: r.sender, Kind: store.OutboundText,
		Text: text, Cause: store.CauseCommand}
}

// say records text as the answer when nothing else is recorded with it.
func (r *run) say(text string) (int, error) {
	if _, err := r.s.o.Store.AppendOutbound(r.ctx, []store.OutboundMessage{r.reply(text)}, r.s.o.Now()); err != nil {
		return 0, err
	}
	return 1, nil
}

// commands maps each command to what runs it; args are the words after it.
var commands = map[string]func(r *run, args []string) (int, error){
	"pair":           (*run).pair,
	"pending":        (*run).pending,
	"approve":        (*run).approve,
	"reject":         (*run).reject,
	"revoke":         (*run).revoke,
	"devices":        (*run).devices,
	"approve-device": (*run).approveDevice,
	"help":           (*run).help,
}

// Parse splits a command message into its name (lowercase, without the
// "/" and a Telegram "@botname" suffix) and its words. ok is false for a
// message that does not start with "/".
func Parse(text string) (name string, args []string, ok bool) {
	text = strings.TrimSpace(text)
	if !strings.HasPrefix(text, "/") {
		return "", nil, false
	}
	words := strings.Fields(text[1:])
	if len(words) == 0 {
		return "", nil, false
	}
	name, _, _ = strings.Cut(strings.ToLower(words[0]), "@")
	if name == "" || strings.TrimLeft(name, "abcdefghijklmnopqrstuvwxyz0123456789_-") != "" {
		return "", nil, false // "//", "/?": no command's name
	}
	return name, words[1:], true
}

// Handle runs the command in req, if it is one of pairgate's, and records
// its answer. An error is a request that cannot be answered (ErrInvalidInput)
// or a store that is unavailable; a command that fails (an unknown code, a
// lockout) is handled, and its answer says why.
func (s *Service) Handle(ctx context.Context, req api.CommandRequest) (api.CommandResult, error) {
	if req.Channel == "" || req.Sender == "" {
		return api.CommandResult{}, fmt.Errorf(`%w: fields "channel" and "sender" are required`, ErrInvalidInput)
	}
	switch req.Chat {
	case "", api.ChatDM, api.ChatGroup:
	default:
		return api.CommandResult{}, fmt.Errorf(`%w: field "chat": want "dm" or "group", got %q`, ErrInvalidInput, req.Chat)
	}
	if len(req.Text) > MaxTextLen {
		return api.CommandResult{}, fmt.Errorf(`%w: field "text": over %d bytes`, ErrInvalidInput, MaxTextLen)
	}
	name, args, ok := Parse(req.Text)
	fn, known := commands[name]
	if !ok || !known {
		return api.CommandResult{Handled: false}, nil
	}
	ad, err := channel.NewRegistry().Get(req.Channel)
	if err != nil {
		return api.CommandResult{}, fmt.Errorf("%w: %w", ErrInvalidInput, err)
	}
	account := channel.DefaultAccount
	if req.Account != "" {
		if account, err = channel.NormalizeAccount(req.Account); err != nil {
			return api.CommandResult{}, fmt.Errorf("%w: %w", ErrInvalidInput, err)
		}
	}
	r := &run{s: s, ctx: ctx, scope: store.Scope{Channel: req.Channel, Account: account}, chat: req.Chat}
	sender, err := ad.Normalize(req.Sender)
	if err != nil {
		return api.CommandResult{}, fmt.Errorf("%w: %w", ErrInvalidInput, err)
	}
	r.sender = sender
	r.actor = store.Actor{Name: "owner:" + req.Channel + ":" + sender, Source: "chat " + req.Channel + "/" + account}
	res := api.CommandResult{Handled: true, Command: name}
	// The owner check, on every command, by the configuration in effect.
	cfg := s.o.Pairing.Config()
	if !cfg.Owner.IsOwner(req.Channel, sender) {
		s.o.Logger.Warn("command: refused: the sender is not an owner", "command", name, "channel", req.Channel,
			"account", account, "sender", sender)
		// Told once per rate window, like "too many requests": a sender
		// repeating commands costs no write each.
		now := s.o.Now()
		told, err := s.o.Store.MarkNotice(ctx, r.scope, sender, "command_refused", now.Add(-cfg.Pairing.Limits.RateWindow.Std()), now,
			r.reply(Refusal))
		if told {
			res.Messages = 1
		}
		return res, err
	}
	s.o.Logger.Info("command: owner command", "command", name, "channel", req.Channel, "account", account, "sender", sender)
	res.Messages, err = fn(r, args)
	if err != nil && !errors.Is(err, store.ErrUnavailable) {
		// A refusal of the operation is the owner's to read, not an
		// error of the request.
		res.Messages, err = r.say(explain(err))
	}
	return res, err
}

// explain turns the error of an operation into a reply.
func explain(err error) string {
	var already *pairing.AlreadyApprovedError
	switch {
	case errors.As(err, &already):
		return "That request was approved already; to remove the sender, use /revoke."
	case errors.Is(err, store.ErrLockedOut):
		return "Approvals are locked after too many wrong codes: " + err.Error() + ". Lift it with pairgate pairing unlock."
	}
	return "Could not do that: " + termtext.Clean(err.Error(), 400)
}

func (r *run) help(_ []string) (int, error) {
	return r.say(strings.Join([]string{
		"Owner commands:",
		"/pending - pending requests and devices",
		"/approve <CODE|REQUEST_ID> - let a sender in (they are told)",
		"/reject <CODE|REQUEST_ID> - turn a request down",
		"/revoke [<channel>] <sender> - remove a sender",
		"/pair [label] - a setup code for a new device (direct message only)",
		"/devices - pending and paired devices",
		"/approve-device <REQUEST_ID|latest> - pair a device",
	}, "\n"))
}

func (r *run) pending(_ []string) (int, error) {
	reqs, err := r.s.o.Pairing.ListPending(r.ctx, pairing.Filter{})
	if err != nil {
		return 0, err
	}
	var lines []string
	now := r.s.o.Now()
	for _, p := range reqs {
		who := p.Channel + " " + p.Sender
		if p.Account != channel.DefaultAccount {
			who += ", account " + p.Account
		}
		if p.Name != "" {
			who = p.Name + " (" + who + ")"
		}
		lines = append(lines, fmt.Sprintf("%s, %s left: /approve %s", who, pairing.FormatDuration(p.ExpiresAt.Sub(now).Round(time.Minute)), p.RequestID))
	}
	if r.s.o.Devices != nil {
		l, err := r.s.o.Devices.List(r.ctx)
		if err != nil {
			return 0, err
		}
		for _, d := range l.Requests {
			lines = append(lines, deviceLine(d))
		}
	}
	if len(lines) == 0 {
		return r.say("No pending requests.")
	}
	return r.say("Pending:\n" + strings.Join(lines, "\n"))
}

// deviceLine is a pending device and how to approve it.
func deviceLine(d api.DeviceRequest) string {
	return "Device " + deviceDesc(d) + ": /approve-device " + d.RequestID
}

// deviceDesc is what the owner compares before pairing a device.
func deviceDesc(d api.DeviceRequest) string {
	s := d.Name
	if d.Platform != "" {
		s += " (" + d.Platform + ")"
	}
	s += ", role " + d.Role
	if d.Remote != "" {
		s += ", from " + d.Remote
	}
	return s + ", check code " + d.CheckCode
}

// target finds the request an /approve or /reject names, on any channel
// and account. One that is not found is looked for on the command's own
// scope, so that a wrong code counts against the lockout there.
func (r *run) target(usage string, args []string) (pairing.Target, error) {
	if len(args) != 1 {
		return pairing.Target{}, errors.New("usage: " + usage)
	}
	p, found, err := r.s.o.Pairing.FindPending(r.ctx, args[0])
	if err != nil {
		return pairing.Target{}, err
	}
	if !found {
		return pairing.Target{Channel: r.scope.Channel, Account: r.scope.Account, CodeOrID: args[0]}, nil
	}
	return pairing.Target{Channel: p.Channel, Account: p.Account, CodeOrID: args[0]}, nil
}

// who names a request's sender for the owner.
func who(p api.PendingRequest) string {
	s := p.Channel + " " + p.Sender
	if p.Account != channel.DefaultAccount {
		s += ", account " + p.Account
	}
	if p.Name != "" {
		s = p.Name + " (" + s + ")"
	}
	return s
}

func (r *run) approve(args []string) (int, error) {
	t, err := r.target("/approve <CODE|REQUEST_ID>", args)
	if err != nil {
		return 0, err
	}
	n := 0
	a, err := r.s.o.Pairing.ApproveWith(r.ctx, t, pairing.ApproveOptions{Notify: true,
		Reply: func(p api.PendingRequest) []store.OutboundMessage {
			n = 1
			return []store.OutboundMessage{r.reply("Approved " + who(p) + "; they were told.")}
		}}, r.actor)
	if err != nil {
		return 0, err
	}
	if a.Already {
		return r.say("That request was approved already: " + a.Allowed.Channel + " " + a.Allowed.Sender + " is allowed.")
	}
	return n + 1, nil // the reply and the sender's notice
}

func (r *run) reject(args []string) (int, error) {
	t, err := r.target("/reject <CODE|REQUEST_ID>", args)
	if err != nil {
		return 0, err
	}
	_, err = r.s.o.Pairing.RejectWith(r.ctx, t, func(p api.PendingRequest) []store.OutboundMessage {
		return []store.OutboundMessage{r.reply("Rejected " + who(p) + ".")}
	}, r.actor)
	if err != nil {
		return 0, err
	}
	return 1, nil
}

func (r *run) revoke(args []string) (int, error) {
	ch, sender := r.scope.Channel, ""
	switch len(args) {
	case 1:
		sender = args[0]
	case 2:
		ch, sender = strings.ToLower(args[0]), args[1]
	default:
		return 0, errors.New("usage: /revoke [<channel>] <sender>")
	}
	account := r.scope.Account
	if ch != r.scope.Channel {
		account = channel.DefaultAccount
	}
	_, err := r.s.o.Pairing.RevokeWith(r.ctx, ch, account, sender, func(scope store.Scope, sender string) []store.OutboundMessage {
		return []store.OutboundMessage{r.reply("Revoked " + scope.Channel + " " + sender + ".")}
	}, r.actor)
	if err != nil {
		return 0, err
	}
	return 1, nil
}

func (r *run) pair(args []string) (int, error) {
	if r.s.o.Devices == nil {
		return r.say("Device pairing is not set up on this pairgate.")
	}
	if r.chat == api.ChatGroup {
		// A setup code is a credential until used: never into a group.
		return r.say("Send /pair in a direct message: a setup code must not be shown in a group.")
	}
	_, err := r.s.o.Devices.IssueSetupCode(r.ctx, device.SetupParams{Label: strings.Join(args, " "),
		SendTo: &device.Recipient{Channel: r.scope.Channel, Account: r.scope.Account, To: r.sender, Images: true}}, r.actor)
	if err != nil {
		return 0, err
	}
	return 2, nil
}

func (r *run) devices(_ []string) (int, error) {
	if r.s.o.Devices == nil {
		return r.say("Device pairing is not set up on this pairgate.")
	}
	l, err := r.s.o.Devices.List(r.ctx)
	if err != nil {
		return 0, err
	}
	var lines []string
	for _, d := range l.Requests {
		lines = append(lines, "Waiting: "+deviceLine(d))
	}
	for _, d := range l.Devices {
		state := "paired"
		if d.RevokedAt != nil {
			state = "revoked"
		}
		lines = append(lines, fmt.Sprintf("%s %s (%s), role %s, %s", state, d.Name, d.Platform, d.Role, d.DeviceID[:12]))
	}
	if len(lines) == 0 {
		return r.say("No devices. Pair one with /pair.")
	}
	return r.say(strings.Join(lines, "\n"))
}

func (r *run) approveDevice(args []string) (int, error) {
	if r.s.o.Devices == nil {
		return r.say("Device pairing is not set up on this pairgate.")
	}
	if len(args) != 1 {
		return 0, errors.New("usage: /approve-device <REQUEST_ID|latest>")
	}
	_, err := r.s.o.Devices.DecideWith(r.ctx, args[0], true, func(d api.DeviceRequest) []store.OutboundMessage {
		return []store.OutboundMessage{r.reply("Approved " + deviceDesc(d) +
			". If the device shows another check code, revoke it: pairgate devices revoke " + d.DeviceID[:12])}
	}, r.actor)
	if err != nil {
		return 0, err
	}
	return 1, nil
}
