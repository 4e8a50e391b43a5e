package natsbus

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

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

const ownerID = "42"

// talking is a gate that speaks: owner 42 on telegram, device pairing, the
// outbound reader and the owner commands, on one SQLite file.
type talking struct {
	gate    *pairing.Service
	st      *sqlite.Store
	devices *device.Service
	cmds    *command.Service
	out     *outbound.Reader
}

func talkingGate(t *testing.T, path string) *talking {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	sec, _ := secret.FromBytes(bytes.Repeat([]byte{9}, secret.Size))
	cfg := config.Default()
	cfg.Owner.Senders = map[string][]string{"telegram": {ownerID}}
	g := &talking{st: st}
	if g.gate, err = pairing.New(pairing.Options{Store: st, Secret: sec, Config: cfg}); err != nil {
		t.Fatal(err)
	}
	if g.devices, err = device.New(device.Options{Store: st, Secret: sec,
		URL: func() (string, device.URLSource, error) {
			return "wss://gw.example.com/pair", device.URLSourceConfig, nil
		}}); err != nil {
		t.Fatal(err)
	}
	if g.cmds, err = command.New(command.Options{Pairing: g.gate, Devices: g.devices, Store: st}); err != nil {
		t.Fatal(err)
	}
	if g.out, err = outbound.New(outbound.Options{Store: st, Pairing: g.gate, Devices: g.devices}); err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { g.gate.Run(runCtx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; st.Close() })
	return g
}

func (g *talking) bus(t *testing.T, url, holder string) (*logBuf, func()) {
	t.Helper()
	return startBus(t, Options{URL: url, Pairing: g.gate, Store: g.st, Holder: holder, Commands: g.cmds, Outbound: g.out})
}

// inbox collects what is published on plugin.outbound.>, as a gateway's
// channel plugins would take it.
type inbox struct {
	mu   sync.Mutex
	msgs []received
}

type received struct {
	subject string
	msgID   string
	env     Envelope
}

func subscribe(t *testing.T, nc *nats.Conn) *inbox {
	t.Helper()
	in := &inbox{}
	_, err := nc.Subscribe(OutboundSubjectPrefix+">", func(m *nats.Msg) {
		var env Envelope
		dec := json.NewDecoder(bytes.NewReader(m.Data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&env); err != nil {
			t.Errorf("%s: not an envelope: %v: %s", m.Subject, err, m.Data)
			return
		}
		in.mu.Lock()
		in.msgs = append(in.msgs, received{m.Subject, m.Header.Get("Nats-Msg-Id"), env})
		in.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return in
}

// wait returns the messages once there are n, failing after 10 s.
func (in *inbox) wait(t *testing.T, n int) []received {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		in.mu.Lock()
		got := append([]received(nil), in.msgs...)
		in.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d outbound messages after 10 s, want %d: %+v", len(got), n, got)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func commandReq(t *testing.T, nc *nats.Conn, in api.CommandRequest) api.CommandResult {
	t.Helper()
	body, _ := json.Marshal(in)
	m, err := nc.Request(CommandSubject, body, 5*time.Second)
	if err != nil {
		t.Fatalf("request %s: %v", CommandSubject, err)
	}
	if code := m.Header.Get(micro.ErrorCodeHeader); code != "" {
		t.Fatalf("request %s: error %s: %s", CommandSubject, code, m.Data)
	}
	var res api.CommandResult
	if err := json.Unmarshal(m.Data, &res); err != nil {
		t.Fatal(err)
	}
	return res
}

// A gateway on the bus: an unknown sender's message gets the challenge on
// plugin.outbound.telegram and the owner a notice; the owner approves with
// /approve in chat; the sender's "approved" notice and the owner's answer
// arrive; a non-owner's /approve does nothing but a refusal; /pair sends
// a setup code and its QR.
func TestGatewaySimulatorOnTheBus(t *testing.T) {
	ns := startNATS(t, -1)
	g := talkingGate(t, filepath.Join(t.TempDir(), "pairgate.db"))
	logs, _ := g.bus(t, ns.ClientURL(), "a")
	nc := client(t, ns.ClientURL())
	box := subscribe(t, nc)
	waitServing(t, nc)
	logs.waitLog(t, "NATS: publishing outbound messages")

	d := admit(t, nc, api.AdmitRequest{Channel: "telegram", Account: "work", Sender: "555", SenderName: "Alice"})
	got := box.wait(t, 2)
	notice, challenge := got[0], got[1]
	if notice.subject != "plugin.outbound.telegram.work" || notice.env.Payload.To != ownerID || notice.env.Payload.Cause != store.CauseNotice ||
		!strings.HasPrefix(notice.env.Payload.Text, "Alice (telegram 555, account work) asks to talk to your assistant.") {
		t.Errorf("the owner's notice: %+v", notice)
	}
	if challenge.subject != "plugin.outbound.telegram.work" || challenge.env.Payload.To != "555" || challenge.env.Payload.Kind != "text" ||
		!strings.Contains(challenge.env.Payload.Text, d.Code) || challenge.env.Source != "pairgate" || challenge.env.Topic != challenge.subject ||
		challenge.env.ID != "pairgate-outbound-2" || challenge.msgID != challenge.env.ID {
		t.Errorf("the challenge: %+v", challenge)
	}

	// A non-owner's /approve: a refusal, nothing approved.
	res := commandReq(t, nc, api.CommandRequest{Channel: "telegram", Sender: "666", Text: "/approve " + d.Code})
	if !res.Handled {
		t.Fatalf("a non-owner's /approve: %+v", res)
	}
	got = box.wait(t, 3)
	if got[2].env.Payload.To != "666" || got[2].env.Payload.Text != command.Refusal || got[2].subject != "plugin.outbound.telegram" {
		t.Errorf("the non-owner got %+v", got[2])
	}
	if dd := admit(t, nc, api.AdmitRequest{Channel: "telegram", Account: "work", Sender: "555"}); dd.Verdict == api.Admit {
		t.Fatal("a non-owner's /approve let the sender in")
	}

	// The owner approves in chat.
	if res := commandReq(t, nc, api.CommandRequest{Channel: "telegram", Sender: ownerID, Text: "/approve " + d.Code}); res.Messages != 2 {
		t.Errorf("the owner's /approve: %+v", res)
	}
	got = box.wait(t, 5)
	if p := got[3].env.Payload; got[3].subject != "plugin.outbound.telegram.work" || p.To != "555" || p.Cause != store.CauseApproved {
		t.Errorf("the sender's notice: %+v", got[3])
	}
	if p := got[4].env.Payload; got[4].subject != "plugin.outbound.telegram" || p.To != ownerID || !strings.HasPrefix(p.Text, "Approved Alice") {
		t.Errorf("the owner's answer: %+v", got[4])
	}
	deadline := time.Now().Add(5 * time.Second)
	for admit(t, nc, api.AdmitRequest{Channel: "telegram", Account: "work", Sender: "555"}).Verdict != api.Admit {
		if time.Now().After(deadline) {
			t.Fatal("the sender is not admitted 5 s after /approve")
		}
		time.Sleep(10 * time.Millisecond)
	}

	// /pair: the setup code, then its QR, in the owner's DM.
	if res := commandReq(t, nc, api.CommandRequest{Channel: "telegram", Sender: ownerID, Text: "/pair kitchen"}); res.Messages != 2 {
		t.Errorf("/pair: %+v", res)
	}
	got = box.wait(t, 7)
	text, img := got[5].env.Payload, got[6].env.Payload
	if _, err := device.DecodeSetupCode(text.Text); err != nil || text.To != ownerID {
		t.Errorf("/pair sent %+v: %v", text, err)
	}
	if img.Kind != "image" || !bytes.HasPrefix(img.PNG, []byte("\x89PNG")) {
		t.Errorf("/pair's second message is no PNG: kind %s, %d bytes", img.Kind, len(img.PNG))
	}
	seqs := map[int64]bool{}
	for i, m := range box.wait(t, 7) {
		if m.env.Payload.Seq != int64(i+1) || seqs[m.env.Payload.Seq] {
			t.Errorf("message %d has seq %d: want each once, in order", i, m.env.Payload.Seq)
		}
		seqs[m.env.Payload.Seq] = true
	}
}

// The publisher goes on from its cursor: messages recorded while NATS is
// down, and while no pairgate publishes, arrive once it is back, each once
// and in order. They are read from a JetStream stream an operator keeps of
// the outbound subjects, so the test's reader never misses one that was
// published while it was reconnecting itself.
func TestOutboundAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	ns := startJetStreamAt(t, -1, dir)
	port := ns.Addr().(*net.TCPAddr).Port
	url := ns.ClientURL()
	nc := client(t, url)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// The shortest duplicate window JetStream takes (100 ms): a message
	// published again later is kept twice, so the count shows it.
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "OUT", Subjects: []string{OutboundSubjectPrefix + ">"},
		Storage: jetstream.FileStorage, Duplicates: 100 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "pairgate.db")
	g := talkingGate(t, path)
	logs, stop := g.bus(t, url, "a")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log:\n%s", logs)
		}
	})
	logs.waitLog(t, "NATS: publishing outbound messages")
	say := func(text string) {
		t.Helper()
		if _, err := g.st.AppendOutbound(ctx, []store.OutboundMessage{{Channel: "signal", Account: "default",
			To: "+15555550100", Kind: store.OutboundText, Text: text, Cause: store.CauseCommand}}, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	texts := func() []string {
		c, err := js.OrderedConsumer(ctx, "OUT", jetstream.OrderedConsumerConfig{})
		if err != nil {
			return nil
		}
		var out []string
		for {
			m, err := c.Next(jetstream.FetchMaxWait(200 * time.Millisecond))
			if err != nil {
				return out
			}
			var env Envelope
			json.Unmarshal(m.Data(), &env)
			out = append(out, env.Payload.Text)
		}
	}
	waitFor := func(want string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for strings.Join(texts(), ",") != want {
			if time.Now().After(deadline) {
				t.Fatalf("the stream holds %v after 15 s, want %s", texts(), want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	say("one")
	waitFor("one")

	stopNATS(ns)
	logs.waitLog(t, "NATS: disconnected; reconnecting")
	say("two") // while NATS is down: the publisher retries
	startJetStreamAt(t, port, dir)
	waitFor("one,two")

	stop() // no publisher
	say("three")
	g.bus(t, url, "b")
	waitFor("one,two,three")
	time.Sleep(300 * time.Millisecond)
	if got := strings.Join(texts(), ","); got != "one,two,three" {
		t.Errorf("the stream holds %s, want each message once", got)
	}
}

// A publisher that fails at every retry while NATS is down says so at Warn
// once per logEvery, not once a second.
func TestFailuresAreLoggedSparingly(t *testing.T) {
	logs := &logBuf{}
	b, err := New(Options{URL: "nats://127.0.0.1:1", Pairing: newGate(t),
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	warn := b.failures("NATS: publishing failed; will retry")
	for range 5 {
		warn("publish", errors.New("nats: outbound buffer limit exceeded"))
	}
	if w, d := strings.Count(logs.String(), "level=WARN"), strings.Count(logs.String(), "level=DEBUG"); w != 1 || d != 4 {
		t.Errorf("5 failures in a row logged %d at Warn and %d at Debug, want 1 and 4:\n%s", w, d, logs)
	}
}
