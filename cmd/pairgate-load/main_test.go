package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pairgate/pairgate/api"
	"github.com/pairgate/pairgate/channel"
	"github.com/pairgate/pairgate/client"
)

func TestHistogramSmallValuesExact(t *testing.T) {
	var h histogram
	for v := 100; v >= 1; v-- {
		h.record(time.Duration(v))
	}
	got := []time.Duration{h.quantile(0.5), h.quantile(0.9), h.quantile(0.99), h.quantile(0.999), h.quantile(1), h.mean()}
	want := []time.Duration{50, 90, 99, 100, 100, 50}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("quantiles of 1..100 ns (-want +got):\n%s", diff)
	}
	var empty histogram
	if q := empty.quantile(0.99); q != 0 {
		t.Errorf("empty histogram: p99 = %v, want 0", q)
	}
}

// The histogram's percentiles are never below the exact ones (read from the
// sorted latencies) and at most 1/64 above.
func TestHistogramQuantilesMatchSorted(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var h histogram
	lat := make([]time.Duration, 100_000)
	for i := range lat {
		// Log-normal around 1 ms with a long tail, as latencies are.
		lat[i] = time.Duration(math.Exp(r.NormFloat64()*1.2) * float64(time.Millisecond))
		h.record(lat[i])
	}
	slices.Sort(lat)
	for _, q := range []float64{0.001, 0.5, 0.9, 0.99, 0.999, 0.9999, 1} {
		exact := lat[int(math.Ceil(q*float64(len(lat))))-1]
		got := h.quantile(q)
		if got < exact || float64(got) > float64(exact)*(1+1.0/64) {
			t.Errorf("q%v = %v, exact %v: off by more than 1/64", q, got, exact)
		}
	}
	if got := time.Duration(h.max); got != lat[len(lat)-1] {
		t.Errorf("max = %v, want %v", got, lat[len(lat)-1])
	}
}

func TestBuckets(t *testing.T) {
	if got := bucket(maxTracked); got != numBuckets-1 {
		t.Errorf("bucket(maxTracked) = %d, want the last, %d", got, numBuckets-1)
	}
	if got := bucket(math.MaxUint64); got != numBuckets-1 {
		t.Errorf("bucket(MaxUint64) = %d, want the last, %d", got, numBuckets-1)
	}
	r := rand.New(rand.NewPCG(3, 4))
	check := func(v uint64) {
		i := bucket(v)
		if hi := bucketHigh(i); hi < v || (i > 0 && bucketHigh(i-1) >= v) {
			t.Fatalf("v=%d in bucket %d, which ends at %d; previous ends at %d", v, i, hi, bucketHigh(i-1))
		}
		if i > 0 && float64(bucketHigh(i)-bucketHigh(i-1)) > float64(v)/64+1 {
			t.Fatalf("v=%d: bucket %d is wider than 1/64 of v", v, i)
		}
	}
	for v := range uint64(5000) {
		check(v)
	}
	for range 100_000 {
		check(r.Uint64N(maxTracked + 1))
	}
}

func TestSenderIDs(t *testing.T) {
	reg := channel.NewRegistry()
	nums := []uint64{1, 2, 35, 36, 999, maxAllowed, unknownBase(time.Now()) + 1, unknownBase(time.Now()) + 1e6}
	for _, ch := range channel.Names() {
		ad, err := reg.Get(ch)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]uint64{}
		for _, i := range nums {
			id := senderID(ch, i)
			norm, err := ad.Normalize(id)
			if err != nil || norm != id {
				t.Errorf("%s sender %d = %q: normalised %q, %v; want itself", ch, i, id, norm, err)
			}
			if j, dup := seen[id]; dup {
				t.Errorf("%s senders %d and %d are both %q", ch, j, i, id)
			}
			seen[id] = i
		}
	}
	if b := unknownBase(time.Now()); b <= maxAllowed || b+1e9 >= 100_000_000_000_000 {
		t.Errorf("unknownBase = %d: must be above -allowed's maximum and leave room below 10^14", b)
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestParseFlags(t *testing.T) {
	tokenFile := writeFile(t, "admin.token", "file-token\n")
	adminFile := writeFile(t, "other.token", "admin-token\n")
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	noEnv := env(nil)
	defaults := config{url: "http://127.0.0.1:7420", conns: 64, duration: 10 * time.Second, allowed: 1000,
		unknownRatio: 0.1, channel: "telegram", timeout: 5 * time.Second}
	with := func(f func(*config)) config { c := defaults; f(&c); return c }
	tests := []struct {
		name    string
		args    []string
		env     func(string) string
		want    config
		wantErr string
	}{
		{name: "token from env", env: env(map[string]string{"PAIRGATE_TOKEN": " env-token\n"}),
			want: with(func(c *config) { c.token = "env-token" })},
		{name: "token file wins over env", args: []string{"-token-file", tokenFile},
			env: env(map[string]string{"PAIRGATE_TOKEN": "env-token"}), want: with(func(c *config) { c.token = "file-token" })},
		{name: "everything", args: []string{"-url", "http://[::1]:9000/", "-token", "t", "-c", "8", "-d", "1m", "-n", "5000",
			"-allowed", "10", "-unknown-ratio", "0", "-channel", "whatsapp", "-account", "work", "-seed",
			"-admin-token-file", adminFile, "-timeout", "250ms", "-json"}, env: noEnv,
			want: config{url: "http://[::1]:9000/", token: "t", adminToken: "admin-token", conns: 8, duration: time.Minute,
				requests: 5000, allowed: 10, channel: "whatsapp", account: "work", seed: true, timeout: 250 * time.Millisecond, json: true}},
		{name: "admin token from env", args: []string{"-token", "t", "-seed"},
			env:  env(map[string]string{"PAIRGATE_ADMIN_TOKEN": "a"}),
			want: with(func(c *config) { c.token, c.adminToken, c.seed = "t", "a", true })},
		{name: "all unknown", args: []string{"-token", "t", "-allowed", "0", "-unknown-ratio", "1"}, env: noEnv,
			want: with(func(c *config) { c.token, c.allowed, c.unknownRatio = "t", 0, 1 })},
		{name: "no token", env: noEnv, wantErr: "no token"},
		{name: "token and token file", args: []string{"-token", "t", "-token-file", tokenFile}, env: noEnv, wantErr: "give one"},
		{name: "missing token file", args: []string{"-token-file", filepath.Join(t.TempDir(), "nope")}, env: noEnv, wantErr: "no such file"},
		{name: "empty token file", args: []string{"-token-file", writeFile(t, "empty", "\n")}, env: noEnv, wantErr: "empty"},
		{name: "admin token file without seed", args: []string{"-token", "t", "-admin-token-file", adminFile}, env: noEnv,
			wantErr: "only used with -seed"},
		{name: "bad url", args: []string{"-token", "t", "-url", "127.0.0.1:7420"}, env: noEnv, wantErr: "-url"},
		{name: "zero connections", args: []string{"-token", "t", "-c", "0"}, env: noEnv, wantErr: "-c 0"},
		{name: "too many connections", args: []string{"-token", "t", "-c", "5000"}, env: noEnv, wantErr: "-c 5000"},
		{name: "unbounded", args: []string{"-token", "t", "-d", "0"}, env: noEnv, wantErr: "bounded in time"},
		{name: "negative count", args: []string{"-token", "t", "-n", "-1"}, env: noEnv, wantErr: "-n -1"},
		{name: "ratio above 1", args: []string{"-token", "t", "-unknown-ratio", "1.5"}, env: noEnv, wantErr: "-unknown-ratio"},
		{name: "ratio NaN", args: []string{"-token", "t", "-unknown-ratio", "NaN"}, env: noEnv, wantErr: "-unknown-ratio"},
		{name: "no allowed senders", args: []string{"-token", "t", "-allowed", "0"}, env: noEnv, wantErr: "-unknown-ratio 1"},
		{name: "too many allowed", args: []string{"-token", "t", "-allowed", "1000000000001"}, env: noEnv, wantErr: "-allowed"},
		{name: "unknown channel", args: []string{"-token", "t", "-channel", "Telegram"}, env: noEnv, wantErr: "want one of telegram"},
		{name: "zero timeout", args: []string{"-token", "t", "-timeout", "0s"}, env: noEnv, wantErr: "-timeout"},
		{name: "argument", args: []string{"-token", "t", "extra"}, env: noEnv, wantErr: "unexpected argument"},
		{name: "unknown flag", args: []string{"-token", "t", "-q"}, env: noEnv, wantErr: "not defined"},
		{name: "several problems at once", args: []string{"-c", "0", "-d", "0"}, env: noEnv, wantErr: "invalid flags:\n  no token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseFlags(tt.args, tt.env, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(config{})); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
		})
	}
}

// fakeDaemon answers /v1/admit and /v1/pairing/allow as the daemon would,
// with a cap of 3 pending requests.
type fakeDaemon struct {
	*httptest.Server
	gatewayToken, adminToken string
	conns                    atomic.Int32
	mu                       sync.Mutex
	allowed                  map[string]int // sender → times allowed
	pending                  int
	admits                   int
	fail                     func(n int) bool // answer request n (from 1) with 503
}

func newFakeDaemon(t *testing.T, gatewayToken, adminToken string) *fakeDaemon {
	d := &fakeDaemon{gatewayToken: gatewayToken, adminToken: adminToken, allowed: map[string]int{}}
	d.Server = httptest.NewUnstartedServer(http.HandlerFunc(d.serve))
	d.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			d.conns.Add(1)
		}
	}
	d.Start()
	t.Cleanup(d.Close)
	return d
}

func apiError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"error":{"code":%q,"message":%q}}`, code, msg)
}

func (d *fakeDaemon) serve(w http.ResponseWriter, r *http.Request) {
	var body struct{ Channel, Account, Sender string }
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || r.Method != http.MethodPost {
		apiError(w, 400, "bad_request", "bad request")
		return
	}
	auth := r.Header.Get("Authorization")
	d.mu.Lock()
	defer d.mu.Unlock()
	switch r.URL.Path {
	case "/v1/pairing/allow":
		if auth != "Bearer "+d.adminToken {
			apiError(w, 403, "forbidden", "admin only")
			return
		}
		d.allowed[body.Sender]++
		fmt.Fprintf(w, `{"allowed":[{"channel":%q,"account":"default","sender":%q,"changed":%v}]}`,
			body.Channel, body.Sender, d.allowed[body.Sender] == 1)
	case "/v1/admit":
		if auth != "Bearer "+d.gatewayToken && auth != "Bearer "+d.adminToken {
			apiError(w, 401, "unauthorized", "no valid token")
			return
		}
		d.admits++
		switch {
		case d.fail != nil && d.fail(d.admits):
			apiError(w, 503, "unavailable", "the store does not answer")
		case d.allowed[body.Sender] > 0:
			io.WriteString(w, `{"verdict":"admit","reason":"allowed"}`)
		case d.pending < 3:
			d.pending++
			io.WriteString(w, `{"verdict":"challenge","reason":"challenged","code":"ABCD2345","request_id":"req_1","reply":"…"}`)
		default:
			io.WriteString(w, `{"verdict":"drop","reason":"max_pending"}`)
		}
	default:
		apiError(w, 404, "not_found", "no route")
	}
}

func TestRunSeedAndCount(t *testing.T) {
	d := newFakeDaemon(t, "gw-token", "admin-token")
	var stdout, stderr bytes.Buffer
	args := []string{"-url", d.URL, "-token-file", writeFile(t, "gw", "gw-token\n"),
		"-admin-token-file", writeFile(t, "admin", "admin-token\n"), "-seed", "-allowed", "50",
		"-n", "400", "-c", "4", "-d", "1m", "-unknown-ratio", "0.25", "-json"}
	if code := run(t.Context(), args, &stdout, &stderr, func(string) string { return "" }); code != exitOK {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
	}
	var res result
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, stdout.String())
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	wantAllowed := map[string]int{}
	for i := range uint64(50) {
		wantAllowed[senderID("telegram", i+1)] = 1
	}
	if diff := cmp.Diff(wantAllowed, d.allowed); diff != "" {
		t.Errorf("seeded senders (-want +got):\n%s", diff)
	}
	if res.Requests != 400 || res.OK != 400 || res.Errors != 0 || res.StoppedBy != "count" {
		t.Errorf("requests %d, ok %d, errors %d, stopped by %s; want 400, 400, 0, count", res.Requests, res.OK, res.Errors, res.StoppedBy)
	}
	if d.admits != 401 { // and the first request before the run
		t.Errorf("daemon saw %d admits, want 401", d.admits)
	}
	v := res.Verdicts
	if v["challenge"] != 3 || v["admit"]+v["challenge"]+v["drop"] != 400 || v["challenge"]+v["drop"] != res.Unknown {
		t.Errorf("verdicts %v with %d unknown senders: want 3 challenges, the rest of the unknown dropped", v, res.Unknown)
	}
	if res.Unknown < 40 || res.Unknown > 160 {
		t.Errorf("%d unknown senders of 400 with ratio 0.25", res.Unknown)
	}
	if diff := cmp.Diff(map[string]int64{"allowed": v["admit"], "challenged": 3, "max_pending": v["drop"]}, res.Reasons); diff != "" {
		t.Errorf("reasons (-want +got):\n%s", diff)
	}
	if n := d.conns.Load(); n > 4 {
		t.Errorf("%d connections opened, want at most -c 4", n)
	}
	if res.Latency.Max <= 0 || res.Latency.P50 > res.Latency.P99 || res.Latency.P99 > res.Latency.Max || res.Throughput <= 0 {
		t.Errorf("implausible latency or throughput: %+v, %.1f req/s", res.Latency, res.Throughput)
	}
}

func TestRunErrorsText(t *testing.T) {
	d := newFakeDaemon(t, "gw-token", "admin-token")
	d.allowed[senderID("telegram", 1)] = 1
	d.fail = func(n int) bool { return n > 1 && n%4 == 0 }
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"-url", d.URL, "-allowed", "1", "-unknown-ratio", "0", "-n", "40", "-c", "2"},
		&stdout, &stderr, func(k string) string { return map[string]string{"PAIRGATE_TOKEN": "gw-token"}[k] })
	if code != exitOK {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{
		"target      " + d.URL + "/v1/admit  telegram/default  2 connections\n",
		"\nrequests    40  ok 30  errors 10  (unknown senders 0)\n",
		"(stopped by count)\n",
		"\nverdicts    admit 30 (100.0%)  challenge 0 (0.0%)  drop 0 (0.0%)\n",
		"\nreasons     allowed 30\n",
		"\nerrors      http_503 10: pairgate: unavailable (503): the store does not answer\n",
		"\nlatency     p50 ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, " \n") {
		t.Errorf("trailing spaces in the output:\n%s", out)
	}
}

func TestRunStopsAfterDuration(t *testing.T) {
	d := newFakeDaemon(t, "gw-token", "admin-token")
	d.allowed[senderID("telegram", 1)] = 1
	var stdout, stderr bytes.Buffer
	start := time.Now()
	run(t.Context(), []string{"-url", d.URL, "-token", "gw-token", "-allowed", "1", "-unknown-ratio", "0", "-d", "200ms", "-json"},
		&stdout, &stderr, func(string) string { return "" })
	if el := time.Since(start); el > 10*time.Second {
		t.Errorf("a 200ms run took %v", el)
	}
	var res result
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("output is not JSON: %v\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	if res.StoppedBy != "duration" || res.Duration < 0.2 {
		t.Errorf("stopped by %s after %.3fs; want duration, at least 0.2s", res.StoppedBy, res.Duration)
	}
}

func TestRunRefusedToken(t *testing.T) {
	d := newFakeDaemon(t, "gw-token", "admin-token")
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"-url", d.URL, "-token", "wrong"}, &stdout, &stderr, func(string) string { return "" })
	if code != exitFailed || !strings.Contains(stderr.String(), "unauthorized (401)") || stdout.Len() != 0 {
		t.Errorf("exit %d, stdout %q, stderr %q; want 1 and an unauthorized error", code, stdout.String(), stderr.String())
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.admits != 0 {
		t.Errorf("%d admits counted with a wrong token", d.admits)
	}
}

func TestRunWarnsWhenNotSeeded(t *testing.T) {
	d := newFakeDaemon(t, "gw-token", "admin-token")
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"-url", d.URL, "-token", "gw-token", "-n", "10", "-c", "1"}, &stdout, &stderr,
		func(string) string { return "" })
	if code != exitOK || !strings.Contains(stderr.String(), "add them with -seed") {
		t.Errorf("exit %d, stderr %q; want 0 and a warning about -seed", code, stderr.String())
	}
}

func TestRunInterrupted(t *testing.T) {
	d := newFakeDaemon(t, "gw-token", "admin-token")
	d.allowed[senderID("telegram", 1)] = 1
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(200*time.Millisecond, cancel)
	var stdout, stderr bytes.Buffer
	code := run(ctx, []string{"-url", d.URL, "-token", "gw-token", "-allowed", "1", "-unknown-ratio", "0", "-d", "1h", "-json"},
		&stdout, &stderr, func(string) string { return "" })
	var res result
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil || code != exitOK {
		t.Fatalf("exit %d, %v; stderr:\n%s", code, err, stderr.String())
	}
	if res.StoppedBy != "interrupted" || res.Errors != 0 {
		t.Errorf("stopped by %s with %d errors (%v); want interrupted, no error", res.StoppedBy, res.Errors, res.ErrorKinds)
	}
}

func TestErrorKind(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	closedURL := srv.URL
	srv.Close()
	c, err := client.New(closedURL, "t")
	if err != nil {
		t.Fatal(err)
	}
	_, refused := c.Admit(t.Context(), api.AdmitRequest{Channel: "telegram", Sender: "1"})
	ctx, cancel := context.WithTimeout(t.Context(), time.Nanosecond)
	defer cancel()
	<-ctx.Done()
	_, timeout := c.Admit(ctx, api.AdmitRequest{Channel: "telegram", Sender: "1"})
	tests := []struct {
		err  error
		want string
	}{
		{&client.APIError{Status: 429, Code: "locked_out"}, "http_429"},
		{fmt.Errorf("wrapped: %w", &client.APIError{Status: 502}), "http_502"},
		{refused, "refused"},
		{timeout, "timeout"},
		{fmt.Errorf("pairgate: reading response: %w", io.ErrUnexpectedEOF), "reset"},
		{errors.New("pairgate: POST /v1/admit: the response has no verdict"), "bad_response"},
	}
	for _, tt := range tests {
		if got := errorKind(tt.err); got != tt.want {
			t.Errorf("errorKind(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}
