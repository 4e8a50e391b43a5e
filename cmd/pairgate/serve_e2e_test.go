package main_test

// End-to-end tests of `pairgate serve`: the real binary as a daemon on
// 127.0.0.1, driven over HTTP and with the CLI on the same home, the way a
// gateway and an operator use it.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pairgate/pairgate/api"
)

// serveBuf is an io.Writer safe to read while a process writes to it.
type serveBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *serveBuf) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *serveBuf) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// serveProc is a running `pairgate serve`.
type serveProc struct {
	t              *testing.T
	cmd            *exec.Cmd
	home, url      string
	stdout, stderr *serveBuf
	exited         chan struct{} // closed when the process has exited
	exitCode       int
}

// serveFreeAddr returns a 127.0.0.1 address nothing listens on.
func serveFreeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// startServe starts `pairgate --home home serve --listen <free port>
// --log-level debug` and waits until /healthz answers.
func startServe(t *testing.T, home string) *serveProc {
	t.Helper()
	// Port 0: the daemon takes a free port itself and says which in its
	// first line, so no other test can take the port in between.
	return startServeOn(t, home, "127.0.0.1:0")
}

// startServeOn is startServe on the address listen, for a test that must
// know the address before the daemon starts or start it again there.
func startServeOn(t *testing.T, home, listen string) *serveProc {
	t.Helper()
	p := &serveProc{t: t, home: home, stdout: &serveBuf{}, stderr: &serveBuf{}, exited: make(chan struct{})}
	p.cmd = exec.Command(binary, "--home", home, "serve", "--listen", listen, "--log-level", "debug")
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		err := p.cmd.Wait()
		p.exitCode = p.cmd.ProcessState.ExitCode()
		if err != nil && p.exitCode == 0 {
			p.exitCode = -1
		}
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
			return
		default:
		}
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			p.cmd.Process.Kill()
			<-p.exited
			t.Errorf("pairgate serve did not stop within 10 s of SIGTERM; stderr:\n%s", p.stderr)
		}
	})
	client := &http.Client{Timeout: time.Second}
	for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		select {
		case <-p.exited:
			t.Fatalf("pairgate serve exited with %d before answering /healthz\nstdout:\n%s\nstderr:\n%s", p.exitCode, p.stdout, p.stderr)
		default:
		}
		if p.url == "" {
			first, _, ok := strings.Cut(p.stdout.String(), "\n")
			url, found := strings.CutPrefix(first, "pairgate serving on ")
			if !ok || !found {
				continue
			}
			p.url = url
		}
		if resp, err := client.Get(p.url + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		if time.Since(start) > 15*time.Second {
			t.Fatalf("pairgate serve did not answer /healthz within 15 s\nstdout:\n%s\nstderr:\n%s", p.stdout, p.stderr)
		}
	}
}

// stop sends SIGTERM and waits up to limit for the exit; it returns the
// exit code and how long the process took.
func (p *serveProc) stop(limit time.Duration) (int, time.Duration) {
	p.t.Helper()
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Fatal(err)
	}
	select {
	case <-p.exited:
		return p.exitCode, time.Since(start)
	case <-time.After(limit):
		p.t.Fatalf("pairgate serve still running %v after SIGTERM\nstderr (tail):\n%s", limit, serveTail(p.stderr.String(), 20))
		return 0, 0
	}
}

func serveTail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func (p *serveProc) adminToken() string {
	p.t.Helper()
	data, err := os.ReadFile(filepath.Join(p.home, "admin.token"))
	if err != nil {
		p.t.Fatal(err)
	}
	return strings.TrimSpace(string(data))
}

// do sends a request (body optional) with a bearer token and returns the status and the
// whole body.
func (p *serveProc) do(client *http.Client, method, path, token, body string) (int, []byte, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, p.url+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, data, err
}

// strictDecision decodes a /v1/admit answer, refusing anything that is not
// one complete decision object.
func strictDecision(data []byte) (api.Decision, error) {
	var d api.Decision
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return d, err
	}
	if dec.More() || dec.InputOffset() != int64(len(bytes.TrimRight(data, "\n"))) {
		return d, fmt.Errorf("data after the decision")
	}
	switch d.Verdict {
	case api.Admit, api.Drop:
	case api.Challenge:
		if len(d.Code) != 8 || !strings.HasPrefix(d.RequestID, "req_") || d.Reply == "" {
			return d, fmt.Errorf("incomplete challenge %+v", d)
		}
	default:
		return d, fmt.Errorf("verdict %q", d.Verdict)
	}
	if d.Reason == "" {
		return d, fmt.Errorf("no reason")
	}
	return d, nil
}

type mintedToken struct {
	ID, Name, Scope, Token string
}

// noSecretsIn fails if any of secrets appears in a daemon's log.
func noSecretsIn(t *testing.T, log string, what string, secrets []string) {
	t.Helper()
	if !strings.Contains(log, "level=DEBUG") {
		t.Errorf("expected debug lines in the daemon's log, got:\n%s", serveTail(log, 10))
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(log, s) {
			t.Errorf("a %s (%s) appears in the daemon's log", what, s)
		}
	}
}

// TestServeDrainsOnSIGTERM: SIGTERM in the middle of load finishes the
// requests in flight (no response is torn), exits 0 saying so, and loses
// nothing a client was told: every challenge handed out is pending in the
// store afterwards.
func TestServeDrainsOnSIGTERM(t *testing.T) {
	home := t.TempDir()
	// A cap high enough that every unknown sender gets a code, so many
	// acknowledged writes are in flight.
	if err := os.WriteFile(filepath.Join(home, "pairgate.yaml"), []byte("pairing:\n  limits:\n    max_pending: 1000000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var gw mintedToken
	runJSON(t, home, &gw, "tokens", "create", "--scope", "gateway", "--name", "load")
	allowed := []string{"101", "102", "103"}
	if r := run(t, home, append([]string{"pairing", "allow", "telegram"}, allowed...)...); r.code != 0 {
		t.Fatalf("pairing allow: %d %s", r.code, r.stderr)
	}
	d := startServe(t, home)

	const workers = 16
	tr := &http.Transport{MaxIdleConnsPerHost: workers, MaxConnsPerHost: workers}
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	defer tr.CloseIdleConnections()

	var (
		termSent   atomic.Bool
		responses  atomic.Int64
		afterTerm  atomic.Int64 // complete responses received after SIGTERM
		connErrs   atomic.Int64
		mu         sync.Mutex
		challenges = map[string]string{} // request_id → sender
		codes      []string
	)
	var wg sync.WaitGroup
	hardStop := time.Now().Add(30 * time.Second)
	for g := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(hardStop); i++ {
				sender := fmt.Sprint(1_000_000 + g*100_000 + i)
				if i%4 == 0 {
					sender = allowed[(g+i)%len(allowed)]
				}
				before := termSent.Load()
				status, data, err := d.do(client, "POST", "/v1/admit", gw.Token, fmt.Sprintf(`{"channel":"telegram","sender":%q}`, sender))
				if err != nil && status == 0 {
					if !before && !termSent.Load() {
						t.Errorf("worker %d: request failed before SIGTERM: %v", g, err)
					}
					connErrs.Add(1)
					return // shutdown began: the listener is closing
				}
				if err != nil {
					t.Errorf("worker %d: a %d response was torn: %v (%d bytes: %q)", g, status, err, len(data), data)
					return
				}
				if status != 200 {
					t.Errorf("worker %d: %d %q", g, status, data)
					return
				}
				dec, err := strictDecision(data)
				if err != nil {
					t.Errorf("worker %d: incomplete or invalid decision: %v: %q", g, err, data)
					return
				}
				switch {
				case i%4 == 0 && (dec.Verdict != api.Admit || dec.Reason != api.ReasonAllowed):
					t.Errorf("worker %d: allowed sender %s: %+v", g, sender, dec)
				case i%4 != 0 && dec.Verdict != api.Challenge:
					t.Errorf("worker %d: unknown sender %s: %+v", g, sender, dec)
				}
				if dec.Verdict == api.Challenge {
					mu.Lock()
					challenges[dec.RequestID] = sender
					codes = append(codes, dec.Code)
					mu.Unlock()
				}
				responses.Add(1)
				if termSent.Load() {
					afterTerm.Add(1)
				}
			}
			t.Errorf("worker %d: the daemon still answered 30 s after the test began", g)
		}()
	}
	for start := time.Now(); responses.Load() < 400 && time.Since(start) < 10*time.Second; {
		time.Sleep(5 * time.Millisecond)
	}
	if responses.Load() < 50 {
		t.Fatalf("only %d responses under load before SIGTERM", responses.Load())
	}
	before := responses.Load()
	termSent.Store(true)
	code, took := d.stop(5 * time.Second)
	wg.Wait()
	t.Logf("%d responses before SIGTERM, %d complete after it, %d connection errors after it; exit %d after %v",
		before, afterTerm.Load(), connErrs.Load(), code, took.Round(time.Millisecond))
	stderr := d.stderr.String()
	if code != 0 {
		t.Fatalf("exit %d after SIGTERM, want 0\nstderr (tail):\n%s", code, serveTail(stderr, 20))
	}
	if !strings.Contains(stderr, "stopped cleanly") {
		t.Errorf("stderr does not say \"stopped cleanly\":\n%s", serveTail(stderr, 20))
	}
	if connErrs.Load() == 0 {
		t.Errorf("no worker saw the daemon go away")
	}

	// Nothing acknowledged was lost, and the store is usable.
	var list struct{ Pending []api.PendingRequest }
	runJSON(t, home, &list, "pairing", "list")
	pending := map[string]api.PendingRequest{}
	for _, p := range list.Pending {
		pending[p.RequestID] = p
	}
	for id, sender := range challenges {
		p, ok := pending[id]
		if !ok {
			t.Errorf("request %s (sender %s) was handed to a client but is not pending after shutdown", id, sender)
		} else if p.Sender != sender || p.Channel != "telegram" || p.Account != "default" {
			t.Errorf("request %s: pending %+v, want sender %s", id, p, sender)
		}
	}
	t.Logf("%d challenges handed out, %d requests pending after shutdown", len(challenges), len(pending))
	var al struct{ Allowed []api.AllowedSender }
	runJSON(t, home, &al, "pairing", "allowed")
	var got []string
	for _, a := range al.Allowed {
		got = append(got, a.Sender)
	}
	sort.Strings(got)
	if !slices.Equal(got, allowed) {
		t.Errorf("pairing allowed after shutdown: %v, want %v", got, allowed)
	}
	noSecretsIn(t, stderr, "pairing code", codes)
	noSecretsIn(t, stderr, "token", []string{gw.Token, d.adminToken()})
}

// TestServeStartupMessage: the first lines on stdout say where the daemon
// listens and where its state and admin token are, and what to do next.
func TestServeStartupMessage(t *testing.T) {
	home := filepath.Join(t.TempDir(), "home")
	d := startServe(t, home)
	var out string
	for start := time.Now(); ; time.Sleep(10 * time.Millisecond) {
		out = d.stdout.String()
		if strings.Contains(out, "tokens create") || time.Since(start) > 5*time.Second {
			break
		}
	}
	lines := strings.Split(out, "\n")
	if len(lines) > 8 {
		lines = lines[:8]
	}
	first := strings.Join(lines, "\n")
	adminPath := filepath.Join(home, "admin.token")
	for _, want := range []string{
		"serving on " + d.url,
		"home:", home,
		"database:", filepath.Join(home, "pairgate.db"),
		"admin token:", adminPath,
		"pairgate tokens create --scope gateway",
	} {
		if !strings.Contains(first, want) {
			t.Errorf("the first lines of stdout do not mention %q:\n%s", want, first)
		}
	}
	if !strings.HasPrefix(lines[0], "pairgate serving on "+d.url) {
		t.Errorf("first line %q, want it to start with the listen address", lines[0])
	}
	fi, err := os.Stat(adminPath)
	if err != nil {
		t.Fatalf("admin token file: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("admin token file has mode %04o, want 0600", fi.Mode().Perm())
	}
	admin := d.adminToken()
	if len(admin) < 32 {
		t.Errorf("admin token is %d characters", len(admin))
	}
	if strings.Contains(d.stdout.String()+d.stderr.String(), admin) {
		t.Errorf("the admin token itself is printed by serve")
	}
	status, data, err := d.do(http.DefaultClient, "GET", "/v1/pairing/requests", admin, "")
	if err != nil || status != 200 {
		t.Errorf("the admin token named in the message does not work: %d %q %v", status, data, err)
	}
	if code, _ := d.stop(5 * time.Second); code != 0 {
		t.Errorf("exit %d after SIGTERM", code)
	}
}

// promSamples parses the Prometheus text exposition format into values
// keyed by promKey(name, labels).
func promSamples(t *testing.T, text string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, labels, rest := line, map[string]string{}, ""
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			name, rest = line[:i], line[i:]
		}
		if strings.HasPrefix(rest, "{") {
			rest = rest[1:]
			for {
				rest = strings.TrimLeft(rest, ", ")
				if strings.HasPrefix(rest, "}") {
					rest = rest[1:]
					break
				}
				eq := strings.Index(rest, `="`)
				if eq < 0 {
					t.Fatalf("metrics: bad label in %q", line)
				}
				key := rest[:eq]
				rest = rest[eq+2:]
				var val strings.Builder
				for {
					if rest == "" {
						t.Fatalf("metrics: unterminated label in %q", line)
					}
					c := rest[0]
					rest = rest[1:]
					if c == '"' {
						break
					}
					if c == '\\' && rest != "" {
						switch rest[0] {
						case 'n':
							val.WriteByte('\n')
						default:
							val.WriteByte(rest[0])
						}
						rest = rest[1:]
						continue
					}
					val.WriteByte(c)
				}
				labels[key] = val.String()
			}
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			t.Fatalf("metrics: no value in %q", line)
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			t.Fatalf("metrics: value in %q: %v", line, err)
		}
		out[promKey(name, labels)] = v
	}
	return out
}

func promKey(name string, labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(name)
	for _, k := range keys {
		fmt.Fprintf(&b, ",%s=%q", k, labels[k])
	}
	return b.String()
}

// TestServeMetricsAfterCLIFlow: gate decisions made through the API and
// approvals made with the CLI (another process) both show in the daemon's
// /metrics with the right values; the daemon's debug log holds no code and
// no token.
func TestServeMetricsAfterCLIFlow(t *testing.T) {
	home := t.TempDir()
	var gw mintedToken
	runJSON(t, home, &gw, "tokens", "create", "--scope", "gateway", "--name", "metrics")
	d := startServe(t, home)
	client := &http.Client{Timeout: 5 * time.Second}

	var ds []api.Decision
	for _, sender := range []string{"301", "302", "303"} {
		status, data, err := d.do(client, "POST", "/v1/admit", gw.Token, fmt.Sprintf(`{"channel":"telegram","sender":%q}`, sender))
		if err != nil || status != 200 {
			t.Fatalf("admit %s: %d %q %v", sender, status, data, err)
		}
		dec, err := strictDecision(data)
		if err != nil || dec.Verdict != api.Challenge {
			t.Fatalf("admit %s: %+v %v", sender, dec, err)
		}
		ds = append(ds, dec)
	}
	if r := run(t, home, "pairing", "approve", "telegram", ds[0].Code); r.code != 0 {
		t.Fatalf("approve: exit %d %s", r.code, r.stderr)
	}
	wrong := "ZZZZ2222"
	for _, dec := range ds {
		if dec.Code == wrong {
			t.Fatal("the wrong code happens to be a real one; run again")
		}
	}
	if r := run(t, home, "pairing", "approve", "telegram", wrong); r.code != 1 {
		t.Fatalf("approve with a wrong code: exit %d %s", r.code, r.stderr)
	}

	want := map[string]float64{
		promKey("pairing_requests_pending", map[string]string{"channel": "telegram"}):                                 2,
		promKey("pairing_approvals_total", map[string]string{"channel": "telegram", "result": "approved"}):            1,
		promKey("pairing_approvals_total", map[string]string{"channel": "telegram", "result": "not_found"}):           1,
		promKey("pairing_inbound_challenged_total", map[string]string{"channel": "telegram", "result": "challenged"}): 3,
		promKey("pairgate_gate_decisions_total", map[string]string{"reason": "challenged", "verdict": "challenge"}):   3,
		promKey("pairgate_http_requests_total", map[string]string{"code": "200", "route": "/v1/admit"}):               3,
	}
	var got map[string]float64
	var text []byte
	// CLI changes reach the daemon through the change log within a second.
	for start := time.Now(); ; time.Sleep(50 * time.Millisecond) {
		status, data, err := d.do(client, "GET", "/metrics", "", "")
		if err != nil || status != 200 {
			t.Fatalf("/metrics: %d %v", status, err)
		}
		text, got = data, promSamples(t, string(data))
		approvalsSeen := got[promKey("pairing_approvals_total", map[string]string{"channel": "telegram", "result": "approved"})] == 1 &&
			got[promKey("pairing_approvals_total", map[string]string{"channel": "telegram", "result": "not_found"})] == 1
		if approvalsSeen || time.Since(start) > 2*time.Second {
			break
		}
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %t), want %v", k, g, ok, v)
		}
	}
	if t.Failed() {
		var rel []string
		for _, l := range strings.Split(string(text), "\n") {
			if strings.HasPrefix(l, "pairing_") || strings.HasPrefix(l, "pairgate_gate") || strings.HasPrefix(l, "pairgate_http_requests_total") {
				rel = append(rel, l)
			}
		}
		t.Logf("metrics:\n%s", strings.Join(rel, "\n"))
	}

	if code, _ := d.stop(5 * time.Second); code != 0 {
		t.Errorf("exit %d after SIGTERM", code)
	}
	var codes []string
	for _, dec := range ds {
		codes = append(codes, dec.Code)
	}
	log := d.stderr.String()
	noSecretsIn(t, log, "pairing code", codes)
	noSecretsIn(t, log, "token", []string{gw.Token, d.adminToken()})
	if !strings.Contains(log, "/v1/admit") {
		t.Errorf("the debug log does not show the requests at all:\n%s", serveTail(log, 10))
	}
}
