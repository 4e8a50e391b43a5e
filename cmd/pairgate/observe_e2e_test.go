package main_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestMetricNamesAndPairLatency: every metric is named pairing_… (the
// SPEC's) or pairgate_… (ours), besides the standard Go and process
// collectors; a /pair session, which lives as long as the device stays
// connected, is counted but kept out of the request-latency histogram.
func TestMetricNamesAndPairLatency(t *testing.T) {
	home := t.TempDir()
	d := startServe(t, home)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws://"+devAddr(d)+"/pair", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := ws.Read(ctx); err != nil { // the challenge
		t.Fatal(err)
	}
	ws.Close(websocket.StatusNormalClosure, "")

	client := &http.Client{Timeout: 5 * time.Second}
	var text string
	for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		_, data, err := d.do(client, "GET", "/metrics", "", "")
		if err != nil {
			t.Fatal(err)
		}
		text = string(data)
		if strings.Contains(text, `pairgate_http_requests_total{code="200",route="/metrics"}`) || time.Since(start) > 3*time.Second {
			break
		}
	}
	spec := map[string]bool{"pairing_requests_pending": true, "pairing_approvals_total": true, "pairing_codes_expired_total": true,
		"pairing_bootstrap_tokens_issued_total": true, "pairing_inbound_challenged_total": true}
	for _, line := range strings.Split(text, "\n") {
		name, ok := strings.CutPrefix(line, "# TYPE ")
		if !ok {
			continue
		}
		name, _, _ = strings.Cut(name, " ")
		switch {
		case spec[name], strings.HasPrefix(name, "pairgate_"),
			// client_golang's standard collectors keep their own names.
			strings.HasPrefix(name, "go_"), strings.HasPrefix(name, "process_"), strings.HasPrefix(name, "promhttp_"):
		default:
			t.Errorf("metric %s is named neither pairing_… (SPEC) nor pairgate_…", name)
		}
		if strings.HasPrefix(name, "pairing_") && !spec[name] {
			t.Errorf("metric %s takes the SPEC's pairing_ prefix but is not a SPEC metric", name)
		}
	}
	samples := promSamples(t, text)
	if samples[promKey("pairgate_http_requests_total", map[string]string{"route": "/pair", "code": "101"})] != 1 {
		t.Errorf("the /pair session is not counted in pairgate_http_requests_total:\n%s", grepLines(text, `route="/pair"`))
	}
	if strings.Contains(grepLines(text, "pairgate_http_request_duration_seconds"), `route="/pair"`) {
		t.Errorf("/pair is in the latency histogram:\n%s", grepLines(text, `route="/pair"`))
	}
	if samples[promKey("pairgate_http_request_duration_seconds_count", map[string]string{"route": "/metrics"})] < 1 {
		t.Errorf("the latency histogram lost the ordinary routes:\n%s", grepLines(text, "duration_seconds_count"))
	}
}

// TestLogDurationsInMilliseconds: the daemon's JSON log gives durations as
// *_ms numbers, never as nanoseconds.
func TestLogDurationsInMilliseconds(t *testing.T) {
	home := t.TempDir()
	cmd := exec.Command(binary, "--home", home, "serve", "--listen", serveFreeAddr(t), "--log-level", "debug", "--log-format", "json")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	out := &serveBuf{}
	cmd.Stdout = out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	records := make(chan map[string]any, 100)
	go func() {
		defer close(records)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var rec map[string]any
			if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
				t.Errorf("a log line is not JSON: %q", sc.Text())
				continue
			}
			records <- rec
		}
	}()
	var addr string
	for start := time.Now(); addr == ""; time.Sleep(20 * time.Millisecond) {
		if _, rest, ok := strings.Cut(out.String(), "serving on http://"); ok {
			addr, _, _ = strings.Cut(rest, "\n")
		}
		if time.Since(start) > 15*time.Second {
			t.Fatalf("serve did not start:\n%s", out)
		}
	}
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cmd.Process.Signal(syscall.SIGTERM)
	var request, shutdown map[string]any
	for rec := range records {
		for k, v := range rec {
			if k == "duration" || k == "timeout" || strings.HasSuffix(k, "_ns") {
				t.Errorf("log record %q has %s=%v: durations are *_ms", rec["msg"], k, v)
			}
		}
		switch rec["msg"] {
		case "http request":
			request = rec
		case "shutting down: draining requests":
			shutdown = rec
		}
	}
	cmd.Wait()
	if ms, ok := request["duration_ms"].(float64); !ok || ms <= 0 || ms > 5000 {
		t.Errorf("http request log: duration_ms = %v, want a number of milliseconds: %v", request["duration_ms"], request)
	}
	if shutdown["timeout_ms"] != float64(10000) {
		t.Errorf("shutdown log: timeout_ms = %v, want 10000: %v", shutdown["timeout_ms"], shutdown)
	}
}
