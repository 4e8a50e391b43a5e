// Package importer reads what an operator brings from another pairing
// system (hermes-agent's pairing files; OpenClaw and nexo to come) into a
// Plan: the senders pairgate would allow, and what it cannot bring over and
// why. Reading changes nothing; the caller applies a Plan (pairgate import
// --apply), so a source that cannot be read whole stops the import before
// anything is written.
package importer

import (
	"cmp"
	"errors"
	"slices"
	"time"
)

// Sender is one sender to allow.
type Sender struct {
	Channel    string    `json:"channel"`
	Account    string    `json:"account"`
	Sender     string    `json:"sender"`        // canonical, as the channel's adapter writes it
	Raw        string    `json:"raw,omitempty"` // as the source had it, when that differs
	Name       string    `json:"name"`
	ApprovedAt time.Time `json:"approved_at,omitzero"` // in the source; zero if it had none
	From       string    `json:"from"`                 // the file it came from
}

// Pending is a request pending in the source that cannot come over: the
// sender is asked to write again, and gets a pairgate code then. A code
// of another system cannot be honoured (pairgate derives each code from
// its request under the pairing secret, and stores only its hash).
type Pending struct {
	Channel string `json:"channel"`
	Account string `json:"account"`
	Sender  string `json:"sender"` // as the source had it
	Name    string `json:"name"`
	From    string `json:"from"`
}

// Refused is an entry of the source that is not imported, and why.
type Refused struct {
	From   string `json:"from"` // the file
	Key    string `json:"key"`  // the entry, as the source keyed it
	Reason string `json:"reason"`
}

// Plan is what an import would do.
type Plan struct {
	Source  string // "hermes"
	Files   []string
	Senders []Sender
	Pending []Pending
	Refused []Refused
}

// ErrNoSource: the path holds nothing of the source system.
var ErrNoSource = errors.New("no pairing files found")

// sort orders the plan by channel, account and sender, and keeps one of
// a sender listed twice (in two files, or under two spellings): the first
// file's.
func (p *Plan) sort() {
	key := func(s Sender) [3]string { return [3]string{s.Channel, s.Account, s.Sender} }
	slices.SortStableFunc(p.Senders, func(a, b Sender) int {
		return cmp.Or(cmp.Compare(a.Channel, b.Channel), cmp.Compare(a.Account, b.Account), cmp.Compare(a.Sender, b.Sender))
	})
	p.Senders = slices.CompactFunc(p.Senders, func(a, b Sender) bool { return key(a) == key(b) })
	slices.SortFunc(p.Pending, func(a, b Pending) int {
		return cmp.Or(cmp.Compare(a.Channel, b.Channel), cmp.Compare(a.Account, b.Account), cmp.Compare(a.Sender, b.Sender))
	})
}
