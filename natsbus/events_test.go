package natsbus

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pairgate/pairgate/api"
	"github.com/pairgate/pairgate/config"
	"github.com/pairgate/pairgate/pairing"
	"github.com/pairgate/pairgate/secret"
	"github.com/pairgate/pairgate/store/sqlite"
)

func startJetStream(t *testing.T) *server.Server {
	t.Helper()
	return startJetStreamAt(t, -1, t.TempDir())
}

// startJetStreamAt starts a JetStream server on port keeping its streams in
// dir, so a server started again on both has the streams of the last.
func startJetStreamAt(t *testing.T, port int, dir string) *server.Server {
	t.Helper()
	return startServer(t, &server.Options{Host: "127.0.0.1", Port: port, NoLog: true, NoSigs: true, JetStream: true, StoreDir: dir})
}

// gateOn is a gate on the SQLite file path (several gates may share one,
// as processes do).
func gateOn(t *testing.T, path string) (*pairing.Service, *sqlite.Store) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	sec, _ := secret.FromBytes(bytes.Repeat([]byte{9}, secret.Size))
	svc, err := pairing.New(pairing.Options{Store: st, Secret: sec, Config: config.Default()})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { svc.Run(runCtx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; st.Close() })
	return svc, st
}

// eventsBus runs a Bus that publishes events; stop ends it and waits.
func eventsBus(t *testing.T, url string, gate *pairing.Service, st *sqlite.Store, holder string) (logs *logBuf, stop func()) {
	t.Helper()
	return startBus(t, Options{URL: url, Pairing: gate, Store: st, Holder: holder})
}

func admitN(t *testing.T, gate *pairing.Service, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		// One account each: a scope holds 3 pending requests at most.
		in := pairing.Inbound{Channel: "telegram", Account: "acct" + strconv.Itoa(i), Sender: strconv.Itoa(1000 + i)}
		if d := gate.Admit(context.Background(), in); d.Verdict != api.Challenge {
			t.Fatalf("admit %d: %+v", i, d)
		}
	}
}

// TestEventsOnJetStream: every change is published once, in order, on
// pairgate.events.<kind> with Nats-Msg-Id = seq, and a publisher stopped
// and started again goes on from its cursor: the changes made while it was
// down arrive, none twice.
func TestEventsOnJetStream(t *testing.T) {
	ns := startJetStream(t)
	gate, st := gateOn(t, filepath.Join(t.TempDir(), "pairgate.db"))
	logs, stop := eventsBus(t, ns.ClientURL(), gate, st, "a")
	logs.waitLog(t, "NATS: publishing events")
	admitN(t, gate, 0, 3)

	nc := client(t, ns.ClientURL())
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	waitMsgs := func(n uint64) jetstream.Stream {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			s, err := js.Stream(ctx, EventsStream)
			if err == nil {
				if info, err := s.Info(ctx); err == nil && info.State.Msgs >= n {
					return s
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("the events stream did not reach %d messages within 10 s (%v); log:\n%s", n, err, logs)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitMsgs(3)
	stop()
	admitN(t, gate, 3, 2) // while no publisher runs
	logs2, _ := eventsBus(t, ns.ClientURL(), gate, st, "b")
	logs2.waitLog(t, "NATS: publishing events")
	s := waitMsgs(5)
	time.Sleep(200 * time.Millisecond) // a duplicate would arrive by now
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 5 {
		t.Errorf("the stream holds %d events, want 5 (each change once)", info.State.Msgs)
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(5, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	i := 0
	for m := range batch.Messages() {
		var c api.Change
		if err := json.Unmarshal(m.Data(), &c); err != nil {
			t.Fatalf("event %d: %v: %s", i, err, m.Data())
		}
		want := strconv.Itoa(1000 + i)
		if m.Subject() != "pairgate.events.pairing.requested" || m.Headers().Get(jetstream.MsgIDHeader) != strconv.FormatInt(c.Seq, 10) ||
			c.Seq != int64(i+1) || c.Sender != want {
			t.Errorf("event %d: %s Nats-Msg-Id %s %+v; want seq %d of sender %s on pairgate.events.pairing.requested",
				i, m.Subject(), m.Headers().Get(jetstream.MsgIDHeader), c, i+1, want)
		}
		i++
	}
	if i != 5 {
		t.Errorf("read %d events, want 5", i)
	}
}

// TestEventsOnCoreNATSFromOneReplica: without JetStream events go out on
// core NATS; two publishers on one store (two replicas) publish each
// change once between them, since only the lease holder publishes.
func TestEventsOnCoreNATSFromOneReplica(t *testing.T) {
	ns := startNATS(t, -1)
	path := filepath.Join(t.TempDir(), "pairgate.db")
	gateA, stA := gateOn(t, path)
	gateB, stB := gateOn(t, path)
	nc := client(t, ns.ClientURL())
	got := make(chan *nats.Msg, 100)
	sub, err := nc.ChanSubscribe(EventsSubjectPrefix+">", got)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	nc.Flush()
	logsA, _ := eventsBus(t, ns.ClientURL(), gateA, stA, "a")
	logsB, _ := eventsBus(t, ns.ClientURL(), gateB, stB, "b")
	deadline := time.Now().Add(10 * time.Second)
	for !bytes.Contains([]byte(logsA.String()+logsB.String()), []byte("NATS: publishing events")) {
		if time.Now().After(deadline) {
			t.Fatalf("neither replica publishes events:\n%s\n%s", logsA, logsB)
		}
		time.Sleep(20 * time.Millisecond)
	}
	admitN(t, gateA, 0, 3)
	admitN(t, gateB, 3, 3)
	seen := map[string]int{}
	timeout := time.After(10 * time.Second)
	for len(seen) < 6 {
		select {
		case m := <-got:
			seen[m.Header.Get(jetstream.MsgIDHeader)]++
		case <-timeout:
			t.Fatalf("events seen: %v; want seqs 1-6", seen)
		}
	}
	time.Sleep(300 * time.Millisecond) // a second publisher would have sent its copies by now
	for len(got) > 0 {
		seen[(<-got).Header.Get(jetstream.MsgIDHeader)]++
	}
	for seq := 1; seq <= 6; seq++ {
		if n := seen[strconv.Itoa(seq)]; n != 1 {
			t.Errorf("event %d arrived %d times, want once: %v", seq, n, seen)
		}
	}
	if a, b := bytes.Contains([]byte(logsA.String()), []byte("NATS: publishing events")), bytes.Contains([]byte(logsB.String()), []byte("NATS: publishing events")); a == b {
		t.Errorf("publishing on replica a: %v, b: %v; want exactly one", a, b)
	}
}

// TestEventsAcrossNATSRestart: changes made while the NATS server is down
// are published once it is back, each once, after the ones before.
func TestEventsAcrossNATSRestart(t *testing.T) {
	dir := t.TempDir()
	ns := startJetStreamAt(t, -1, dir)
	port := ns.Addr().(*net.TCPAddr).Port
	url := ns.ClientURL()
	gate, st := gateOn(t, filepath.Join(t.TempDir(), "pairgate.db"))
	logs, _ := eventsBus(t, url, gate, st, "a")
	logs.waitLog(t, "NATS: publishing events")
	admitN(t, gate, 0, 2)
	msgs := func() uint64 {
		nc, err := nats.Connect(url)
		if err != nil {
			return 0
		}
		defer nc.Close()
		js, _ := jetstream.New(nc)
		s, err := js.Stream(context.Background(), EventsStream)
		if err != nil {
			return 0
		}
		info, err := s.Info(context.Background())
		if err != nil {
			return 0
		}
		return info.State.Msgs
	}
	waitFor := func(n uint64) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for msgs() < n {
			if time.Now().After(deadline) {
				t.Fatalf("the stream holds %d events after 15 s, want %d; log:\n%s", msgs(), n, logs)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitFor(2)
	ns.Shutdown()
	ns.WaitForShutdown()
	logs.waitLog(t, "NATS: disconnected; reconnecting")
	admitN(t, gate, 2, 2) // while NATS is down: the publisher retries
	startJetStreamAt(t, port, dir)
	waitFor(4)
	time.Sleep(300 * time.Millisecond)
	if n := msgs(); n != 4 {
		t.Errorf("after the restart the stream holds %d events, want 4 (each change once)", n)
	}
}
