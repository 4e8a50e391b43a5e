package natsbus

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pairgate/pairgate/api"
	"github.com/pairgate/pairgate/store"
)

// Outbound messages on the bus.
const (
	// OutboundSubjectPrefix + channel is the subject of a message for the
	// channel's default account (plugin.outbound.telegram), + channel +
	// "." + account for another (plugin.outbound.telegram.work): where
	// nexo's channel plugins take what to send.
	OutboundSubjectPrefix = "plugin.outbound."
	// OutboundCursor is the publisher's position among outbound messages
	// (store.OutboundLog), and OutboundLease the lease under which one
	// replica at a time publishes them.
	OutboundCursor = "nats-outbound"
	OutboundLease  = "nats-outbound"
	// Source is the envelope's source.
	Source = "pairgate"
)

// OutboundSubject is the subject of a message for account on channel.
func OutboundSubject(channel, account string) string {
	if account == "" || account == "default" {
		return OutboundSubjectPrefix + channel
	}
	return OutboundSubjectPrefix + channel + "." + account
}

// Envelope is what is published on an outbound subject: nexo's envelope
// around the message. ID is "pairgate-outbound-<seq>", the same on every
// republish of one message (also as the Nats-Msg-Id header), so a
// receiver de-duplicates by it.
type Envelope struct {
	ID        string    `json:"id"`
	Timestamp time.Time `json:"timestamp"`
	Topic     string    `json:"topic"`
	Source    string    `json:"source"`
	Payload   Payload   `json:"payload"`
}

// Payload is an outbound message as a channel plugin sends it: Kind text
// with Text, or image with PNG (base64 in JSON). Seq, Account and Cause
// are pairgate's additions.
type Payload struct {
	Kind      string `json:"kind"`
	To        string `json:"to"`
	Text      string `json:"text,omitempty"`
	PNG       []byte `json:"png,omitempty"`
	ParseMode string `json:"parse_mode,omitempty"`
	Seq       int64  `json:"seq"`
	Account   string `json:"account"`
	Cause     string `json:"cause"`
}

// EnvelopeOf wraps m for its subject.
func EnvelopeOf(m api.Outbound) Envelope {
	subject := OutboundSubject(m.Channel, m.Account)
	return Envelope{ID: fmt.Sprintf("pairgate-outbound-%d", m.Seq), Timestamp: m.At, Topic: subject, Source: Source,
		Payload: Payload{Kind: m.Kind, To: m.To, Text: m.Text, PNG: m.PNG, ParseMode: m.ParseMode, Seq: m.Seq, Account: m.Account, Cause: m.Cause}}
}

// outboundBatch is how many messages one publish round reads.
const outboundBatch = 100

// publishOutbound publishes every outbound message after the stored
// cursor, in order, until ctx ends (the lease is lost or the daemon
// stops): each on core NATS, flushed (the server has it) before the
// cursor passes it, so a message is published at least once while
// connected; a failure is retried from the same position. The first
// publisher starts at the head: messages recorded before NATS was
// configured were for the routes there were then.
func (b *Bus) publishOutbound(ctx context.Context, nc *nats.Conn) {
	st, rd := b.opts.Store, b.opts.Outbound
	warn := b.failures("NATS: publishing outbound messages failed; will retry")
	after, err := store.StartOutboundCursor(ctx, st, OutboundCursor, store.FollowOptions{OnError: func(err error) { warn("read cursor", err) }})
	if err != nil {
		return // ctx ended
	}
	b.log.Info("NATS: publishing outbound messages", "subjects", OutboundSubjectPrefix+">", "after", after)
	for {
		changed := st.Changed()
		batch, err := rd.Read(ctx, after, outboundBatch)
		if err == nil {
			err = b.publishBatch(ctx, nc, batch.Messages)
		}
		if err == nil && batch.Next != after {
			// Published is published: the cursor write is not cut short
			// by a stop that comes meanwhile, or the next publisher would
			// send the batch again.
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			err = st.SetOutboundCursor(cctx, OutboundCursor, batch.Next, time.Now())
			cancel()
			if err == nil {
				after = batch.Next
				continue // there may be more
			}
		}
		var retry <-chan time.Time
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			warn("publish", err)
			retry = time.After(time.Second)
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-retry:
		}
	}
}

func (b *Bus) publishBatch(ctx context.Context, nc *nats.Conn, msgs []api.Outbound) error {
	for _, m := range msgs {
		env := EnvelopeOf(m)
		data, err := json.Marshal(env)
		if err != nil {
			return err
		}
		msg := nats.NewMsg(env.Topic)
		msg.Header.Set(jetstream.MsgIDHeader, env.ID)
		msg.Data = data
		if err := nc.PublishMsg(msg); err != nil {
			return fmt.Errorf("outbound message %d: %w", m.Seq, err)
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return nc.FlushWithContext(fctx)
}

// failures returns a logger of a publisher's failures: while NATS or the
// store is down a publisher fails at every retry (each second), so msg is
// logged at Warn at most every logEvery, and the failures in between at
// Debug.
func (b *Bus) failures(msg string) func(step string, err error) {
	var last time.Time
	return func(step string, err error) {
		level := slog.LevelDebug
		if time.Since(last) >= logEvery {
			last, level = time.Now(), slog.LevelWarn
		}
		b.log.Log(context.Background(), level, msg, "step", step, "err", b.scrub(err))
	}
}
