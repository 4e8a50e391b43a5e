package main_test

// End-to-end tests of what pairgate says in chat: outbound messages
// delivered by the README's Python gateway across a daemon restart, and a
// device paired from the owner's chat (/pair, the QR code, /approve-device),
// each with the real binary as daemon, CLI and companion.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	_ "image/png"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pairgate/pairgate/api"
	"github.com/pairgate/pairgate/device"
)

// talkShape turns a line of expected output into a pattern: {seq}, {code},
// {req} and {setup} stand for the parts that differ from run to run (a
// message's seq, a DM pairing code, a request id, a setup code) and are
// captured; the rest is literal.
func talkShape(tmpl string) string {
	p := regexp.QuoteMeta(tmpl)
	for _, r := range []struct{ from, to string }{
		{`\{seq\}`, `(\d+)`},
		{`\{code\}`, `([2-9A-HJ-NP-Z]{8})`},
		{`\{req\}`, `(req_[a-z2-7]{26})`},
		{`\{setup\}`, `(eyJ[A-Za-z0-9_-]+)`},
	} {
		p = strings.ReplaceAll(p, r.from, r.to)
	}
	return p
}

// talkExpect checks that out is exactly lines, in the shapes of talkShape,
// and returns what the placeholders matched, in order.
func talkExpect(t *testing.T, what, out string, lines ...string) []string {
	t.Helper()
	var shapes []string
	for _, l := range lines {
		shapes = append(shapes, talkShape(l))
	}
	m := regexp.MustCompile(`^` + strings.Join(shapes, `\n`) + `$`).FindStringSubmatch(strings.TrimSuffix(out, "\n"))
	if m == nil {
		t.Fatalf("%s printed:\n%s\nwant lines of the shapes:\n%s", what, out, strings.Join(lines, "\n"))
	}
	return m[1:]
}

// talkInREADME checks that the README's session shows each line, in its
// shape: the session is the README's word for what the code prints.
func talkInREADME(t *testing.T, session string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !regexp.MustCompile(`(?m)^` + talkShape(l) + `$`).MatchString(session) {
			t.Errorf("the README's session does not show a line of the shape %q", l)
		}
	}
}

// talkSeqs returns the seqs of the messages deliver.py's send() printed.
func talkSeqs(t *testing.T, out string) []int {
	t.Helper()
	var seqs []int
	for _, m := range regexp.MustCompile(`(?m)^(\d+) telegram `).FindAllStringSubmatch(out, -1) {
		n, err := strconv.Atoi(m[1])
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, n)
	}
	return seqs
}

// talkPython runs the README's Python in dir against a daemon.
type talkPython struct {
	python, dir string
	env         []string
}

// cmd is python3 args in p.dir with PAIRGATE_OUTBOUND_STATE=state ("" for
// deliver.py's default, outbound.seq). Without PYTHONUNBUFFERED: that
// deliver.py's output is seen at once is its own doing (flush=True).
func (p *talkPython) cmd(ctx context.Context, state string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, p.python, args...)
	cmd.Dir = p.dir
	cmd.Env = p.env
	if state != "" {
		cmd.Env = append(cmd.Env[:len(cmd.Env):len(cmd.Env)], "PAIRGATE_OUTBOUND_STATE="+state)
	}
	cmd.WaitDelay = time.Second
	return cmd
}

// run runs python3 args to the end and returns its stdout; a failure or
// anything on stderr is fatal.
func (p *talkPython) run(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := p.cmd(ctx, "", args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil || errb.Len() > 0 {
		t.Fatalf("python3 %q: %v\nstdout:\n%s\nstderr:\n%s", args, err, out.String(), errb.String())
	}
	return out.String()
}

// talkPoller is deliver.deliver("30s") running in the background.
type talkPoller struct {
	cmd            *exec.Cmd
	stdout, stderr *serveBuf
	exited         chan struct{}
}

func (p *talkPython) startPoller(t *testing.T, state string) *talkPoller {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	b := &talkPoller{stdout: &serveBuf{}, stderr: &serveBuf{}, exited: make(chan struct{})}
	b.cmd = p.cmd(ctx, state, "-c", `import deliver; deliver.deliver("30s")`)
	b.cmd.Stdout, b.cmd.Stderr = b.stdout, b.stderr
	if err := b.cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	go func() {
		defer cancel()
		b.cmd.Wait()
		close(b.exited)
	}()
	t.Cleanup(b.stop)
	return b
}

func (b *talkPoller) stop() {
	select {
	case <-b.exited:
	default:
		b.cmd.Process.Kill()
		<-b.exited
	}
}

// waitFor waits until the poller has printed a line matching the shape
// last, and fails if it exits or takes over 10 s.
func (b *talkPoller) waitFor(t *testing.T, last string) {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + talkShape(last) + `$`)
	for deadline := time.Now().Add(10 * time.Second); !re.MatchString(b.stdout.String()); time.Sleep(20 * time.Millisecond) {
		select {
		case <-b.exited:
			t.Fatalf("deliver.deliver(\"30s\") exited\nstdout:\n%s\nstderr:\n%s", b.stdout, b.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliver.deliver(\"30s\") printed no line of the shape %q within 10 s\nstdout:\n%s\nstderr:\n%s", last, b.stdout, b.stderr)
		}
	}
}

// waitPolling waits until the poller holds a socket: deliver() opens one
// connection per call and closes it when the answer is read, so with the
// daemon up it is then in a long poll.
func (b *talkPoller) waitPolling(t *testing.T) {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", b.cmd.Process.Pid)
	if _, err := os.Stat(dir); err != nil {
		t.Logf("cannot see %s (%v): the daemon may stop before the long poll has begun", dir, err)
		return
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		fds, _ := os.ReadDir(dir)
		for _, fd := range fds {
			if l, err := os.Readlink(filepath.Join(dir, fd.Name())); err == nil && strings.HasPrefix(l, "socket:") {
				return
			}
		}
	}
	t.Fatalf("deliver.deliver(\"30s\") opened no connection within 10 s\nstderr:\n%s", b.stderr)
}

// TestREADMEPythonDelivery runs the README's deliver.py (with its
// gateway.py) as it stands, through the README's session: the owner's
// notice, owner commands and a non-owner's refusal, an approval in chat;
// then a long-polling deliverer across a daemon restart, with CLI changes
// made while the daemon is down delivered once each when it is back; then
// /pair in a DM and in a group. Every seq is printed once, none is skipped.
func TestREADMEPythonDelivery(t *testing.T) {
	// Not parallel: the daemon starts again on its address, which a test
	// running beside it could take in between.
	python, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("python3 is not installed")
		}
		t.Skip("python3 is not installed")
	}
	const route1 = "### Route 1: the HTTP long poll (`GET /v1/outbound`)"
	dir := t.TempDir()
	for name, heading := range map[string]string{"gateway.py": "### A Python gateway", "deliver.py": route1} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(readmeBlock(t, heading, "python")), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, session, _ := strings.Cut(string(readme), route1+"\n")
	session, _, _ = strings.Cut(session, "\n### ")

	home := t.TempDir()
	addr := serveFreeAddr(t)
	publicURL := "ws://" + addr + "/pair" // loopback: cleartext is allowed
	config := fmt.Sprintf("pairing:\n  public_url: %s\nowner:\n  senders: {telegram: [\"42\"]}\n", publicURL)
	if err := os.WriteFile(filepath.Join(home, "pairgate.yaml"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startServeOn(t, home, addr)
	tok := run(t, home, "tokens", "create", "--scope", "gateway", "--name", "hermes", "--quiet")
	if tok.code != 0 || !strings.HasPrefix(tok.stdout, "pgt_") {
		t.Fatalf("tokens create --quiet: exit %d, stdout %q, stderr %q", tok.code, tok.stdout, tok.stderr)
	}
	if err := os.WriteFile(filepath.Join(dir, "pairgate.token"), []byte(tok.stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PAIRGATE_") && !strings.HasPrefix(kv, "PYTHONUNBUFFERED=") {
			env = append(env, kv)
		}
	}
	py := &talkPython{python: python, dir: dir, env: append(env, "PAIRGATE_URL="+d.url,
		"PAIRGATE_TOKEN_FILE="+filepath.Join(dir, "pairgate.token"), "PYTHONDONTWRITEBYTECODE=1")}
	var printed []string // what every deliverer printed, for the seq check

	// The README's first session.
	challenge := "555000111 -> reply: Access to this assistant needs the owner's approval. Your pairing code: `{code}` (valid 1 hour). Ask the owner to run: `pairgate pairing approve telegram {code}`"
	m := talkExpect(t, "python3 gateway.py 555000111", py.run(t, "gateway.py", "555000111"), challenge)
	code := m[0]
	if m[1] != code {
		t.Errorf("the challenge names two codes: %q", m)
	}
	talkInREADME(t, session, challenge)

	notice := "{seq} telegram 42 telegram 555000111 asks to talk to your assistant. Approve: /approve {req} or pairgate pairing approve telegram {req}"
	out := py.run(t, "-c", `import deliver; deliver.deliver("0s")`)
	printed = append(printed, out)
	m = talkExpect(t, `deliver.deliver("0s")`, out, notice)
	req := m[1]
	if m[2] != req {
		t.Errorf("the notice names two requests: %q", m)
	}
	talkInREADME(t, session, notice)

	// The code as the README's owner types it: lower case, with a hyphen.
	typed := strings.ToLower(code[:4] + "-" + code[4:])
	answers := []string{
		"True",
		"True",
		"True",
		"False",
		"{seq} telegram 555000111 Sorry, I can't do that.",
		"{seq} telegram 42 Pending:",
		"telegram 555000111, 1h left: /approve {req}",
		"{seq} telegram 555000111 The owner approved you: you can talk to this assistant now.",
		"{seq} telegram 42 Approved telegram 555000111; they were told.",
	}
	out = py.run(t, "-c", fmt.Sprintf(`
import deliver
print(deliver.command("telegram", "555000111", "/approve %s"))  # not an owner
print(deliver.command("telegram", "42", "/pending"))
print(deliver.command("telegram", "42", "/approve %s"))
print(deliver.command("telegram", "42", "/weather"))                   # not pairgate's: hand it to the agent
deliver.deliver("0s")`, code, typed))
	printed = append(printed, out)
	m = talkExpect(t, "the owner commands", out, answers...)
	if m[2] != req {
		t.Errorf("/pending lists %s after the non-owner's /approve, want the request of the notice, %s", m[2], req)
	}
	talkInREADME(t, session, answers...)
	admitted := "555000111 -> hand the message to the agent"
	talkExpect(t, "python3 gateway.py 555000111 after the approval", py.run(t, "gateway.py", "555000111"), admitted)
	talkInREADME(t, session, admitted)
	seqs := talkSeqs(t, strings.Join(printed, ""))
	state, err := os.ReadFile(filepath.Join(dir, "outbound.seq"))
	if err != nil || len(seqs) == 0 || string(state) != strconv.Itoa(seqs[len(seqs)-1]) {
		t.Fatalf("outbound.seq holds %q (%v) after delivering seqs %v", state, err, seqs)
	}

	// A deliverer that polls for good, from where the first one stopped,
	// while the daemon stops, the CLI changes things and the daemon starts
	// again on the same address.
	if err := os.WriteFile(filepath.Join(dir, "poller.seq"), state, 0o600); err != nil {
		t.Fatal(err)
	}
	poller := py.startPoller(t, "poller.seq")
	poller.waitPolling(t)
	exit, took := d.stop(15 * time.Second)
	if exit != 0 || took > 5*time.Second || !strings.Contains(d.stderr.String(), "stopped cleanly") {
		t.Errorf("SIGTERM with a long poll in flight: exit %d after %v, want 0 within 5 s (the poll answered, the daemon stopped cleanly)\nstderr (tail):\n%s",
			exit, took.Round(time.Millisecond), serveTail(d.stderr.String(), 4))
	}
	var bob api.Decision
	runJSON(t, home, &bob, "admit", "telegram", "777", "--name", "Bob")
	if bob.Verdict != api.Challenge {
		t.Fatalf("pairgate admit telegram 777: %+v", bob)
	}
	if r := run(t, home, "pairing", "approve", "telegram", bob.Code, "--notify"); r.code != 0 || !strings.Contains(r.stdout, "Approved 777 (Bob)") {
		t.Fatalf("pairing approve --notify: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	d2 := startServeOn(t, home, addr)
	whileDown := []string{
		"{seq} telegram 42 Bob (telegram 777) asks to talk to your assistant. Approve: /approve {req} or pairgate pairing approve telegram {req}",
		"{seq} telegram 777 The owner approved you: you can talk to this assistant now.",
	}
	poller.waitFor(t, whileDown[1])
	talkInREADME(t, session, whileDown...)

	// /pair, with the deliverer still polling.
	out = py.run(t, "-c", `
import deliver
print(deliver.command("telegram", "42", "/pair kitchen tablet"))
print(deliver.command("telegram", "42", "/pair", chat="group"))`)
	talkExpect(t, "/pair in a DM and in a group", out, "True", "True")
	pairLines := []string{
		"{seq} telegram 42 {setup}",
		"{seq} telegram 42 <image>",
		"{seq} telegram 42 Send /pair in a direct message: a setup code must not be shown in a group.",
	}
	poller.waitFor(t, pairLines[2])
	talkInREADME(t, session, pairLines...)
	poller.stop()
	pollerOut := poller.stdout.String()
	printed = append(printed, pollerOut)
	m = talkExpect(t, `deliver.deliver("30s") across the restart`, pollerOut, append(whileDown, pairLines...)...)
	if m[1] != bob.RequestID || m[2] != bob.RequestID {
		t.Errorf("the notice of Bob names %s and %s, want his request %s", m[1], m[2], bob.RequestID)
	}
	sc, err := device.DecodeSetupCode(m[5])
	if err != nil || sc.URL != publicURL {
		t.Errorf("/pair sent a setup code for %q (%v), want %s", sc.URL, err, publicURL)
	}
	for _, l := range strings.Split(strings.TrimSpace(poller.stderr.String()), "\n") {
		if !strings.HasPrefix(l, "pairgate unavailable: ") {
			t.Errorf("deliver.deliver(\"30s\") logged %q; want only warnings that pairgate is unavailable", l)
		}
	}

	// Every message once, in order, none skipped; a deliverer started again
	// from the poller's file has nothing left to say.
	seqs = talkSeqs(t, strings.Join(printed, ""))
	for i, s := range seqs {
		if s != i+1 {
			t.Fatalf("the deliverers printed seqs %v, want 1 to %d, each once", seqs, len(seqs))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	again, err := py.cmd(ctx, "poller.seq", "-c", `import deliver; deliver.deliver("0s")`).CombinedOutput()
	if err != nil || len(again) != 0 {
		t.Errorf("deliver.deliver(\"0s\") from poller.seq: %v, printed %q; want nothing", err, again)
	}

	secrets := []string{code, bob.Code, sc.Token, strings.TrimSpace(tok.stdout)}
	noSecretsIn(t, d.stderr.String(), "code or token", secrets)
	noSecretsIn(t, d2.stderr.String(), "code or token", secrets)
}

// talkGateway is a gateway's view of the daemon: POST /v1/command and
// GET /v1/outbound with a gateway token.
type talkGateway struct {
	t      *testing.T
	d      *serveProc
	token  string
	client *http.Client
	next   int64 // the after of the next GET /v1/outbound
}

func (g *talkGateway) command(sender, chat, text string) api.CommandResult {
	g.t.Helper()
	body, _ := json.Marshal(api.CommandRequest{Channel: "telegram", Sender: sender, Chat: api.Chat(chat), Text: text})
	status, data, err := g.d.do(g.client, "POST", "/v1/command", g.token, string(body))
	var res api.CommandResult
	if err != nil || status != 200 || devStrict(data, &res) != nil {
		g.t.Fatalf("POST /v1/command %s: %d %q %v", body, status, data, err)
	}
	return res
}

// outbound returns the next messages, waiting up to wait for one.
func (g *talkGateway) outbound(wait string) []api.Outbound {
	g.t.Helper()
	status, data, err := g.d.do(g.client, "GET", fmt.Sprintf("/v1/outbound?after=%d&wait=%s", g.next, wait), g.token, "")
	var b api.OutboundBatch
	if err != nil || status != 200 || devStrict(data, &b) != nil {
		g.t.Fatalf("GET /v1/outbound: %d %q %v", status, data, err)
	}
	for _, m := range b.Messages {
		if m.Seq != g.next+1 {
			g.t.Fatalf("GET /v1/outbound?after=%d gave seq %d next", g.next, m.Seq)
		}
		g.next = m.Seq
	}
	if b.Next != g.next {
		g.t.Fatalf("GET /v1/outbound: next %d after the messages up to seq %d", b.Next, g.next)
	}
	return b.Messages
}

// one waits for exactly one message (up to 10 s) and returns it.
func (g *talkGateway) one(what string) api.Outbound {
	g.t.Helper()
	ms := g.outbound("10s")
	if len(ms) != 1 {
		g.t.Fatalf("%s: %d outbound messages, want 1: %+v", what, len(ms), ms)
	}
	return ms[0]
}

// TestPairFromChat: the owner pairs a device from chat. /pair answers with
// a setup code and a PNG whose QR code holds the same code; the companion
// pairs with it; the owner is told of the device with the check code the
// companion shows; a non-owner's /approve-device is refused and changes
// nothing; the owner's pairs the device, repeating the check code.
func TestPairFromChat(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	addr := serveFreeAddr(t)
	publicURL := "ws://" + addr + "/pair"
	config := fmt.Sprintf("pairing:\n  public_url: %s\nowner:\n  senders: {telegram: [\"42\"]}\n", publicURL)
	if err := os.WriteFile(filepath.Join(home, "pairgate.yaml"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startServeOn(t, home, addr)
	tok := devRun(t, home, nil, "tokens", "create", "--scope", "gateway", "--name", "hermes", "--quiet")
	if tok.code != 0 {
		t.Fatalf("tokens create: exit %d %s", tok.code, tok.stderr)
	}
	g := &talkGateway{t: t, d: d, token: strings.TrimSpace(tok.stdout), client: &http.Client{Timeout: 20 * time.Second}}

	if res := g.command("42", "", "/pair kitchen"); res != (api.CommandResult{Handled: true, Command: "pair", Messages: 2}) {
		t.Fatalf("/pair kitchen: %+v", res)
	}
	ms := g.outbound("0s")
	if len(ms) != 2 || ms[0].Kind != "text" || ms[1].Kind != "image" || len(ms[1].PNG) == 0 {
		t.Fatalf("/pair sent %+v, want a text and an image", ms)
	}
	for _, m := range ms {
		if m.Channel != "telegram" || m.Account != "default" || m.To != "42" || m.Cause != "command" || m.ParseMode != "" {
			t.Errorf("/pair's message %d goes to %s/%s %s with cause %q, parse mode %q; want the owner, telegram/default 42, cause command, plain text",
				m.Seq, m.Channel, m.Account, m.To, m.Cause, m.ParseMode)
		}
	}
	text := ms[0].Text
	sc, err := device.DecodeSetupCode(text)
	if err != nil || sc.URL != publicURL {
		t.Fatalf("/pair's text %q is not a setup code for %s: %+v %v", text, publicURL, sc, err)
	}
	img, format, err := image.Decode(bytes.NewReader(ms[1].PNG))
	if err != nil || format != "png" {
		t.Fatalf("/pair's image is not a PNG: %v (%s)", err, format)
	}
	scanned := decodeQR(t, img)
	if scanned != text {
		t.Fatalf("the QR code holds %q, the text says %q", scanned, text)
	}

	// The device, in a home of its own, pairs with what it scanned.
	comp := startCompanion(t, t.TempDir(), scanned, "Tab")
	check := comp.waitCheckCode(t)
	var deviceID string
	select {
	case deviceID = <-comp.deviceID:
	default:
		t.Fatalf("the companion did not say its device id before its check code\nstderr:\n%s", comp.stderr)
	}
	n := g.one("the owner's notice of the device")
	if n.To != "42" || n.Cause != "notice" || !strings.Contains(n.Text, "A device asks to pair: Tab (") ||
		!strings.Contains(n.Text, ", label kitchen,") || !strings.Contains(n.Text, "Check code "+check+": ") ||
		!strings.Contains(n.Text, "/approve-device dreq_") {
		t.Fatalf("the owner's notice: %+v; want Tab, label kitchen and the companion's check code %s", n, check)
	}

	// Not an owner: one plain refusal, to them, and nothing changes.
	if res := g.command("555", "", "/approve-device latest"); res != (api.CommandResult{Handled: true, Command: "approve-device", Messages: 1}) {
		t.Fatalf("a non-owner's /approve-device latest: %+v", res)
	}
	if m := g.one("the non-owner's answer"); m.To != "555" || m.Text != "Sorry, I can't do that." || m.Cause != "command" {
		t.Errorf("a non-owner's /approve-device latest was answered %+v; want the refusal, to 555", m)
	}
	var l devListing
	devRunJSON(t, home, nil, &l, "devices", "list")
	if len(l.Requests) != 1 || l.Requests[0].CheckCode != check || len(l.Devices) != 0 {
		t.Fatalf("after a non-owner's /approve-device: %+v; want the request still waiting, no device", l)
	}
	select {
	case <-comp.exited:
		t.Fatalf("the companion exited with %d after a non-owner's /approve-device\nstderr:\n%s", comp.exitCode, comp.stderr)
	default:
	}

	// The owner.
	if res := g.command("42", "dm", "/approve-device latest"); res != (api.CommandResult{Handled: true, Command: "approve-device", Messages: 1}) {
		t.Fatalf("the owner's /approve-device latest: %+v", res)
	}
	a := g.one("the owner's answer")
	if a.To != "42" || a.Cause != "command" || !strings.HasPrefix(a.Text, "Approved Tab (") ||
		!strings.Contains(a.Text, "check code "+check+".") || !strings.HasSuffix(a.Text, "pairgate devices revoke "+deviceID[:12]) {
		t.Errorf("the owner's /approve-device latest was answered %+v; want Tab with the check code %s and how to revoke %s", a, check, deviceID[:12])
	}
	if code := comp.wait(t); code != 0 {
		t.Fatalf("the companion exited with %d after the owner's approval\nstderr:\n%s", code, comp.stderr)
	}
	if !strings.Contains(comp.stdout.String(), "Paired and authenticated as device "+deviceID) {
		t.Errorf("the companion did not say it paired\nstdout:\n%s\nstderr:\n%s", comp.stdout, comp.stderr)
	}
	devRunJSON(t, home, nil, &l, "devices", "list")
	if len(l.Requests) != 0 || len(l.Devices) != 1 || l.Devices[0].DeviceID != deviceID || l.Devices[0].Name != "Tab" || l.Devices[0].Label != "kitchen" {
		t.Errorf("after the owner's /approve-device: %+v; want device Tab (kitchen) paired", l)
	}
	if ms := g.outbound("0s"); len(ms) != 0 {
		t.Errorf("messages nobody asked for: %+v", ms)
	}
}
