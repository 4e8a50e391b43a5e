package natsbus

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/pairgate/pairgate/api"
	"github.com/pairgate/pairgate/internal/buildinfo"
	"github.com/pairgate/pairgate/pairing"
	pgserver "github.com/pairgate/pairgate/server"
	"github.com/pairgate/pairgate/store"
)

// startNATS runs an embedded NATS server on 127.0.0.1:port (-1: any free
// port) until the test ends. auth, when set, is user:password.
func startNATS(t *testing.T, port int, auth ...string) *server.Server {
	t.Helper()
	opts := &server.Options{Host: "127.0.0.1", Port: port, NoLog: true, NoSigs: true}
	if len(auth) == 2 {
		opts.Username, opts.Password = auth[0], auth[1]
	}
	return startServer(t, opts)
}

// startServer starts an embedded NATS server, shut down with the test.
func startServer(t *testing.T, opts *server.Options) *server.Server {
	t.Helper()
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("the embedded NATS server did not start")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

func stopNATS(s *server.Server) {
	s.Shutdown()
	s.WaitForShutdown()
}

// freePort is a 127.0.0.1 port nothing listens on.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// newGate is a pairing service with the default config on a fresh SQLite
// store, with its follower of the change log running (an approval reaches
// the gate through it, as in the daemon).
func newGate(t *testing.T) *pairing.Service {
	t.Helper()
	gate, _ := gateOn(t, filepath.Join(t.TempDir(), "pairgate.db"))
	return gate
}

// logBuf collects a Bus's log, safe to read while it writes.
type logBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuf) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuf) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitLog waits until the log has want.
func (b *logBuf) waitLog(t *testing.T, want string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(b.String(), want); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the log never said %q:\n%s", want, b)
		}
	}
}

// runBus runs a Bus on url until the test ends, and checks that Run then
// returns nil promptly.
func runBus(t *testing.T, url string, gate *pairing.Service) *logBuf {
	t.Helper()
	logs, _ := startBus(t, Options{URL: url, Pairing: gate})
	return logs
}

// startBus runs a Bus with o (retrying every 50 ms, logging at debug) until
// stop, which the test's cleanup also calls; Run must return nil then.
func startBus(t *testing.T, o Options) (logs *logBuf, stop func()) {
	t.Helper()
	logs = &logBuf{}
	o.RetryWait = 50 * time.Millisecond
	o.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	b, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- b.Run(ctx) }()
	stop = sync.OnceFunc(func() {
		cancel()
		select {
		case err := <-ran:
			if err != nil {
				t.Errorf("Run returned %v after its context ended, want nil", err)
			}
		case <-time.After(15 * time.Second):
			t.Errorf("Run still running 15 s after its context ended; log:\n%s", logs)
		}
	})
	t.Cleanup(stop)
	return logs, stop
}

// client connects the test to url, reconnecting for as long as it lives.
func client(t *testing.T, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond), nats.RetryOnFailedConnect(true))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// waitServing waits until pairgate.admit answers (an empty object, refused
// without touching the store).
func waitServing(t *testing.T, nc *nats.Conn) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		m, err := nc.Request(AdmitSubject, []byte(`{}`), 200*time.Millisecond)
		if err == nil && m.Header.Get(micro.ErrorCodeHeader) == "400" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pairgate.admit did not answer within 15 s: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func admit(t *testing.T, nc *nats.Conn, in api.AdmitRequest) api.Decision {
	t.Helper()
	body, _ := json.Marshal(in)
	m, err := nc.Request(AdmitSubject, body, 5*time.Second)
	if err != nil {
		t.Fatalf("request %s: %v", AdmitSubject, err)
	}
	if code := m.Header.Get(micro.ErrorCodeHeader); code != "" {
		t.Fatalf("request %s: error %s %s: %s", AdmitSubject, code, m.Header.Get(micro.ErrorHeader), m.Data)
	}
	var d api.Decision
	dec := json.NewDecoder(bytes.NewReader(m.Data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("the reply is not a decision: %v: %s", err, m.Data)
	}
	return d
}

// An unknown sender is challenged with a code, told nothing while the
// request is pending, and admitted once approved: the gate's answers, over
// NATS.
func TestAdmit(t *testing.T) {
	ns := startNATS(t, -1)
	gate := newGate(t)
	logs := runBus(t, ns.ClientURL(), gate)
	nc := client(t, ns.ClientURL())
	waitServing(t, nc)

	alice := api.AdmitRequest{Channel: "telegram", Sender: "tg:123456789", SenderName: "Alice"}
	d := admit(t, nc, alice)
	// On the bus the reply goes out as an outbound message
	// (plugin.outbound.telegram), not in the answer.
	if d.Verdict != api.Challenge || d.Reason != api.ReasonChallenged || len(d.Code) != 8 || !strings.HasPrefix(d.RequestID, "req_") ||
		d.Reply != "" {
		t.Fatalf("an unknown sender: %+v, want a challenge with a code and no reply", d)
	}
	if bob := admit(t, nc, api.AdmitRequest{Channel: "telegram", Account: "other", Sender: "7", ReplyBy: api.ReplyByAnswer}); !strings.Contains(bob.Reply, bob.Code) {
		t.Errorf("reply_by answer on the bus: %+v, want the reply in the answer", bob)
	}
	code := d.Code
	if got := admit(t, nc, alice); got != (api.Decision{Verdict: api.Drop, Reason: api.ReasonPending}) {
		t.Errorf("the same sender again: %+v, want drop/pending", got)
	}
	pending, err := gate.ListPending(t.Context(), pairing.Filter{Channel: "telegram", Account: "default"})
	if err != nil || len(pending) != 1 || pending[0].Sender != "123456789" || pending[0].Name != "Alice" || pending[0].RequestID != d.RequestID {
		t.Fatalf("pending after the challenge: %+v %v", pending, err)
	}
	if _, err := gate.Approve(t.Context(), pairing.Target{Channel: "telegram", CodeOrID: code}, false, store.Actor{Name: "test", Source: "test"}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		got := admit(t, nc, alice)
		if got == (api.Decision{Verdict: api.Admit, Reason: api.ReasonAllowed}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the approval: %+v, want admit/allowed", got)
		}
	}
	// Other rules answer as they do over HTTP.
	for _, tt := range []struct {
		in   api.AdmitRequest
		want api.Decision
	}{
		{api.AdmitRequest{Channel: "telegram", Sender: "123456789", Chat: api.ChatGroup}, api.Decision{Verdict: api.Admit, Reason: api.ReasonAllowed}},
		{api.AdmitRequest{Channel: "telegram", Sender: "555", Chat: api.ChatGroup}, api.Decision{Verdict: api.Drop, Reason: api.ReasonGroup}},
		{api.AdmitRequest{Channel: "telegram", Sender: "not a number"}, api.Decision{Verdict: api.Drop, Reason: api.ReasonInvalidSender}},
		{api.AdmitRequest{Channel: "fax", Sender: "1"}, api.Decision{Verdict: api.Drop, Reason: api.ReasonUnknownChannel}},
		{api.AdmitRequest{Channel: "telegram", Account: "a.b", Sender: "1"}, api.Decision{Verdict: api.Drop, Reason: api.ReasonInvalidAccount}},
	} {
		if got := admit(t, nc, tt.in); got != tt.want {
			t.Errorf("%+v: %+v, want %+v", tt.in, got, tt.want)
		}
	}
	if strings.Contains(logs.String(), code) {
		t.Errorf("the pairing code appears in the log:\n%s", logs)
	}
}

// A body the HTTP API would refuse is refused here with the same code and
// message, as a micro error: code 400 (413 for a body over the bound) in
// the headers, the JSON error body as the data.
func TestBadRequests(t *testing.T) {
	ns := startNATS(t, -1)
	gate := newGate(t)
	runBus(t, ns.ClientURL(), gate)
	nc := client(t, ns.ClientURL())
	waitServing(t, nc)

	tests := []struct {
		name, body   string
		status, code string
		msg          string
	}{
		{"empty", ``, "400", api.CodeBadRequest, "the body is empty; send a JSON object"},
		{"blank", " \n", "400", api.CodeBadRequest, "the body is empty; send a JSON object"},
		{"malformed", `{"channel":"telegram",}`, "400", api.CodeBadRequest, "malformed JSON at byte 23: invalid character '}' looking for beginning of object key string"},
		{"cut short", `{"channel":"telegram"`, "400", api.CodeBadRequest, "the JSON body ends early"},
		{"not an object", `["telegram"]`, "400", api.CodeBadRequest, "the body must be a JSON object, not a JSON array"},
		{"wrong type", `{"channel":"telegram","sender":123}`, "400", api.CodeBadRequest, `field "sender": want string, got JSON number`},
		{"unknown field", `{"channel":"telegram","sender":"1","code":"X"}`, "400", api.CodeBadRequest, `unknown field "code"`},
		{"two objects", `{"channel":"telegram","sender":"1"}{}`, "400", api.CodeBadRequest, "trailing data after the JSON object"},
		{"stray brace", `{"channel":"telegram","sender":"1"}}`, "400", api.CodeBadRequest, "trailing data after the JSON object"},
		{"missing sender", `{"channel":"telegram"}`, "400", api.CodeInvalidInput, `fields "channel" and "sender" are required`},
		{"missing channel", `{"sender":"1"}`, "400", api.CodeInvalidInput, `fields "channel" and "sender" are required`},
		{"bad chat", `{"channel":"telegram","sender":"1","chat":"channel"}`, "400", api.CodeInvalidInput, `field "chat": want "dm" or "group", got "channel"`},
		{"too large", `{"channel":"telegram","sender":"1","sender_name":"` + strings.Repeat("a", pgserver.MaxBodyBytes) + `"}`, "413", api.CodeTooLarge,
			fmt.Sprintf("the body is over %d bytes", pgserver.MaxBodyBytes)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := nc.Request(AdmitSubject, []byte(tt.body), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if got := m.Header.Get(micro.ErrorCodeHeader); got != tt.status {
				t.Errorf("%s = %q, want %q", micro.ErrorCodeHeader, got, tt.status)
			}
			if got := m.Header.Get(micro.ErrorHeader); got != tt.msg {
				t.Errorf("%s = %q, want %q", micro.ErrorHeader, got, tt.msg)
			}
			var body api.ErrorBody
			dec := json.NewDecoder(bytes.NewReader(m.Data))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&body); err != nil {
				t.Fatalf("the error body is not JSON: %v: %s", err, m.Data)
			}
			if diff := cmp.Diff(api.ErrorBody{Error: api.ErrorDetail{Code: tt.code, Message: tt.msg}}, body); diff != "" {
				t.Errorf("error body (-want +got):\n%s", diff)
			}
		})
	}
	if pending, err := gate.ListPending(t.Context(), pairing.Filter{}); err != nil || len(pending) != 0 {
		t.Errorf("a refused request reached the gate: %+v %v", pending, err)
	}
}

// The service is a micro service: PING and INFO name it, with its SemVer
// version and the admit endpoint in the default queue group; STATS counts
// requests and errors.
func TestServiceDiscovery(t *testing.T) {
	ns := startNATS(t, -1)
	runBus(t, ns.ClientURL(), newGate(t))
	nc := client(t, ns.ClientURL())
	waitServing(t, nc)
	version := ServiceVersion(buildinfo.Read().Version)
	if !semVer.MatchString(version) {
		t.Errorf("version %q is not SemVer", version)
	}

	m, err := nc.Request("$SRV.PING.pairgate", nil, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var ping micro.Ping
	if err := json.Unmarshal(m.Data, &ping); err != nil || ping.Name != ServiceName || ping.Type != micro.PingResponseType || ping.Version != version || ping.ID == "" {
		t.Errorf("$SRV.PING.pairgate: %+v %v", ping, err)
	}
	m, err = nc.Request("$SRV.PING", nil, 5*time.Second)
	if err != nil || !strings.Contains(string(m.Data), `"name":"pairgate"`) {
		t.Errorf("$SRV.PING: %s %v", m.Data, err)
	}

	m, err = nc.Request("$SRV.INFO.pairgate", nil, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var info micro.Info
	if err := json.Unmarshal(m.Data, &info); err != nil {
		t.Fatal(err)
	}
	want := []micro.EndpointInfo{{Name: "admit", Subject: AdmitSubject, QueueGroup: micro.DefaultQueueGroup}}
	if info.Name != ServiceName || info.Version != version || info.Description == "" || info.Type != micro.InfoResponseType ||
		info.Metadata["build_version"] != buildinfo.Read().Version {
		t.Errorf("$SRV.INFO.pairgate: %+v", info)
	}
	if diff := cmp.Diff(want, info.Endpoints); diff != "" {
		t.Errorf("endpoints (-want +got):\n%s", diff)
	}

	admit(t, nc, api.AdmitRequest{Channel: "telegram", Sender: "1"})
	// waitServing's probes are refused: each is an error. micro counts a
	// request just after its reply went out, so the count may lag.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		m, err = nc.Request("$SRV.STATS.pairgate."+ping.ID, nil, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var stats micro.Stats
		if err := json.Unmarshal(m.Data, &stats); err != nil || len(stats.Endpoints) != 1 || stats.Type != micro.StatsResponseType {
			t.Fatalf("$SRV.STATS: %s %v", m.Data, err)
		}
		e := stats.Endpoints[0]
		if e.Name == "admit" && e.NumRequests >= 2 && e.NumErrors == e.NumRequests-1 &&
			e.LastError == `400:fields "channel" and "sender" are required` {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("admit stats: %+v", e)
		}
	}
}

func TestServiceVersion(t *testing.T) {
	for _, tt := range []struct{ build, want string }{
		{"v1.2.0", "1.2.0"},
		{"v1.2.0-rc.1", "1.2.0-rc.1"},
		{"v0.0.0-20261124064604-56bbe6e1f2a3", "0.0.0-20261124064604-56bbe6e1f2a3"},
		{"v0.0.0-20261124064604-56bbe6e1f2a3+dirty", "0.0.0-20261124064604-56bbe6e1f2a3+dirty"},
		{"v1.4.2-0.20261124064604-56bbe6e1f2a3", "1.4.2-0.20261124064604-56bbe6e1f2a3"},
		{"v2.0.0+incompatible", "2.0.0+incompatible"},
		{"(devel)", DevVersion},
		{"", DevVersion},
		{"v1.2", DevVersion},
	} {
		if got := ServiceVersion(tt.build); got != tt.want {
			t.Errorf("ServiceVersion(%q) = %q, want %q", tt.build, got, tt.want)
		}
	}
}

func TestRedact(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"nats://127.0.0.1:4222", "nats://127.0.0.1:4222"},
		{"nats://alice:s3cret@nats.example:4222", "nats://***@nats.example:4222"},
		{"nats://t0ken@nats.example:4222", "nats://***@nats.example:4222"},
		{"tls://a:p@x:4222, nats://y:4222,tok@z:4222", "tls://***@x:4222, nats://y:4222,***@z:4222"},
		{"ws://u:p%40ss@host/path?x=a@b", "ws://***@host/path?x=a@b"},
		{"nats://u:p@ss@host:4222", "nats://***@host:4222"},
	} {
		if got := Redact(tt.in); got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// Two instances on one server share the requests: every request is
// answered once, by one of them, and both answer some.
func TestQueueGroup(t *testing.T) {
	ns := startNATS(t, -1)
	gate := newGate(t)
	runBus(t, ns.ClientURL(), gate)
	runBus(t, ns.ClientURL(), gate)
	nc := client(t, ns.ClientURL())
	if _, err := gate.Allow(t.Context(), "telegram", "", []string{"42"}, store.ViaManual, store.Actor{Name: "test", Source: "test"}); err != nil {
		t.Fatal(err)
	}
	// Both are serving once INFO lists the admit endpoint of both: the
	// endpoint subscribes before the instance answers INFO with it.
	for deadline := time.Now().Add(15 * time.Second); len(endpointStats(t, nc)) < 2; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("two instances did not both register")
		}
	}
	before := endpointStats(t, nc)
	const n = 40
	for i := 0; i < n; i++ {
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			if d := admit(t, nc, api.AdmitRequest{Channel: "telegram", Sender: "42"}); d.Verdict == api.Admit {
				break
			} else if time.Now().After(deadline) {
				t.Fatalf("an allowed sender: %+v", d)
			}
		}
	}
	// micro counts a request once its handler has returned, just after
	// the reply went out: the last count may lag the last reply a little.
	var after map[string]int
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		after = endpointStats(t, nc)
		if total(after)-total(before) >= n || time.Now().After(deadline) {
			break
		}
	}
	for id, c := range after {
		if c == before[id] {
			t.Errorf("instance %s answered none of %d requests: %v → %v", id, n, before, after)
		}
	}
	if len(after) != 2 || total(after)-total(before) != n {
		t.Errorf("instances %v → %v answered %d requests in all, want 2 instances and %d", before, after, total(after)-total(before), n)
	}
}

func total(counts map[string]int) int {
	n := 0
	for _, c := range counts {
		n += c
	}
	return n
}

// endpointStats asks every instance for its stats: admit requests by
// instance id, for the instances whose admit endpoint is registered.
func endpointStats(t *testing.T, nc *nats.Conn) map[string]int {
	t.Helper()
	inbox := nats.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := nc.PublishRequest("$SRV.STATS.pairgate", inbox, nil); err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for {
		m, err := sub.NextMsg(300 * time.Millisecond)
		if err != nil {
			return out
		}
		var s micro.Stats
		if err := json.Unmarshal(m.Data, &s); err != nil {
			t.Fatal(err)
		}
		for _, e := range s.Endpoints {
			if e.Name == "admit" {
				out[s.ID] = e.NumRequests
			}
		}
	}
}

// Run started while no server is up keeps trying, logging the failure, and
// serves once the server starts.
func TestConnectsWhenServerStarts(t *testing.T) {
	port := freePort(t)
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	logs := runBus(t, url, newGate(t))
	logs.waitLog(t, "NATS: cannot connect; retrying")
	ns := startNATS(t, port)
	nc := client(t, ns.ClientURL())
	waitServing(t, nc)
	logs.waitLog(t, "NATS: serving")
	// 50 ms between attempts, but the failure logged at most every 5 s.
	if n := strings.Count(logs.String(), "cannot connect"); n > 2 {
		t.Errorf("%d lines about failed attempts, want at most one per 5 s:\n%s", n, logs)
	}
}

// A NATS server restart is waited out: the connection comes back and the
// service answers again, the gate's state intact.
func TestReconnect(t *testing.T) {
	ns := startNATS(t, -1)
	port := ns.Addr().(*net.TCPAddr).Port
	gate := newGate(t)
	logs := runBus(t, ns.ClientURL(), gate)
	nc := client(t, ns.ClientURL())
	waitServing(t, nc)
	first := admit(t, nc, api.AdmitRequest{Channel: "telegram", Sender: "7"})
	if first.Verdict != api.Challenge {
		t.Fatalf("before the restart: %+v", first)
	}

	stopNATS(ns)
	logs.waitLog(t, "NATS: disconnected; reconnecting")
	startNATS(t, port)
	waitServing(t, nc)
	logs.waitLog(t, "NATS: reconnected")
	if got := admit(t, nc, api.AdmitRequest{Channel: "telegram", Sender: "7"}); got != (api.Decision{Verdict: api.Drop, Reason: api.ReasonPending}) {
		t.Errorf("after the restart: %+v, want the request still pending", got)
	}
}

// Run ends promptly when its context ends while it is still trying to
// connect (runBus checks Run's return).
func TestStopsWhileConnecting(t *testing.T) {
	logs := runBus(t, fmt.Sprintf("nats://127.0.0.1:%d", freePort(t)), newGate(t))
	logs.waitLog(t, "NATS: cannot connect")
}

// Credentials in the URL are used, and never logged: not in the
// connection lines, not in the errors of a refused connection.
func TestCredentialsNotLogged(t *testing.T) {
	ns := startNATS(t, -1, "alice", "s3cret-pw")
	port := ns.Addr().(*net.TCPAddr).Port
	good := fmt.Sprintf("nats://alice:s3cret-pw@127.0.0.1:%d", port)
	logs := runBus(t, good, newGate(t))
	nc := client(t, good)
	waitServing(t, nc)
	logs.waitLog(t, "NATS: serving")
	if !strings.Contains(logs.String(), "nats://***@127.0.0.1") {
		t.Errorf("the log does not name the server:\n%s", logs)
	}

	bad := runBus(t, fmt.Sprintf("nats://alice:wr0ng-pw@127.0.0.1:%d", port), newGate(t))
	bad.waitLog(t, "NATS: cannot connect")
	for _, l := range []*logBuf{logs, bad} {
		if s := l.String(); strings.Contains(s, "s3cret-pw") || strings.Contains(s, "wr0ng-pw") {
			t.Errorf("a password appears in the log:\n%s", s)
		}
	}
}

func TestNewRefusesIncompleteOptions(t *testing.T) {
	if _, err := New(Options{Pairing: &pairing.Service{}}); err == nil {
		t.Error("New without a URL succeeded")
	}
	if _, err := New(Options{URL: "nats://127.0.0.1:4222"}); err == nil {
		t.Error("New without a pairing service succeeded")
	}
}

// The machine's NATS service (CI has one at 127.0.0.1:4222): set
// PAIRGATE_TEST_NATS=nats://127.0.0.1:4222 to run against it. The
// embedded server covers everything else.
func TestExternalNATS(t *testing.T) {
	url := os.Getenv("PAIRGATE_TEST_NATS")
	if url == "" {
		t.Skip("PAIRGATE_TEST_NATS is not set (e.g. nats://127.0.0.1:4222): not testing against an external NATS server")
	}
	runBus(t, url, newGate(t))
	nc := client(t, url)
	waitServing(t, nc)
	// Another pairgate on a shared server may answer in the same queue
	// group; any instance refuses an incomplete body the same way.
	m, err := nc.Request(AdmitSubject, []byte(`{"channel":"telegram"}`), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if m.Header.Get(micro.ErrorCodeHeader) != "400" ||
		string(m.Data) != `{"error":{"code":"invalid_input","message":"fields \"channel\" and \"sender\" are required"}}` {
		t.Errorf("an incomplete body: %v %s", m.Header, m.Data)
	}
}

// When its context ends, Run leaves the bus: it returns nil and no
// instance answers any more.
func TestRunStops(t *testing.T) {
	ns := startNATS(t, -1)
	b, err := New(Options{URL: ns.ClientURL(), Pairing: newGate(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- b.Run(ctx) }()
	nc := client(t, ns.ClientURL())
	waitServing(t, nc)
	cancel()
	select {
	case err := <-ran:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run still running 15 s after its context ended")
	}
	for _, subject := range []string{AdmitSubject, "$SRV.PING.pairgate"} {
		if _, err := nc.Request(subject, []byte(`{}`), 2*time.Second); !errors.Is(err, nats.ErrNoResponders) {
			t.Errorf("%s after Run returned: %v, want no responders", subject, err)
		}
	}
	// The server notices the closed connection on its own time.
	for deadline := time.Now().Add(10 * time.Second); ns.NumClients() != 1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d clients on the server after Run returned, want 1 (the test's)", ns.NumClients())
		}
	}
}
