package webhook_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pairgate/pairgate/api"
	"github.com/pairgate/pairgate/apitoken"
	"github.com/pairgate/pairgate/config"
	"github.com/pairgate/pairgate/notice"
	"github.com/pairgate/pairgate/pairing"
	"github.com/pairgate/pairgate/secret"
	"github.com/pairgate/pairgate/store"
	"github.com/pairgate/pairgate/store/sqlite"
	"github.com/pairgate/pairgate/webhook"
)

// testKey is the webhook key of the tests' pairing secret.
func testKey(t *testing.T) []byte {
	t.Helper()
	sec, err := secret.FromBytes(bytes.Repeat([]byte{9}, secret.Size))
	if err != nil {
		t.Fatal(err)
	}
	return webhook.Key(sec)
}

// fixture is a SQLite store with a gate on it, as the daemon has.
type fixture struct {
	t    *testing.T
	st   *sqlite.Store
	gate *pairing.Service
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(t.TempDir(), "pairgate.db")})
	if err != nil {
		t.Fatal(err)
	}
	sec, _ := secret.FromBytes(bytes.Repeat([]byte{9}, secret.Size))
	gate, err := pairing.New(pairing.Options{Store: st, Secret: sec, Config: config.Default()})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { gate.Run(runCtx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; st.Close() })
	return &fixture{t: t, st: st, gate: gate}
}

// dm makes a DM request through the gate and returns its decision.
func (f *fixture) dm(account, sender, name string) api.Decision {
	f.t.Helper()
	d := f.gate.Admit(context.Background(), pairing.Inbound{Channel: "telegram", Account: account, Sender: sender, SenderName: name})
	if d.Verdict != api.Challenge || d.Code == "" || d.RequestID == "" {
		f.t.Fatalf("admit %s: %+v, want a challenge", sender, d)
	}
	return d
}

// device makes a device request n in the store (a setup token issued, then
// presented by a device) and returns it with the setup token's id.
func (f *fixture) device(n string) (store.DeviceRequest, string) {
	f.t.Helper()
	ctx := context.Background()
	now := time.Now()
	id := sha256.Sum256([]byte("setup token " + n))
	tok := store.SetupToken{ID: hex.EncodeToString(id[:12]), KID: 1, Role: "node", Scopes: []string{"chat"}, Label: "kitchen",
		URL: "wss://gw.example.com/pair", CreatedAt: now, ExpiresAt: now.Add(10 * time.Minute)}
	if err := f.st.CreateSetupToken(ctx, tok, now.Add(-time.Hour), store.Actor{Name: "cli:test", Source: "cli"}); err != nil {
		f.t.Fatal(err)
	}
	pub := sha256.Sum256([]byte("public key " + n))
	devID := sha256.Sum256(pub[:])
	r := store.DeviceRequest{ID: "dreq_" + n, DeviceID: hex.EncodeToString(devID[:]), PublicKey: pub[:], Name: "Pixel " + n,
		Platform: "android", Role: "node", Scopes: []string{"chat"}, Label: "kitchen", CheckCode: "482913", Remote: "192.0.2.7",
		CreatedAt: now, ExpiresAt: now.Add(10 * time.Minute), Status: store.DevicePending}
	if err := f.st.CreateDeviceRequest(ctx, r, tok.ID, store.Actor{Name: "gate", Source: "gate"}); err != nil {
		f.t.Fatal(err)
	}
	return r, tok.ID
}

// other makes a change that calls for no notice (an API token).
func (f *fixture) other() {
	f.t.Helper()
	if _, err := apitoken.New(apitoken.Options{Store: f.st}).Create(context.Background(), store.ScopeGateway, "", store.Actor{Name: "cli:test"}); err != nil {
		f.t.Fatal(err)
	}
}

// notices returns the changes in the log that call for a notice, in order.
func (f *fixture) notices() []store.Change {
	f.t.Helper()
	all, err := f.st.Changes(context.Background(), 0, 1000)
	if err != nil {
		f.t.Fatal(err)
	}
	var out []store.Change
	for _, c := range all {
		if c.Kind == store.KindRequested || c.Kind == store.KindDeviceRequested {
			out = append(out, c)
		}
	}
	return out
}

// seqOf returns the seq of the change that made request id.
func (f *fixture) seqOf(id string) int64 {
	f.t.Helper()
	for _, c := range f.notices() {
		if c.RequestID == id {
			return c.Seq
		}
	}
	f.t.Fatalf("no request %s in the log", id)
	return 0
}

// hit is one POST the receiver got, and what it answered.
type hit struct {
	header http.Header
	body   []byte
	status int
}

// receiver is a webhook receiver on loopback: answer says what it
// answers the attempt-th POST of a seq (1 for the first).
type receiver struct {
	srv    *httptest.Server
	answer func(seq string, attempt int) int
	mu     sync.Mutex
	hits   []hit
	tries  map[string]int
}

func newReceiver(t *testing.T, answer func(seq string, attempt int) int) *receiver {
	t.Helper()
	r := &receiver{answer: answer, tries: map[string]int{}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		if err != nil || req.Method != http.MethodPost {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		seq := req.Header.Get(webhook.IdempotencyHeader)
		r.mu.Lock()
		r.tries[seq]++
		status := r.answer(seq, r.tries[seq])
		r.hits = append(r.hits, hit{header: req.Header.Clone(), body: body, status: status})
		r.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// accepted returns the POSTs answered 2xx, in the order they came.
func (r *receiver) accepted() []hit {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []hit
	for _, h := range r.hits {
		if h.status >= 200 && h.status <= 299 {
			out = append(out, h)
		}
	}
	return out
}

func (r *receiver) all() []hit {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.hits)
}

// waitAccepted waits until n POSTs were answered 2xx.
func (r *receiver) waitAccepted(t *testing.T, n int, logs *logBuf) []hit {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(2 * time.Millisecond) {
		if got := r.accepted(); len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("the receiver accepted %d notices within 10 s, want %d; log:\n%s", len(r.accepted()), n, logs)
		}
	}
}

// logBuf collects a publisher's JSON log, safe to read while it writes.
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

// records returns the log's records whose message is msg.
func (b *logBuf) records(t *testing.T, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(b.String()))
	for sc.Scan() {
		var r map[string]any
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		if r["msg"] == msg {
			out = append(out, r)
		}
	}
	return out
}

func (b *logBuf) waitLog(t *testing.T, msg string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); len(b.records(t, msg)) == 0; time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the log never said %q:\n%s", msg, b)
		}
	}
}

// Log messages the tests look for.
const (
	msgStarted   = "webhook: posting notices of new requests"
	msgFailed    = "webhook: delivery failed; will retry"
	msgDelivered = "webhook: notice delivered"
	msgGaveUp    = "webhook: gave up on a notice; going on with the next"
)

// start runs a publisher with o (on st, logging at debug, retrying within
// milliseconds unless o says otherwise) until stop, which the cleanup also
// calls. It returns once the publisher has its position in the log.
func start(t *testing.T, st store.ChangeLog, o webhook.Options) (logs *logBuf, stop func()) {
	t.Helper()
	logs = &logBuf{}
	o.Store = st
	o.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if o.Key == nil {
		o.Key = testKey(t)
	}
	if o.FirstRetry == 0 {
		o.FirstRetry, o.MaxRetry = time.Millisecond, 4*time.Millisecond
	}
	p, err := webhook.New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Errorf("Run did not return within 5 s of its context's end")
			}
		})
	}
	t.Cleanup(stop)
	logs.waitLog(t, msgStarted)
	return logs, stop
}

var signatureRE = regexp.MustCompile(`^t=([0-9]+),v1=([0-9a-f]{64})$`)

// checkSigned checks h's headers as a receiver would: the signature by
// Verify and recomputed by hand from the documented scheme, and the other
// headers.
func checkSigned(t *testing.T, key []byte, h hit) {
	t.Helper()
	sig := h.header.Get(webhook.SignatureHeader)
	if err := webhook.Verify(key, sig, h.body, time.Now(), 5*time.Minute); err != nil {
		t.Errorf("Verify(%s: %s): %v", webhook.SignatureHeader, sig, err)
	}
	m := signatureRE.FindStringSubmatch(sig)
	if m == nil {
		t.Fatalf("%s: %q, want t=<unix seconds>,v1=<64 lowercase hex>", webhook.SignatureHeader, sig)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(m[1] + "."))
	mac.Write(h.body)
	if want := hex.EncodeToString(mac.Sum(nil)); m[2] != want {
		t.Errorf("v1 = %s, want HMAC-SHA256(key, t + \".\" + body) = %s", m[2], want)
	}
	if ts, _ := strconv.ParseInt(m[1], 10, 64); time.Since(time.Unix(ts, 0)).Abs() > time.Minute {
		t.Errorf("t = %s is not the time of sending", m[1])
	}
	var seq struct {
		Seq int64 `json:"seq"`
	}
	json.Unmarshal(h.body, &seq)
	if got := h.header.Get("Idempotency-Key"); got != strconv.FormatInt(seq.Seq, 10) {
		t.Errorf("Idempotency-Key %q for the notice of seq %d", got, seq.Seq)
	}
	if ct := h.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if ua := h.header.Get("User-Agent"); !strings.HasPrefix(ua, "pairgate/") {
		t.Errorf("User-Agent %q, want pairgate/<version>", ua)
	}
}

// decode reads a body strictly as a Notice: a field the type does not
// document fails.
func decode(t *testing.T, body []byte) webhook.Notice {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var n webhook.Notice
	if err := dec.Decode(&n); err != nil {
		t.Fatalf("body %s: %v", body, err)
	}
	return n
}

func keys(t *testing.T, body []byte) []string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	var out []string
	for k, v := range m {
		out = append(out, k)
		if k == "device" {
			var d map[string]any
			json.Unmarshal(v, &d)
			for dk := range d {
				out = append(out, "device."+dk)
			}
		}
	}
	slices.Sort(out)
	return out
}

// A receiver that fails the first three tries of every notice gets each
// notice as success exactly once, in seq order, signed, with the seq as
// Idempotency-Key and the notice's text; changes that call for no notice
// post nothing, and no body holds the DM code or the setup token.
func TestEachNoticeOnceDespiteFailures(t *testing.T) {
	f := newFixture(t)
	key := testKey(t)
	rcv := newReceiver(t, func(_ string, attempt int) int {
		if attempt <= 3 {
			return http.StatusInternalServerError
		}
		return http.StatusNoContent
	})
	logs, _ := start(t, f.st, webhook.Options{URL: rcv.srv.URL + "/hooks/pairgate"})

	alice := f.dm("", "1000", "Alice")
	f.other()
	dev, setupToken := f.device("1")
	work := f.dm("work", "1001", "")
	f.other()
	last := f.dm("", "1002", "Carol") // once it is in, nothing before it comes again
	got := rcv.waitAccepted(t, 4, logs)

	changes := f.notices()
	if len(changes) != 4 {
		t.Fatalf("the log holds %d requests, want 4", len(changes))
	}
	waitCursor(t, f.st, changes[3].Seq) // done with them all: logged, cursor written
	exp := func(c store.Change) *time.Time {
		e := time.UnixMilli(c.Data.Expires).UTC()
		return &e
	}
	text := func(c store.Change) string {
		s, ok := notice.FromChange(c)
		if !ok {
			t.Fatalf("no notice for %+v", c)
		}
		return s
	}
	want := []webhook.Notice{
		{Seq: changes[0].Seq, Kind: "pairing.requested", At: changes[0].At, Channel: "telegram", Account: "default", Sender: "1000",
			Name: "Alice", RequestID: alice.RequestID, ExpiresAt: exp(changes[0]), Text: text(changes[0])},
		{Seq: changes[1].Seq, Kind: "device.requested", At: changes[1].At, Name: "Pixel 1", RequestID: dev.ID, ExpiresAt: exp(changes[1]),
			Text: text(changes[1]), Device: &webhook.Device{DeviceID: dev.DeviceID, Name: "Pixel 1", Platform: "android", Role: "node",
				Label: "kitchen", Remote: "192.0.2.7", CheckCode: "482913"}},
		{Seq: changes[2].Seq, Kind: "pairing.requested", At: changes[2].At, Channel: "telegram", Account: "work", Sender: "1001",
			RequestID: work.RequestID, ExpiresAt: exp(changes[2]), Text: text(changes[2])},
		{Seq: changes[3].Seq, Kind: "pairing.requested", At: changes[3].At, Channel: "telegram", Account: "default", Sender: "1002",
			Name: "Carol", RequestID: last.RequestID, ExpiresAt: exp(changes[3]), Text: text(changes[3])},
	}
	var notices []webhook.Notice
	for _, h := range got {
		checkSigned(t, key, h)
		notices = append(notices, decode(t, h.body))
		for _, secretText := range []string{alice.Code, work.Code, last.Code, setupToken} {
			if bytes.Contains(h.body, []byte(secretText)) {
				t.Errorf("a notice carries a code or setup token %q: %s", secretText, h.body)
			}
		}
	}
	if diff := cmp.Diff(want, notices); diff != "" {
		t.Errorf("notices accepted, in order (-want +got):\n%s", diff)
	}
	if !strings.Contains(notices[0].Text, "Alice (telegram 1000) asks to talk to your assistant") {
		t.Errorf("the DM notice's text: %q", notices[0].Text)
	}
	wantKeys := map[string][]string{
		"pairing.requested": {"account", "at", "channel", "expires_at", "kind", "name", "request_id", "sender", "seq", "text"},
		"device.requested": {"at", "device", "device.check_code", "device.device_id", "device.label", "device.name", "device.platform",
			"device.remote", "device.role", "expires_at", "kind", "name", "request_id", "seq", "text"},
	}
	for i, h := range got[:2] {
		if diff := cmp.Diff(wantKeys[string(notices[i].Kind)], keys(t, h.body)); diff != "" {
			t.Errorf("the keys of a %s body (-want +got):\n%s", notices[i].Kind, diff)
		}
	}
	// Every try: 3 failures, then the success; each signed.
	tries := map[int64]int{}
	for _, h := range rcv.all() {
		checkSigned(t, key, h)
		tries[decode(t, h.body).Seq]++
	}
	for _, c := range changes {
		if tries[c.Seq] != 4 {
			t.Errorf("notice %d was posted %d times, want 4 (3 failures, 1 success): %v", c.Seq, tries[c.Seq], tries)
		}
	}
	if len(tries) != 4 {
		t.Errorf("posts for seqs %v, want only the 4 requests'", tries)
	}
	// The log: one Warn per notice (its first failure), the later
	// failures at Debug, the delivery after retries at Info.
	var warned []float64
	for _, r := range logs.records(t, msgFailed) {
		if r["level"] == "WARN" {
			warned = append(warned, r["seq"].(float64))
			if r["attempt"] != 1.0 || r["status"] != 500.0 || r["retry_in"] == nil || r["err"] != "answered 500 Internal Server Error" {
				t.Errorf("a failure's warning: %v", r)
			}
		} else if r["level"] != "DEBUG" {
			t.Errorf("a retry logged at %v: %v", r["level"], r)
		}
	}
	if len(warned) != 4 {
		t.Errorf("failures warned of for seqs %v, want one for each of the 4 notices", warned)
	}
	if n := len(logs.records(t, msgDelivered)); n != 4 {
		t.Errorf("%d notices logged as delivered, want 4", n)
	}
	if strings.Contains(logs.String(), "/hooks/pairgate") {
		t.Errorf("the log names the URL's path:\n%s", logs)
	}
	// The cursor passes the notices and the changes after them that call
	// for none.
	f.other()
	head, err := f.st.RecentChanges(context.Background(), store.ChangeQuery{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	waitCursor(t, f.st, head[0].Seq)
}

// waitCursor waits until the publisher's cursor is at seq or past it.
func waitCursor(t *testing.T, st store.ChangeLog, seq int64) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(2 * time.Millisecond) {
		at, _, err := st.Cursor(context.Background(), webhook.CursorName)
		if err == nil && at >= seq {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cursor is at %d (%v) after 10 s, want %d", at, err, seq)
		}
	}
}

// A publisher stopped and started again on the same store goes on from its
// cursor: the requests made while none ran are posted, none twice, and the
// first publisher of a store starts at the log's head.
func TestResumesFromCursor(t *testing.T) {
	f := newFixture(t)
	f.dm("", "999", "before any publisher") // history: never posted
	rcv := newReceiver(t, func(string, int) int { return http.StatusOK })
	logs, stop := start(t, f.st, webhook.Options{URL: rcv.srv.URL})
	f.dm("", "1000", "")
	dev, _ := f.device("1")
	rcv.waitAccepted(t, 2, logs)
	// Stopped once it is done with them: the receiver may have answered a
	// notice the publisher has not yet heard back of, and that one would
	// come again (the receiver drops it by its Idempotency-Key).
	waitCursor(t, f.st, f.seqOf(dev.ID))
	stop()

	f.dm("work", "1001", "") // a scope holds 3 pending requests at most
	f.other()
	f.device("2")
	logs2, _ := start(t, f.st, webhook.Options{URL: rcv.srv.URL})
	f.dm("work", "1002", "") // once it is in, nothing before it comes again
	rcv.waitAccepted(t, 5, logs2)

	var seqs []int64
	for _, h := range rcv.all() {
		seqs = append(seqs, decode(t, h.body).Seq)
	}
	var want []int64
	for _, c := range f.notices()[1:] {
		want = append(want, c.Seq)
	}
	if diff := cmp.Diff(want, seqs); diff != "" {
		t.Errorf("seqs posted across the restart (-want +got):\n%s", diff)
	}
}

// A receiver that refuses one notice for the whole retry budget: the
// publisher gives up on it, says so at Error naming the seq, and delivers
// the next; the failures are not all warned of.
func TestGivesUpAfterRetryBudget(t *testing.T) {
	f := newFixture(t)
	var refused string
	var mu sync.Mutex
	rcv := newReceiver(t, func(seq string, _ int) int {
		mu.Lock()
		defer mu.Unlock()
		if seq == refused {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	const budget = 40 * time.Millisecond
	logs, _ := start(t, f.st, webhook.Options{URL: rcv.srv.URL, FirstRetry: time.Millisecond, MaxRetry: time.Millisecond, RetryFor: budget})
	head, _, _ := f.st.Cursor(context.Background(), webhook.CursorName)
	mu.Lock()
	refused = strconv.FormatInt(head+1, 10) // the next change: the first request
	mu.Unlock()
	f.dm("", "1000", "")
	f.dm("", "1001", "")
	got := rcv.waitAccepted(t, 1, logs)

	changes := f.notices()
	if n := decode(t, got[0].body); n.Seq != changes[1].Seq {
		t.Errorf("accepted seq %d, want %d (the request after the refused one)", n.Seq, changes[1].Seq)
	}
	if strconv.FormatInt(changes[0].Seq, 10) != refused {
		t.Fatalf("refused seq %s, but the first request is %d", refused, changes[0].Seq)
	}
	attempts := 0
	for _, h := range rcv.all() {
		if h.header.Get("Idempotency-Key") == refused {
			attempts++
		}
	}
	gaveUp := logs.records(t, msgGaveUp)
	if len(gaveUp) != 1 || gaveUp[0]["level"] != "ERROR" || gaveUp[0]["seq"] != float64(changes[0].Seq) ||
		gaveUp[0]["attempts"] != float64(attempts) || gaveUp[0]["status"] != 503.0 {
		t.Fatalf("give-up logged as %v; want one ERROR naming seq %d after %d attempts", gaveUp, changes[0].Seq, attempts)
	}
	since, _ := time.Parse(time.RFC3339Nano, gaveUp[0]["since"].(string))
	at, _ := time.Parse(time.RFC3339Nano, gaveUp[0]["time"].(string))
	if at.Sub(since) < budget {
		t.Errorf("gave up %v after the first try, before the budget of %v", at.Sub(since), budget)
	}
	if attempts < 2 {
		t.Fatalf("the refused notice was tried %d times, want retries", attempts)
	}
	// Of the failures retried (all but the last), the first and every
	// 10th are warnings, the rest debug.
	warn, debug := 0, 0
	for _, r := range logs.records(t, msgFailed) {
		switch r["level"] {
		case "WARN":
			warn++
		case "DEBUG":
			debug++
		}
	}
	wantWarn := 1 + (attempts-1)/10
	if warn != wantWarn || warn+debug != attempts-1 {
		t.Errorf("%d attempts: %d warnings and %d debug lines, want %d warnings and %d debug", attempts, warn, debug, wantWarn, attempts-1-wantWarn)
	}
}

// Connection refused and redirects count as failures: nothing follows a
// redirect, and a publisher with nowhere to post gives up and moves the
// cursor on. The URL's path (a secret for many receivers) is never logged.
func TestRefusedAndRedirected(t *testing.T) {
	t.Run("connection refused", func(t *testing.T) {
		f := newFixture(t)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		url := "http://" + ln.Addr().String() + "/hooks/s3cr3t?token=s3cr3t"
		ln.Close()
		logs, _ := start(t, f.st, webhook.Options{URL: url, RetryFor: 10 * time.Millisecond})
		f.dm("", "1000", "")
		f.dm("", "1001", "")
		logs.waitLog(t, msgGaveUp)
		for deadline := time.Now().Add(10 * time.Second); len(logs.records(t, msgGaveUp)) < 2; time.Sleep(2 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("the second notice was not given up:\n%s", logs)
			}
		}
		if s := logs.String(); strings.Contains(s, "s3cr3t") || !strings.Contains(s, "connection refused") {
			t.Errorf("the log names the URL's secret or not the cause:\n%s", s)
		}
		waitCursor(t, f.st, f.notices()[1].Seq)
	})
	t.Run("redirect", func(t *testing.T) {
		f := newFixture(t)
		elsewhere := newReceiver(t, func(string, int) int { return http.StatusOK })
		redirector := httptest.NewServer(http.RedirectHandler(elsewhere.srv.URL, http.StatusTemporaryRedirect))
		t.Cleanup(redirector.Close)
		logs, _ := start(t, f.st, webhook.Options{URL: redirector.URL, RetryFor: 10 * time.Millisecond})
		f.dm("", "1000", "")
		logs.waitLog(t, msgGaveUp)
		if n := len(elsewhere.all()); n != 0 {
			t.Errorf("the redirect was followed: the other host got %d posts", n)
		}
		if r := logs.records(t, msgGaveUp)[0]; !strings.Contains(r["err"].(string), "redirects are not followed") || r["status"] != 307.0 {
			t.Errorf("gave up with %v", r)
		}
	})
}

// A POST that gets no answer within the timeout is a failure, retried.
func TestTimeout(t *testing.T) {
	f := newFixture(t)
	release := make(chan struct{})
	var mu sync.Mutex
	posts := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		posts++
		first := posts == 1
		mu.Unlock()
		if first {
			select { // hang until the client gives up
			case <-r.Context().Done():
			case <-release:
			}
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	logs, _ := start(t, f.st, webhook.Options{URL: srv.URL, Timeout: 20 * time.Millisecond})
	f.dm("", "1000", "")
	logs.waitLog(t, msgDelivered)
	r := logs.records(t, msgFailed)
	if len(r) != 1 || r[0]["err"] != "no answer within 20ms" || r[0]["level"] != "WARN" {
		t.Errorf("the timeout was logged as %v", r)
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	f := newFixture(t)
	key := testKey(t)
	for _, tt := range []struct {
		name string
		o    webhook.Options
		want string
	}{
		{"no store", webhook.Options{URL: "https://hooks.example.com/x", Key: key}, "Store is required"},
		{"no key", webhook.Options{Store: f.st, URL: "https://hooks.example.com/x"}, "Key is required"},
		{"no URL", webhook.Options{Store: f.st, Key: key}, "URL must be http:// or https://"},
		{"no scheme", webhook.Options{Store: f.st, Key: key, URL: "hooks.example.com/x"}, "URL must be"},
		{"no host", webhook.Options{Store: f.st, Key: key, URL: "https:///x"}, "URL must be"},
		{"ftp", webhook.Options{Store: f.st, Key: key, URL: "ftp://hooks.example.com/s3cr3t"}, `got "ftp://hooks.example.com/…"`},
	} {
		_, err := webhook.New(tt.o)
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("%s: New: %v, want an error saying %q (and no secret)", tt.name, err, tt.want)
		}
	}
	if _, err := webhook.New(webhook.Options{Store: f.st, Key: key, URL: "http://127.0.0.1:9000/hook"}); err != nil {
		t.Errorf("New with a good URL: %v", err)
	}
}

// failingCursor is a real store whose next cursor writes fail, as when
// the disk is briefly full.
type failingCursor struct {
	*sqlite.Store
	fail atomic.Int32 // writes still to fail
}

func (s *failingCursor) SetCursor(ctx context.Context, name string, seq int64, now time.Time) error {
	if s.fail.Add(-1) >= 0 {
		return store.ErrUnavailable
	}
	return s.Store.SetCursor(ctx, name, seq, now)
}

// A cursor write that fails after a delivery is retried; the notice
// delivered is not posted again.
func TestCursorWriteFails(t *testing.T) {
	f := newFixture(t)
	st := &failingCursor{Store: f.st}
	rcv := newReceiver(t, func(string, int) int { return http.StatusOK })
	logs, _ := start(t, st, webhook.Options{URL: rcv.srv.URL})
	st.fail.Store(1)
	first := f.dm("", "1000", "")
	rcv.waitAccepted(t, 1, logs)
	logs.waitLog(t, "webhook: following the change log failed; will retry")
	second := f.dm("", "1001", "") // wakes the follower, which retries at once
	rcv.waitAccepted(t, 2, logs)
	waitCursor(t, st, f.seqOf(second.RequestID))
	var seqs []int64
	for _, h := range rcv.all() {
		seqs = append(seqs, decode(t, h.body).Seq)
	}
	if diff := cmp.Diff([]int64{f.seqOf(first.RequestID), f.seqOf(second.RequestID)}, seqs); diff != "" {
		t.Errorf("seqs posted around a failed cursor write (-want +got):\n%s", diff)
	}
}
