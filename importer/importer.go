// Package importer reads what an operator brings from another pairing
// system (hermes-agent's pairing files, OpenClaw's files and database,
// nexo's pairing.db) into a Plan: the senders pairgate would allow, the
// requests pending there, the paired devices, and what it refuses and why.
// Reading changes nothing; the caller applies a Plan (pairgate import
// --apply), so a source that cannot be read whole stops the import before
// anything is written.
package importer

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/pairgate/pairgate/channel"
)

// Sender is one sender to allow.
type Sender struct {
	Channel    string    `json:"channel"`
	Account    string    `json:"account"`
	Sender     string    `json:"sender"`        // canonical, as the channel's adapter writes it
	Raw        string    `json:"raw,omitempty"` // as the source had it, when that differs
	Name       string    `json:"name"`
	ApprovedAt time.Time `json:"approved_at,omitzero"` // in the source; zero if it had none
	// Revoked: the source had revoked them; they come over revoked.
	Revoked bool   `json:"revoked,omitempty"`
	From    string `json:"from"` // the file it came from
}

// Pending is a request pending in the source. One whose code the source
// kept comes over with it (pairing.Service.ImportPending), so the owner
// approves it with the code the sender holds, while that code is within
// pairgate's code_ttl of its creation; the others (a source that keeps only
// a hash of its code, a code pairgate cannot take, an expired one) are
// listed, so the owner can ask those senders to write again: they then get
// a pairgate code.
type Pending struct {
	Channel string `json:"channel"`
	Account string `json:"account"`
	Sender  string `json:"sender"` // as the source had it
	Name    string `json:"name"`
	// Code is the code the source gave the sender: a secret, never
	// printed or written to JSON; "" when the source keeps only a hash.
	Code      string    `json:"-"`
	CreatedAt time.Time `json:"created_at,omitzero"` // in the source; zero if it had none
	From      string    `json:"from"`
}

// Refused is an entry of the source that is not imported, and why.
type Refused struct {
	From   string `json:"from"` // the file
	Key    string `json:"key"`  // the entry, as the source keyed it
	Reason string `json:"reason"`
}

// Device is a companion device paired in the source. It cannot come over:
// pairing it in pairgate proves the device holds its key by presenting a
// setup code, which no import can do. It is listed so the owner knows
// which devices to pair again; its tokens are never read.
type Device struct {
	ID       string    `json:"id"`
	Name     string    `json:"name"`
	Platform string    `json:"platform"`
	PairedAt time.Time `json:"paired_at,omitzero"`
	From     string    `json:"from"`
}

// Plan is what an import would do.
type Plan struct {
	Source  string // "hermes", "openclaw", "nexo"
	Files   []string
	Senders []Sender
	Pending []Pending
	Devices []Device
	Refused []Refused
}

// ErrNoSource: the path holds nothing of the source system.
var ErrNoSource = errors.New("no pairing files found")

// scope resolves a source's channel and account names to pairgate's, or
// refuses the entry (key, in from) and returns false.
func (p *Plan) scope(reg *channel.Registry, from, key, ch, account string) (channel.Adapter, string, bool) {
	ad, err := reg.Get(ch)
	if err != nil {
		p.Refused = append(p.Refused, Refused{From: from, Key: key, Reason: fmt.Sprintf("channel %q is not a pairgate channel", ch)})
		return nil, "", false
	}
	if account == "" {
		account = channel.DefaultAccount
	}
	account, err = channel.NormalizeAccount(account)
	if err != nil {
		p.Refused = append(p.Refused, Refused{From: from, Key: key, Reason: fmt.Sprintf("account is no pairgate account: %v", err)})
		return nil, "", false
	}
	return ad, account, true
}

// add puts s in the plan with its sender id raw written as its channel
// writes ids, or refuses it with the channel's reason.
func (p *Plan) add(ad channel.Adapter, s Sender, raw string) {
	sender, err := ad.Normalize(raw)
	if err != nil {
		p.Refused = append(p.Refused, Refused{From: s.From, Key: raw, Reason: err.Error()})
		return
	}
	s.Sender = sender
	if sender != raw {
		s.Raw = raw
	}
	p.Senders = append(p.Senders, s)
}

// sort orders the plan by channel, account and sender, and keeps one of
// a sender listed twice (in two files, or under two spellings): a revoked
// one if any is (an import fails closed), else the first file's.
func (p *Plan) sort() {
	key := func(s Sender) [3]string { return [3]string{s.Channel, s.Account, s.Sender} }
	revokedFirst := func(s Sender) int {
		if s.Revoked {
			return 0
		}
		return 1
	}
	slices.SortStableFunc(p.Senders, func(a, b Sender) int {
		return cmp.Or(cmp.Compare(a.Channel, b.Channel), cmp.Compare(a.Account, b.Account), cmp.Compare(a.Sender, b.Sender),
			cmp.Compare(revokedFirst(a), revokedFirst(b)))
	})
	p.Senders = slices.CompactFunc(p.Senders, func(a, b Sender) bool { return key(a) == key(b) })
	slices.SortFunc(p.Pending, func(a, b Pending) int {
		return cmp.Or(cmp.Compare(a.Channel, b.Channel), cmp.Compare(a.Account, b.Account), cmp.Compare(a.Sender, b.Sender))
	})
	slices.SortFunc(p.Devices, func(a, b Device) int { return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID)) })
}
