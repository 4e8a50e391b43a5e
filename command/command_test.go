package command_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pairgate/pairgate/api"
	"github.com/pairgate/pairgate/command"
	"github.com/pairgate/pairgate/config"
	"github.com/pairgate/pairgate/device"
	"github.com/pairgate/pairgate/outbound"
	"github.com/pairgate/pairgate/pairing"
	"github.com/pairgate/pairgate/secret"
	"github.com/pairgate/pairgate/store"
	"github.com/pairgate/pairgate/store/sqlite"
)

const owner = "42"

type env struct {
	st      *sqlite.Store
	gate    *pairing.Service
	devices *device.Service
	cmds    *command.Service
	reader  *outbound.Reader
	seen    int64 // outbound read up to here
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(t.TempDir(), "pairgate.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	sec, _ := secret.FromBytes(bytes.Repeat([]byte{5}, secret.Size))
	cfg := config.Default()
	cfg.Owner.Senders = map[string][]string{"telegram": {owner}}
	gate, err := pairing.New(pairing.Options{Store: st, Secret: sec, Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	devices, err := device.New(device.Options{Store: st, Secret: sec,
		URL: func() (string, device.URLSource, error) {
			return "wss://gw.example.com/pair", device.URLSourceConfig, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	cmds, err := command.New(command.Options{Pairing: gate, Devices: devices, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	reader, err := outbound.New(outbound.Options{Store: st, Pairing: gate, Devices: devices})
	if err != nil {
		t.Fatal(err)
	}
	return &env{st: st, gate: gate, devices: devices, cmds: cmds, reader: reader}
}

// send runs text as a command from sender in a DM on telegram.
func (e *env) send(t *testing.T, sender, text string) api.CommandResult {
	t.Helper()
	return e.sendIn(t, sender, api.ChatDM, text)
}

func (e *env) sendIn(t *testing.T, sender string, chat api.Chat, text string) api.CommandResult {
	t.Helper()
	res, err := e.cmds.Handle(context.Background(), api.CommandRequest{Channel: "telegram", Sender: sender, Chat: chat, Text: text})
	if err != nil {
		t.Fatalf("Handle(%q from %s): %v", text, sender, err)
	}
	return res
}

// news returns the outbound messages recorded since the last call.
func (e *env) news(t *testing.T) []api.Outbound {
	t.Helper()
	b, err := e.reader.Read(context.Background(), e.seen, 100)
	if err != nil {
		t.Fatal(err)
	}
	e.seen = b.Next
	return b.Messages
}

// one expects exactly one new message, to to, and returns its text.
func (e *env) one(t *testing.T, to string) string {
	t.Helper()
	msgs := e.news(t)
	if len(msgs) != 1 || msgs[0].To != to || msgs[0].Cause != store.CauseCommand {
		t.Fatalf("want one answer to %s, got %+v", to, msgs)
	}
	return msgs[0].Text
}

func (e *env) challenge(t *testing.T, ch, account, sender, name string) api.Decision {
	t.Helper()
	d := e.gate.Admit(context.Background(), pairing.Inbound{Channel: ch, Account: account, Sender: sender, SenderName: name})
	if d.Verdict != api.Challenge {
		t.Fatalf("Admit(%s): %+v", sender, d)
	}
	e.news(t) // the owner's notice
	return d
}

func TestNotACommand(t *testing.T) {
	e := newEnv(t)
	for _, text := range []string{"hello", "/", "/start", "/unknown arg", " /weather today"} {
		if res := e.send(t, owner, text); res.Handled {
			t.Errorf("%q was handled: %+v; only pairgate's commands are", text, res)
		}
	}
	if msgs := e.news(t); len(msgs) != 0 {
		t.Errorf("messages that are no command were answered: %+v", msgs)
	}
	for _, bad := range []api.CommandRequest{
		{Channel: "telegram", Text: "/pending"},
		{Channel: "irc", Sender: "1", Text: "/pending"},
		{Channel: "telegram", Sender: "@name", Text: "/pending"},
		{Channel: "telegram", Sender: "1", Chat: "channel", Text: "/pending"},
	} {
		if _, err := e.cmds.Handle(context.Background(), bad); err == nil {
			t.Errorf("Handle(%+v): no error", bad)
		}
	}
}

func TestNonOwnerIsRefused(t *testing.T) {
	e := newEnv(t)
	d := e.challenge(t, "telegram", "", "555", "Mallory")
	// Each non-owner is told the same plain refusal, whatever the command.
	for i, text := range []string{"/approve " + d.Code, "/APPROVE@mybot " + d.RequestID, "/pending", "/pair", "/help"} {
		who := fmt.Sprint(600 + i)
		res := e.send(t, who, text)
		if !res.Handled || res.Messages != 1 {
			t.Errorf("%q from a non-owner: %+v", text, res)
		}
		if got := e.one(t, who); got != command.Refusal {
			t.Errorf("%q from a non-owner was answered %q; want the plain refusal", text, got)
		}
	}
	// Once per rate window: more commands from the same sender cost no
	// write and say nothing more.
	for _, text := range []string{"/approve " + d.Code, "/pending"} {
		if res := e.send(t, "600", text); !res.Handled || res.Messages != 0 {
			t.Errorf("%q again from the same non-owner: %+v; want handled, nothing said", text, res)
		}
	}
	if msgs := e.news(t); len(msgs) != 0 {
		t.Errorf("the same non-owner was answered again: %+v", msgs)
	}
	pending, _ := e.gate.ListPending(context.Background(), pairing.Filter{})
	if len(pending) != 1 {
		t.Errorf("a non-owner's /approve changed something: pending %+v", pending)
	}
	if d := e.gate.Admit(context.Background(), pairing.Inbound{Channel: "telegram", Sender: "555"}); d.Verdict == api.Admit {
		t.Error("a non-owner's /approve admitted them")
	}
	// The owner on another channel is not an owner here.
	res, err := e.cmds.Handle(context.Background(), api.CommandRequest{Channel: "discord", Sender: "123456789012345678", Text: "/pending"})
	if err != nil || !res.Handled {
		t.Fatalf("Handle: %+v, %v", res, err)
	}
	if got := e.news(t); len(got) != 1 || got[0].Text != command.Refusal || got[0].Channel != "discord" {
		t.Errorf("a discord sender with the owner's id: %+v", got)
	}
}

func TestApproveRejectRevoke(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	alice := e.challenge(t, "whatsapp", "work", "+5491155556666", "Alice")
	bob := e.challenge(t, "telegram", "", "777", "Bob")

	if got := e.send(t, owner, "/pending"); !got.Handled || got.Messages != 1 {
		t.Fatalf("/pending: %+v", got)
	}
	list := e.one(t, owner)
	for _, want := range []string{"Alice (whatsapp +5491155556666, account work), 1h left: /approve " + alice.RequestID,
		"Bob (telegram 777), 1h left: /approve " + bob.RequestID} {
		if !strings.Contains(list, want) {
			t.Errorf("/pending answered %q; want a line %q", list, want)
		}
	}

	// A code from another channel and account is found there.
	res := e.send(t, owner, "/approve "+strings.ToLower(alice.Code))
	if res.Messages != 2 {
		t.Errorf("/approve: %+v; want the reply and the sender's notice", res)
	}
	msgs := e.news(t)
	if len(msgs) != 2 {
		t.Fatalf("after /approve: %+v", msgs)
	}
	if msgs[0].To != "+5491155556666" || msgs[0].Channel != "whatsapp" || msgs[0].Account != "work" || msgs[0].Cause != store.CauseApproved {
		t.Errorf("the sender's notice: %+v", msgs[0])
	}
	if msgs[1].To != owner || msgs[1].Channel != "telegram" || msgs[1].Text != "Approved Alice (whatsapp +5491155556666, account work); they were told." {
		t.Errorf("the owner's reply: %+v", msgs[1])
	}
	if d := e.gate.Admit(ctx, pairing.Inbound{Channel: "whatsapp", Account: "work", Sender: "+5491155556666"}); d.Verdict != api.Admit {
		t.Errorf("Alice after /approve: %+v", d)
	}
	e.send(t, owner, "/approve "+alice.Code)
	if got := e.one(t, owner); !strings.Contains(got, "approved already") {
		t.Errorf("/approve again: %q", got)
	}

	// A wrong code is a failed approval, said so.
	e.send(t, owner, "/approve ZZZZ2222")
	if got := e.one(t, owner); !strings.HasPrefix(got, "Could not do that: no pending request on telegram/default has that code") {
		t.Errorf("/approve of a wrong code: %q", got)
	}
	e.send(t, owner, "/approve")
	if got := e.one(t, owner); got != "Could not do that: usage: /approve <CODE|REQUEST_ID>" {
		t.Errorf("/approve without a code: %q", got)
	}

	e.send(t, owner, "/reject "+bob.RequestID)
	if got := e.one(t, owner); got != "Rejected Bob (telegram 777)." {
		t.Errorf("/reject: %q", got)
	}
	if d := e.gate.Admit(ctx, pairing.Inbound{Channel: "telegram", Sender: "777"}); d.Reason != api.ReasonDeclined {
		t.Errorf("Bob after /reject: %+v", d)
	}

	e.send(t, owner, "/revoke whatsapp +5491155556666")
	if got := e.one(t, owner); !strings.HasPrefix(got, "Could not do that:") {
		t.Errorf("/revoke on the default account, where Alice is not: %q", got)
	}
	if _, err := e.gate.Allow(ctx, "telegram", "", []string{"888"}, store.ViaManual, store.Actor{Name: "test"}); err != nil {
		t.Fatal(err)
	}
	e.send(t, owner, "/revoke tg:888")
	if got := e.one(t, owner); got != "Revoked telegram 888." {
		t.Errorf("/revoke: %q", got)
	}
	if d := e.gate.Admit(ctx, pairing.Inbound{Channel: "telegram", Sender: "888"}); d.Verdict == api.Admit {
		t.Errorf("888 after /revoke: %+v", d)
	}
	e.news(t) // the owner's notice of 888's new request

	// The owner check reads the configuration in effect.
	cfg := *e.gate.Config()
	cfg.Owner = config.Owner{}
	if err := e.gate.Reconfigure(&cfg); err != nil {
		t.Fatal(err)
	}
	e.send(t, owner, "/pending")
	if got := e.one(t, owner); got != command.Refusal {
		t.Errorf("/pending once no longer an owner: %q", got)
	}
}

func TestPairAndApproveDevice(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if res := e.sendIn(t, owner, api.ChatGroup, "/pair kitchen"); res.Messages != 1 {
		t.Fatalf("/pair in a group: %+v", res)
	}
	if got := e.one(t, owner); !strings.Contains(got, "direct message") {
		t.Errorf("/pair in a group answered %q", got)
	}
	res := e.send(t, owner, "/pair kitchen tablet")
	if res.Messages != 2 {
		t.Fatalf("/pair: %+v", res)
	}
	msgs := e.news(t)
	if len(msgs) != 2 || msgs[0].Kind != "text" || msgs[1].Kind != "image" || len(msgs[1].PNG) == 0 || msgs[0].To != owner || msgs[1].To != owner {
		t.Fatalf("/pair answered %+v; want the setup code, then its QR", msgs)
	}
	code, err := device.DecodeSetupCode(msgs[0].Text)
	if err != nil || code.URL != "wss://gw.example.com/pair" {
		t.Fatalf("the /pair text is no setup code: %q: %v", msgs[0].Text, err)
	}

	// A device presents it (as the /pair protocol would store it).
	raw, _ := e.st.Outbound(ctx, 0, 10)
	now := time.Now()
	dr := store.DeviceRequest{ID: "dreq_kitchen", DeviceID: strings.Repeat("ab", 32), PublicKey: make([]byte, 32), Name: "Tab", Platform: "android",
		Role: "node", Label: "kitchen tablet", CheckCode: "482913", Remote: "192.0.2.7", CreatedAt: now, ExpiresAt: now.Add(10 * time.Minute),
		Status: store.DevicePending}
	if err := e.st.CreateDeviceRequest(ctx, dr, raw[len(raw)-1].Ref, store.Actor{Name: "device"}); err != nil {
		t.Fatal(err)
	}
	e.send(t, owner, "/devices")
	if got := e.one(t, owner); got != "Waiting: Device Tab (android), role node, from 192.0.2.7, check code 482913: /approve-device dreq_kitchen" {
		t.Errorf("/devices: %q", got)
	}
	e.send(t, owner, "/approve-device latest")
	if got := e.one(t, owner); !strings.HasPrefix(got, "Approved Tab (android), role node, from 192.0.2.7, check code 482913.") {
		t.Errorf("/approve-device: %q", got)
	}
	if r, _ := e.st.GetDeviceRequest(ctx, "dreq_kitchen"); r.Status != store.DeviceApproved || r.DecidedBy != "owner:telegram:42" {
		t.Errorf("the request after /approve-device: %+v", r)
	}
	e.send(t, owner, "/approve-device latest")
	if got := e.one(t, owner); !strings.HasPrefix(got, "Could not do that: no pending device request") {
		t.Errorf("/approve-device with none pending: %q", got)
	}
}
