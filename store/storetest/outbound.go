package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/pairgate/pairgate/store"
)

// msg is an outbound text message to sender on scope, for cause.
func msg(scope store.Scope, to, text, cause string) store.OutboundMessage {
	return store.OutboundMessage{Channel: scope.Channel, Account: scope.Account, To: to, Kind: store.OutboundText, Text: text, Cause: cause}
}

// challengeMsg is the challenge of r: templated, so the store keeps no code.
func challengeMsg(r store.Request) store.OutboundMessage {
	return store.OutboundMessage{Channel: r.Scope.Channel, Account: r.Scope.Account, To: r.Sender, Kind: store.OutboundText,
		Template: store.TemplateChallenge, Ref: r.ID, ExpiresAt: r.ExpiresAt, Cause: "challenge"}
}

// outbound reads every outbound message after seq.
func (f *fixture) outbound(after int64) []store.OutboundMessage {
	f.t.Helper()
	got, err := f.s.Outbound(f.ctx, after, 10000)
	if err != nil {
		f.t.Fatalf("Outbound(%d): %v", after, err)
	}
	return got
}

// checkOutbound compares the messages after seq with want, whose Seq and
// At are filled in from seq+1 on and from ats.
func (f *fixture) checkOutbound(what string, after int64, want []store.OutboundMessage) {
	f.t.Helper()
	got := f.outbound(after)
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		f.t.Errorf("%s: Outbound(%d) (-want +got):\n%s", what, after, diff)
	}
}

// numbered sets Seq from after+1 on and At to now, as the store does.
func numbered(after int64, now time.Time, msgs ...store.OutboundMessage) []store.OutboundMessage {
	out := make([]store.OutboundMessage, len(msgs))
	for i, m := range msgs {
		m.Seq, m.At = after+int64(i)+1, now.Truncate(ms)
		m.ExpiresAt = m.ExpiresAt.Truncate(ms)
		out[i] = m
	}
	return out
}

func (f *fixture) outboundHead() int64 {
	f.t.Helper()
	seq, err := f.s.OutboundHead(f.ctx)
	if err != nil {
		f.t.Fatalf("OutboundHead: %v", err)
	}
	return seq
}

func testOutbound(t *testing.T, b Backend) {
	t.Run("AppendAndRead", func(t *testing.T) {
		f := newFixture(t, b)
		if got := f.outbound(0); len(got) != 0 || f.outboundHead() != 0 {
			t.Fatalf("a fresh store holds outbound messages: %v (head %d)", got, f.outboundHead())
		}
		png := []byte("\x89PNG\r\n\x1a\n\x00binary\xff")
		in := []store.OutboundMessage{
			msg(tg, "1", "Zoë said \"hi\"\n\\ ✓", "command"),
			{Channel: "signal", Account: "work", To: "+15555550100", Kind: store.OutboundImage, PNG: png, Cause: "command"},
			{Channel: "telegram", Account: "default", To: "7", Kind: store.OutboundText, ParseMode: "MarkdownV2",
				Template: store.TemplateSetupCode, Ref: "abc123", ExpiresAt: at(10 * minute), Cause: "command"},
		}
		got, err := f.s.AppendOutbound(f.ctx, in, at(time.Second+7*ms+300*time.Microsecond))
		if err != nil {
			t.Fatalf("AppendOutbound: %v", err)
		}
		want := numbered(0, at(time.Second+7*ms), in...)
		if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("AppendOutbound returned (-want +got):\n%s", diff)
		}
		f.checkOutbound("read back", 0, want)
		f.checkOutbound("after the first", 1, want[1:])
		f.checkOutbound("after the last", 3, nil)
		if got, err := f.s.Outbound(f.ctx, 0, 2); err != nil || len(got) != 2 || got[1].Seq != 2 {
			t.Errorf("Outbound(0, limit 2) = %v, %v; want the first two", got, err)
		}
		if _, err := f.s.Outbound(f.ctx, 0, 0); err == nil {
			t.Error("Outbound with limit 0: no error")
		}
		if h := f.outboundHead(); h != 3 {
			t.Errorf("OutboundHead = %d, want 3", h)
		}
		// Messages and changes are numbered apart: neither leaves a gap in
		// the other.
		if _, err := f.s.AppendOutbound(f.ctx, []store.OutboundMessage{msg(tg, "1", "x", "command")}, at(minute)); err != nil {
			t.Fatal(err)
		}
		if seq := f.lastSeq(); seq != 0 {
			t.Errorf("AppendOutbound appended to the change log: head %d", seq)
		}
	})

	t.Run("Refused", func(t *testing.T) {
		f := newFixture(t, b)
		bad := []store.OutboundMessage{
			{Channel: "telegram", Account: "default", Kind: store.OutboundText, Text: "no recipient", Cause: "command"},
			{Channel: "telegram", Account: "default", To: "1", Kind: "video", Cause: "command"},
			{Channel: "telegram", Account: "default", To: "1", Kind: store.OutboundText, Template: store.TemplateChallenge, Cause: "challenge"},
			{Channel: "telegram", Account: "default", To: "1", Kind: store.OutboundText, Text: "no cause"},
		}
		for _, m := range bad {
			good := msg(tg, "2", "fine", "command")
			if _, err := f.s.AppendOutbound(f.ctx, []store.OutboundMessage{good, m}, at(0)); err == nil || errors.Is(err, store.ErrUnavailable) {
				t.Errorf("AppendOutbound(%+v) = %v; want a plain error, not ErrUnavailable", m, err)
			}
			// A message refused takes its cause with it.
			r := f.request(tg, "9", at(0))
			_, err := f.s.CreateRequest(f.ctx, store.CreateRequestParams{Request: r, MaxPending: 3, Actor: gate, Outbound: []store.OutboundMessage{m}})
			if err == nil {
				t.Errorf("CreateRequest with %+v: no error", m)
			}
		}
		f.checkOutbound("after refusals", 0, nil)
		f.checkList(all(), at(minute))
		if seq := f.lastSeq(); seq != 0 {
			t.Errorf("refused writes appended %d changes", seq)
		}
	})

	t.Run("WithTheirCause", func(t *testing.T) {
		f := newFixture(t, b)
		owner := msg(tg, "owner", "Alice asks", "notice")
		r := f.request(tg, "1", at(0))
		in := []store.OutboundMessage{challengeMsg(r), owner}
		if _, err := f.s.CreateRequest(f.ctx, store.CreateRequestParams{Request: r, MaxPending: 1, Actor: gate, Outbound: in}); err != nil {
			t.Fatal(err)
		}
		want := numbered(0, at(0), in...)
		f.checkOutbound("CreateRequest", 0, want)

		// Refusals record nothing: pending, cap reached, allowed.
		again := f.request(tg, "1", at(minute))
		if _, err := f.s.CreateRequest(f.ctx, store.CreateRequestParams{Request: again, MaxPending: 1, Actor: gate,
			Outbound: []store.OutboundMessage{challengeMsg(again)}}); !errors.Is(err, store.ErrPending) {
			t.Fatalf("second CreateRequest: %v, want ErrPending", err)
		}
		full := f.request(tg, "2", at(minute))
		if _, err := f.s.CreateRequest(f.ctx, store.CreateRequestParams{Request: full, MaxPending: 1, Actor: gate,
			Outbound: []store.OutboundMessage{challengeMsg(full)}}); !errors.Is(err, store.ErrCapReached) {
			t.Fatalf("CreateRequest over the cap: %v, want ErrCapReached", err)
		}
		f.checkOutbound("refused CreateRequest", 2, nil)

		// A reminder only with the mark that sends it.
		remind := challengeMsg(r)
		remind.Cause = "reminder"
		sent, err := f.s.MarkRequestSent(f.ctx, r.ID, at(0), at(window), remind)
		if err != nil || !sent {
			t.Fatalf("MarkRequestSent = %v, %v", sent, err)
		}
		sent, err = f.s.MarkRequestSent(f.ctx, r.ID, at(0), at(window+minute), remind)
		if err != nil || sent {
			t.Fatalf("second MarkRequestSent = %v, %v; want false", sent, err)
		}
		want = append(want, numbered(2, at(window), remind)...)
		f.checkOutbound("MarkRequestSent", 0, want)

		told := msg(tg, "3", "too many", "max_pending")
		for i, now := range []time.Time{at(window), at(window + minute)} {
			if _, err := f.s.MarkNotice(f.ctx, tg, "3", "max_pending", now.Add(-window), now, told); err != nil {
				t.Fatalf("MarkNotice %d: %v", i, err)
			}
		}
		want = append(want, numbered(3, at(window), told)...)
		f.checkOutbound("MarkNotice", 0, want)

		// Approve: the sender's notice and the owner's reply, once.
		approved := msg(tg, "1", "approved", "approved")
		reply := msg(tg, "owner", "done", "command")
		p := by(store.ViaRequest, r, alice, at(hour/2))
		var took []store.Request
		p.Outbound = func(r store.Request) []store.OutboundMessage {
			took = append(took, r)
			return []store.OutboundMessage{approved, reply}
		}
		f.approve(p)
		if _, err := f.s.Approve(f.ctx, p); !errors.Is(err, store.ErrAlreadyApproved) {
			t.Fatalf("second Approve: %v", err)
		}
		if _, err := f.s.Reject(f.ctx, p); !errors.Is(err, store.ErrAlreadyApproved) {
			t.Fatalf("Reject of an approved request: %v", err)
		}
		if len(took) != 1 || took[0].ID != r.ID || took[0].Sender != r.Sender {
			t.Errorf("Outbound was called with %+v; want once, with the request approved", took)
		}
		want = append(want, numbered(4, at(hour/2), approved, reply)...)
		f.checkOutbound("Approve", 0, want)

		rejected := f.mustCreate(tgWork, "5", at(hour/2))
		rp := by(store.ViaCode, rejected, alice, at(hour/2))
		rejectReply := msg(tgWork, "owner", "rejected", "command")
		rp.Outbound = func(r store.Request) []store.OutboundMessage {
			m := rejectReply
			m.Text += " " + r.Sender
			return []store.OutboundMessage{m}
		}
		if _, err := f.s.Reject(f.ctx, rp); err != nil {
			t.Fatal(err)
		}
		rejectReply.Text = "rejected 5"
		want = append(want, numbered(6, at(hour/2), rejectReply)...)
		revoked := msg(tg, "owner", "revoked", "command")
		if _, err := f.s.Revoke(f.ctx, tg, "1", alice, at(hour), revoked); err != nil {
			t.Fatal(err)
		}
		if _, err := f.s.Revoke(f.ctx, tg, "1", alice, at(hour), revoked); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("second Revoke: %v", err)
		}
		want = append(want, numbered(7, at(hour), revoked)...)
		f.checkOutbound("Reject and Revoke", 0, want)

		// Device pairing: the owner's notice with the request, the
		// setup code with its token, the reply with the decision.
		tok := setupToken("out", at(hour))
		code := store.OutboundMessage{Channel: "telegram", Account: "default", To: "owner", Kind: store.OutboundText,
			Template: store.TemplateSetupCode, Ref: tok.ID, ExpiresAt: tok.ExpiresAt, Cause: "command"}
		if err := f.s.CreateSetupToken(f.ctx, tok, at(0), alice, code); err != nil {
			t.Fatal(err)
		}
		d := deviceRequest("out", at(hour))
		notice := msg(tg, "owner", "a device asks", "notice")
		if err := f.s.CreateDeviceRequest(f.ctx, d, tok.ID, gate, notice); err != nil {
			t.Fatal(err)
		}
		if err := f.s.CreateDeviceRequest(f.ctx, deviceRequest("again", at(hour)), tok.ID, gate, notice); !errors.Is(err, store.ErrTokenUsed) {
			t.Fatalf("second CreateDeviceRequest: %v", err)
		}
		decided := msg(tg, "owner", "paired", "command")
		if _, err := f.s.DecideDeviceRequest(f.ctx, d.ID, true, alice, at(hour), decided); err != nil {
			t.Fatal(err)
		}
		if _, err := f.s.DecideDeviceRequest(f.ctx, d.ID, true, alice, at(hour), decided); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("second DecideDeviceRequest: %v", err)
		}
		want = append(want, numbered(8, at(hour), code, notice, decided)...)
		f.checkOutbound("device pairing", 0, want)
	})

	t.Run("Changed", func(t *testing.T) {
		f := newFixture(t, b)
		other := f.open()
		same, elsewhere := f.s.Changed(), other.Changed()
		if _, err := f.s.AppendOutbound(f.ctx, []store.OutboundMessage{msg(tg, "1", "hi", "command")}, at(0)); err != nil {
			t.Fatal(err)
		}
		if !waitClosed(same, notifyLatency) {
			t.Errorf("Changed() of the same store not closed within %v after AppendOutbound", notifyLatency)
		}
		if !waitClosed(elsewhere, notifyLatency) {
			t.Errorf("Changed() of another store not closed within %v after AppendOutbound", notifyLatency)
		}
		if got, err := other.Outbound(f.ctx, 0, 10); err != nil || len(got) != 1 {
			t.Errorf("the other store reads %v, %v", got, err)
		}
	})

	t.Run("Cursors", func(t *testing.T) {
		f := newFixture(t, b)
		if _, found, err := f.s.OutboundCursor(f.ctx, "nats"); err != nil || found {
			t.Fatalf("OutboundCursor of a new publisher = found %v, %v", found, err)
		}
		for _, seq := range []int64{5, 3, 9} {
			if err := f.s.SetOutboundCursor(f.ctx, "nats", seq, at(0)); err != nil {
				t.Fatal(err)
			}
		}
		if seq, found, err := f.s.OutboundCursor(f.ctx, "nats"); err != nil || !found || seq != 9 {
			t.Errorf("OutboundCursor = %d, %v, %v; want 9 (a cursor never moves back)", seq, found, err)
		}
		// The change log's cursors are another name space.
		if _, found, err := f.s.Cursor(f.ctx, "nats"); err != nil || found {
			t.Errorf("Cursor(nats) after SetOutboundCursor: found %v, %v", found, err)
		}
	})

	t.Run("GC", func(t *testing.T) {
		f := newFixture(t, b)
		for i := range 3 {
			if _, err := f.s.AppendOutbound(f.ctx, []store.OutboundMessage{msg(tg, fmt.Sprint(i), "x", "command")}, at(time.Duration(i)*hour)); err != nil {
				t.Fatal(err)
			}
		}
		f.gc(at(2*hour), store.GCPolicy{}, store.GCResult{})
		f.gc(at(2*hour), store.GCPolicy{Outbound: hour}, store.GCResult{Outbound: 2})
		got := f.outbound(0)
		if len(got) != 1 || got[0].Seq != 3 {
			t.Errorf("after GC: %v; want only seq 3", got)
		}
		next, err := f.s.AppendOutbound(f.ctx, []store.OutboundMessage{msg(tg, "4", "x", "command")}, at(3*hour))
		if err != nil || next[0].Seq != 4 {
			t.Errorf("the next message after GC: %v, %v; want seq 4 (numbers are not handed out again)", next, err)
		}
	})
}
