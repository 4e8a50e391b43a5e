// Package channel holds one adapter per messaging channel: how a raw sender
// id is normalised (or refused), and the texts pairgate sends on it.
//
// Normalisation decides who a sender is, so it fails closed: what it cannot
// read with certainty it refuses. Every channel first refuses input longer
// than MaxSenderLen bytes, invalid UTF-8 and control characters, trims
// surrounding whitespace, and drops its prefixes case-insensitively:
//
//	telegram  telegram: tg: user:          123456789
//	whatsapp  whatsapp: user:              +5491155556666
//	signal    signal: user:                +15551234567 or uuid:<lower-case uuid>
//	discord   discord: user:               80351110224678912
//	slack     slack: user:                 U024BE7LH
//	imessage  imessage: sms: auto: user:   +15551234567 or alice@icloud.com
//	feishu    feishu: lark: open_id: user: ou_7d8a6e6df7621556ce0d21922b676706
//	matrix    matrix: user:                @alice:example.org
//	email     email: mailto: user:         alice@example.com
//
// The right-hand column is the canonical form. Every canonical sender is
// printable ASCII without spaces, so look-alike, invisible and
// direction-changing characters never make two senders read the same, and
// Unicode case folding never merges two of them. Normalize returns a
// canonical input as it is, without allocating: it runs on every message.
//
// Get adapters from a Registry (NewRegistry); Names lists the channels.
//
// NormalizeAccount is the rule for account names (one bot identity on a
// channel), shared by the gate, the operator's commands and the
// configuration.
package channel

import (
	"errors"
	"time"
)

// ErrInvalidSender is wrapped by Normalize errors.
var ErrInvalidSender = errors.New("invalid sender")

// ErrUnknownChannel is wrapped by Registry.Get errors.
var ErrUnknownChannel = errors.New("unknown channel")

// Challenge is what a challenge text says. An adapter names its own channel
// in the approve command, so Channel is for the caller's bookkeeping.
type Challenge struct {
	Channel string        // e.g. "telegram"
	Account string        // "default" or a named account; named ones add --account to the command
	Code    string        // the 8-character code
	TTL     time.Duration // how long the code stays valid
}

// Adapter is one channel's rules.
type Adapter interface {
	// Name is the channel name, e.g. "telegram".
	Name() string
	// Normalize returns the canonical sender id or an error wrapping
	// ErrInvalidSender. A canonical input is returned as is, without
	// allocating: it runs on the gate's hot path.
	Normalize(raw string) (string, error)
	// ChallengeText is the reply that carries a pairing code.
	ChallengeText(c Challenge) string
	// TooManyText is the reply when the pending cap is reached: "too many
	// pairing requests, try later" in the channel's words.
	TooManyText() string
	// ApprovedText is the reply sent when the owner approves (--notify).
	ApprovedText() string
	// CanSendImage reports whether the channel can carry a QR image.
	CanSendImage() bool
}
