// Package channel holds one adapter per messaging channel: how a raw sender
// id is normalised (or refused), and the texts pairgate sends on it.
package channel

import (
	"errors"
	"time"
)

// ErrInvalidSender is wrapped by Normalize errors.
var ErrInvalidSender = errors.New("invalid sender")

// ErrUnknownChannel is wrapped by Registry.Get errors.
var ErrUnknownChannel = errors.New("unknown channel")

// Challenge is what a challenge text says.
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
