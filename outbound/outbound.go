// Package outbound reads the outbound messages of a store as gateways get
// them (api.Outbound): templated messages are made whole here, at read
// time (a DM code from its request id, a setup code and its QR from the
// setup token's row), so no secret is stored and every replica renders the
// same text. It is what GET /v1/outbound and the NATS publisher share.
package outbound

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/pairgate/pairgate/api"
	"github.com/pairgate/pairgate/device"
	"github.com/pairgate/pairgate/pairing"
	"github.com/pairgate/pairgate/qr"
	"github.com/pairgate/pairgate/store"
)

// MaxBatch is the most messages one Read returns.
const MaxBatch = 1000

// Options configure a Reader.
type Options struct {
	Store   store.Store
	Pairing *pairing.Service // renders DM codes
	Devices *device.Service  // renders setup codes; nil: such messages are skipped
	Now     func() time.Time
	Logger  *slog.Logger
}

// Reader reads outbound messages, rendered. It is safe for concurrent use.
type Reader struct {
	o Options
}

// New makes a Reader.
func New(o Options) (*Reader, error) {
	if o.Store == nil || o.Pairing == nil {
		return nil, errors.New("outbound: Store and Pairing are required")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Reader{o: o}, nil
}

// Read returns up to limit messages after seq after, rendered, and the seq
// to read after next. A templated message whose secret is no use any more
// (the code expired, the setup code was used) is left out, and so is one
// that cannot be rendered (its channel is unknown): Next still passes it.
func (r *Reader) Read(ctx context.Context, after int64, limit int) (api.OutboundBatch, error) {
	if limit < 1 || limit > MaxBatch {
		limit = MaxBatch
	}
	msgs, err := r.o.Store.Outbound(ctx, after, limit)
	if err != nil {
		return api.OutboundBatch{}, err
	}
	b := api.OutboundBatch{Messages: make([]api.Outbound, 0, len(msgs)), Next: after}
	now := r.o.Now()
	for _, m := range msgs {
		b.Next = m.Seq
		out, ok, err := r.render(ctx, m, now)
		if err != nil {
			return api.OutboundBatch{}, err
		}
		if ok {
			b.Messages = append(b.Messages, out)
		}
	}
	return b, nil
}

// Wait is Read that, when there is nothing after after, waits up to wait
// for a message to be recorded (by any process or replica) before it
// answers, perhaps with none: the long poll.
func (r *Reader) Wait(ctx context.Context, after int64, limit int, wait time.Duration) (api.OutboundBatch, error) {
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		changed := r.o.Store.Changed()
		b, err := r.Read(ctx, after, limit)
		if err != nil || len(b.Messages) > 0 || wait <= 0 {
			return b, err
		}
		// Messages left out still move the position on.
		after = b.Next
		select {
		case <-changed:
		case <-deadline.C:
			return r.Read(ctx, after, limit)
		case <-ctx.Done():
			return b, nil
		}
	}
}

func (r *Reader) render(ctx context.Context, m store.OutboundMessage, now time.Time) (api.Outbound, bool, error) {
	out := api.Outbound{Seq: m.Seq, Channel: m.Channel, Account: m.Account, To: m.To, Kind: string(m.Kind),
		Text: m.Text, PNG: m.PNG, ParseMode: m.ParseMode, Cause: m.Cause, At: m.At}
	if m.Template == store.TemplateNone {
		return out, true, nil
	}
	if !m.ExpiresAt.IsZero() && !now.Before(m.ExpiresAt) {
		r.o.Logger.Debug("outbound: a code expired before it was delivered; left out", "seq", m.Seq, "cause", m.Cause)
		return out, false, nil
	}
	switch m.Template {
	case store.TemplateChallenge:
		text, ok := r.o.Pairing.RenderChallenge(m)
		if !ok {
			r.o.Logger.Warn("outbound: cannot render a challenge; left out", "seq", m.Seq, "channel", m.Channel)
			return out, false, nil
		}
		out.Text = text
		return out, true, nil
	case store.TemplateSetupCode, store.TemplateSetupQR:
		if r.o.Devices == nil {
			return out, false, nil
		}
		code, err := r.o.Devices.RenderSetupCode(ctx, m.Ref, now)
		if errors.Is(err, device.ErrGone) {
			return out, false, nil
		}
		if err != nil {
			return out, false, fmt.Errorf("outbound message %d: %w", m.Seq, err)
		}
		if m.Template == store.TemplateSetupCode {
			out.Text = code
			return out, true, nil
		}
		png, err := qr.PNG(code, 0)
		if err != nil {
			return out, false, fmt.Errorf("outbound message %d: QR code: %w", m.Seq, err)
		}
		out.PNG = png
		return out, true, nil
	}
	r.o.Logger.Warn("outbound: a message of an unknown template; left out", "seq", m.Seq, "template", m.Template)
	return out, false, nil
}
