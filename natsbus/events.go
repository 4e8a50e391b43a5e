package natsbus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pairgate/pairgate/server"
	"github.com/pairgate/pairgate/store"
)

// The change log's events on the bus.
const (
	// EventsSubjectPrefix + a change's kind is the subject of its event:
	// pairgate.events.pairing.requested, pairgate.events.device.approved.
	EventsSubjectPrefix = "pairgate.events."
	// EventsStream is the JetStream stream pairgate creates for the events
	// when none covers them (an operator may make their own beforehand).
	EventsStream = "PAIRGATE_EVENTS"
	// EventsCursor is the consumer name of the publisher's position in
	// the change log, and EventsLease the lease under which one replica
	// at a time publishes.
	EventsCursor = "nats-events"
	EventsLease  = "nats-events"
)

// eventsDuplicates is the stream's duplicate window: a republish of the
// same seq within it (after a crash between the publish and the cursor
// write) is dropped by JetStream (Nats-Msg-Id = seq).
const eventsDuplicates = 10 * time.Minute

// publishEvents publishes every change after the stored cursor, in order,
// until ctx ends (the lease is lost or the daemon stops). With JetStream,
// each is acknowledged before the cursor passes it, under Nats-Msg-Id =
// seq; without JetStream, core NATS: at least once, as far as a flush
// tells. A failure is retried by store.Follow from the same position.
func (b *Bus) publishEvents(ctx context.Context, nc *nats.Conn) {
	st := b.opts.Store
	warn := b.failures("NATS: publishing events failed; will retry")
	follow := store.FollowOptions{OnError: func(err error) { warn("publish", err) }}
	// The first publisher starts at the log's head: subscribers get what
	// happens from now on, not the whole retained history.
	seq, err := store.StartCursor(ctx, st, EventsCursor, follow)
	if err != nil {
		return // ctx ended
	}
	publish, mode := b.eventPublisher(ctx, nc)
	b.log.Info("NATS: publishing events", "subjects", EventsSubjectPrefix+">", "mode", mode, "after", seq)
	follow.After = seq
	store.Follow(ctx, st, follow, func(changes []store.Change) error {
		for _, c := range changes {
			data, err := json.Marshal(server.ChangeView(c))
			if err != nil {
				return err
			}
			if err := publish(ctx, EventsSubjectPrefix+string(c.Kind), c.Seq, data); err != nil {
				return fmt.Errorf("event %d (%s): %w", c.Seq, c.Kind, err)
			}
		}
		return st.SetCursor(ctx, EventsCursor, changes[len(changes)-1].Seq, time.Now())
	})
}

type publishFunc func(ctx context.Context, subject string, seq int64, data []byte) error

// eventPublisher publishes to JetStream when the server has it (creating
// the events stream if no stream takes the subjects), else on core NATS.
func (b *Bus) eventPublisher(ctx context.Context, nc *nats.Conn) (publishFunc, string) {
	core := func(ctx context.Context, subject string, seq int64, data []byte) error {
		m := nats.NewMsg(subject)
		m.Header.Set(jetstream.MsgIDHeader, strconv.FormatInt(seq, 10))
		m.Data = data
		if err := nc.PublishMsg(m); err != nil {
			return err
		}
		// The server has it once a flush comes back: at least once, as
		// far as core NATS can say.
		return nc.FlushTimeout(5 * time.Second)
	}
	js, err := jetstream.New(nc)
	if err == nil {
		_, err = js.AccountInfo(ctx)
	}
	if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
		return core, "core (no JetStream: at least once while connected)"
	}
	if err != nil {
		b.log.Warn("NATS: JetStream did not answer; publishing events on core NATS", "err", b.scrub(err))
		return core, "core"
	}
	if _, err := js.StreamNameBySubject(ctx, EventsSubjectPrefix+">"); errors.Is(err, jetstream.ErrStreamNotFound) {
		_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: EventsStream, Subjects: []string{EventsSubjectPrefix + ">"},
			Duplicates: eventsDuplicates, Storage: jetstream.FileStorage})
		if err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			b.log.Warn("NATS: creating the events stream failed; publishes will be retried", "stream", EventsStream, "err", b.scrub(err))
		}
	}
	return func(ctx context.Context, subject string, seq int64, data []byte) error {
		_, err := js.Publish(ctx, subject, data, jetstream.WithMsgID(strconv.FormatInt(seq, 10)))
		return err
	}, "jetstream"
}
