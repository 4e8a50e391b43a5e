package main_test

// End-to-end test of the NATS route: `pairgate serve` with nats.url set,
// asked over an embedded NATS server the way a gateway on the bus asks,
// next to the HTTP API it must agree with.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/pairgate/pairgate/api"
)

// startNATSServer runs an embedded NATS server on a free port of
// 127.0.0.1 until the test ends.
func startNATSServer(t *testing.T) *server.Server {
	t.Helper()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("the embedded NATS server did not start")
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	return ns
}

// serveWithNATS starts `pairgate serve` on home with nats.url set to
// url, and a client of the test on the same server, and waits until
// pairgate.admit answers: an empty body is refused without reaching the
// gate.
func serveWithNATS(t *testing.T, home, url string) (*serveProc, *nats.Conn) {
	t.Helper()
	writeConfig(t, home, fmt.Sprintf("nats: {url: %q}\n", url))
	d := startServe(t, home)
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		m, err := nc.Request("pairgate.admit", []byte(`{}`), 200*time.Millisecond)
		if err == nil && m.Header.Get(micro.ErrorCodeHeader) == "400" {
			return d, nc
		}
		if time.Now().After(deadline) {
			t.Fatalf("pairgate.admit did not answer within 15 s: %v\nstderr:\n%s", err, serveTail(d.stderr.String(), 20))
		}
	}
}

// pairgate serve with nats.url answers pairgate.admit with the decisions
// and errors of POST /v1/admit, on the same store.
func TestServeNATS(t *testing.T) {
	ns := startNATSServer(t)
	home := t.TempDir()
	var gw mintedToken
	runJSON(t, home, &gw, "tokens", "create", "--scope", "gateway", "--name", "gw")
	d, nc := serveWithNATS(t, home, ns.ClientURL())
	if want := "  nats:        " + ns.ClientURL() + " (pairgate.admit, pairgate.command, plugin.outbound.>)\n"; !strings.Contains(d.stdout.String(), want) {
		t.Errorf("serve's banner does not say %q:\n%s", want, d.stdout)
	}

	// reply_by answer: the reply in the decision, as over HTTP (on the bus
	// it goes to plugin.outbound by default).
	m, err := nc.Request("pairgate.admit", []byte(`{"channel":"telegram","sender":"111","sender_name":"Bus","reply_by":"answer"}`), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	overNATS, err := strictDecision(m.Data)
	if err != nil || m.Header.Get(micro.ErrorCodeHeader) != "" {
		t.Fatalf("the NATS decision: %v %v: %s", err, m.Header, m.Data)
	}
	client := &http.Client{Timeout: 5 * time.Second}
	status, body, err := d.do(client, "POST", "/v1/admit", gw.Token, `{"channel":"telegram","sender":"222","sender_name":"Web"}`)
	if err != nil || status != http.StatusOK {
		t.Fatalf("POST /v1/admit: %d %v %s", status, err, body)
	}
	overHTTP, err := strictDecision(body)
	if err != nil {
		t.Fatal(err)
	}
	// The same decision, but for its code and request: the same verdict,
	// reason and reply text around the code.
	if overNATS.Verdict != api.Challenge || overNATS.Verdict != overHTTP.Verdict || overNATS.Reason != overHTTP.Reason ||
		strings.ReplaceAll(overNATS.Reply, overNATS.Code, "CODE") != strings.ReplaceAll(overHTTP.Reply, overHTTP.Code, "CODE") ||
		overNATS.RequestID == overHTTP.RequestID {
		t.Errorf("over NATS %+v, over HTTP %+v: want two challenges of the same shape", overNATS, overHTTP)
	}
	m, err = nc.Request("pairgate.admit", []byte(`{"channel":"telegram","sender":"111"}`), 5*time.Second)
	if again, err2 := strictDecision(m.Data); err != nil || err2 != nil || again != (api.Decision{Verdict: api.Drop, Reason: api.ReasonPending}) {
		t.Errorf("the NATS sender again: %+v %v %v", again, err, err2)
	}

	// Decisions over NATS are counted with those over HTTP: two
	// challenges (one each), one pending (the NATS sender again).
	_, metrics, err := d.do(client, "GET", "/metrics", "", "")
	if err != nil {
		t.Fatal(err)
	}
	samples := promSamples(t, string(metrics))
	for labels, want := range map[[2]string]float64{{"challenge", "challenged"}: 2, {"drop", "pending"}: 1} {
		key := promKey("pairgate_gate_decisions_total", map[string]string{"verdict": labels[0], "reason": labels[1]})
		if got := samples[key]; got != want {
			t.Errorf("%s = %v, want %v (NATS and HTTP decisions together)", key, got, want)
		}
	}

	var list api.PendingList
	runJSON(t, home, &list, "pairing", "list")
	got := map[string]string{}
	for _, p := range list.Pending {
		got[p.RequestID] = p.Sender + "/" + p.Name
	}
	if diff := cmp.Diff(map[string]string{overNATS.RequestID: "111/Bus", overHTTP.RequestID: "222/Web"}, got); diff != "" {
		t.Errorf("pairing list (-want +got):\n%s", diff)
	}

	// A body refused over HTTP is refused over NATS with the same error:
	// the HTTP status as the micro error code, the same JSON body.
	for _, bad := range []string{
		``,
		`{"channel":"telegram",}`,
		`{"channel":"telegram"`,
		`[]`,
		`{"channel":"telegram","sender":1}`,
		`{"channel":"telegram","sender":"1","code":"X"}`,
		`{"channel":"telegram","sender":"1"}}`,
		`{"channel":"telegram"}`,
		`{"channel":"telegram","sender":"1","chat":"channel"}`,
		`{"channel":"telegram","sender":"1","sender_name":"` + strings.Repeat("a", 64<<10) + `"}`,
	} {
		name := bad
		if len(name) > 60 {
			name = name[:60] + "…"
		}
		status, httpBody, err := d.do(client, "POST", "/v1/admit", gw.Token, bad)
		if err != nil {
			t.Fatal(err)
		}
		m, err := nc.Request("pairgate.admit", []byte(bad), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var fromHTTP, fromNATS api.ErrorBody
		if err := json.Unmarshal(httpBody, &fromHTTP); err != nil {
			t.Fatalf("%s over HTTP: %d %s", name, status, httpBody)
		}
		if err := json.Unmarshal(m.Data, &fromNATS); err != nil {
			t.Fatalf("%s over NATS: %v %s", name, m.Header, m.Data)
		}
		if diff := cmp.Diff(fromHTTP, fromNATS); diff != "" || m.Header.Get(micro.ErrorCodeHeader) != fmt.Sprint(status) ||
			m.Header.Get(micro.ErrorHeader) != fromHTTP.Error.Message {
			t.Errorf("%s: HTTP %d, NATS %v: error bodies (-http +nats):\n%s", name, status, m.Header, diff)
		}
	}

	if code, _ := d.stop(15 * time.Second); code != 0 {
		t.Errorf("serve exited %d", code)
	}
	log := d.stderr.String()
	for _, want := range []string{`msg="NATS: connected"`, `msg="NATS: serving"`, `msg="NATS: stopped"`} {
		if !strings.Contains(log, want) {
			t.Errorf("serve's log lacks %s:\n%s", want, serveTail(log, 30))
		}
	}
	noSecretsIn(t, log, "pairing code", []string{overNATS.Code, overHTTP.Code, gw.Token})
}

// The README's Go client for pairgate.admit, built as it stands and run
// against a real daemon: its commands print what the README shows, but
// for the code and the request id.
func TestREADMENATSClient(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Go program")
	}
	const heading = "### NATS: the gate on the bus"
	dir := t.TempDir()
	prog := "package main\n\nimport (\n\t\"fmt\"\n\t\"log\"\n\t\"os\"\n\t\"time\"\n\n\t\"github.com/nats-io/nats.go\"\n\t\"github.com/nats-io/nats.go/micro\"\n)\n\nfunc main() {\n" +
		readmeBlock(t, heading, "go") + "}\n"
	// The module's own go.sum pins the client's dependencies.
	sum, err := os.ReadFile("../../go.sum")
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{
		"main.go": prog,
		"go.mod":  "module readmeclient\n\ngo 1.26.8\n\nrequire github.com/nats-io/nats.go v1.55.0\n",
		"go.sum":  string(sum),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "client")
	build := exec.Command("go", "build", "-mod=mod", "-o", bin, ".")
	build.Dir = dir
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the README's client: %v\n%s\n%s", err, out, prog)
	}

	ns := startNATSServer(t)
	home := t.TempDir()
	serveWithNATS(t, home, ns.ClientURL())
	// The README's session: each "$ go run . 'BODY'" and what it printed.
	session := readmeSession(t, heading)
	if len(session) != 5 {
		t.Fatalf("the README shows %d requests after %q, want 5", len(session), heading)
	}
	codes := regexp.MustCompile(`[A-Z2-9]{8}|req_[a-z2-7]{26}`)
	var code string
	for i, step := range session {
		if i == 2 {
			// "the approval in between"
			if r := run(t, home, "pairing", "approve", "telegram", code); r.code != 0 {
				t.Fatalf("pairing approve: %s", r.stderr)
			}
		}
		body := strings.ReplaceAll(step.body, "PGMCKYAC", code)
		cmd := exec.Command(bin, body)
		cmd.Env = append(os.Environ(), "NATS_URL="+ns.ClientURL())
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("the README's client %s: %v\n%s", body, err, out)
		}
		if i == 0 {
			var d api.Decision
			if err := json.Unmarshal(out, &d); err != nil || len(d.Code) != 8 {
				t.Fatalf("the first request: %s", out)
			}
			code = d.Code
		}
		if got, want := codes.ReplaceAllString(string(out), "X"), codes.ReplaceAllString(step.out, "X"); got != want {
			t.Errorf("$ go run . '%s'\ngot:  %s\nwant: %s", step.body, got, want)
		}
	}
}

type readmeStep struct{ body, out string }

// readmeSession is the README's shell session after heading of the Go
// client: "$ go run . 'BODY'" lines, each followed by its output.
func readmeSession(t *testing.T, heading string) []readmeStep {
	t.Helper()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, _ := strings.Cut(string(readme), heading+"\n")
	m := regexp.MustCompile("(?s)```\n(\\$ go run \\. .*?)```").FindStringSubmatch(after)
	if m == nil {
		t.Fatalf("no session of the Go client after %q in README.md", heading)
	}
	var steps []readmeStep
	for line := range strings.Lines(m[1]) {
		if body, ok := strings.CutPrefix(line, "$ go run . '"); ok {
			steps = append(steps, readmeStep{body: strings.TrimSuffix(strings.TrimSpace(body), "'")})
		} else if len(steps) > 0 {
			steps[len(steps)-1].out += line
		}
	}
	return steps
}
