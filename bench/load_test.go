package main

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The recorded output of `pairgate-load -json`.
func TestParseLoad(t *testing.T) {
	r, err := parseLoad([]byte(readFixture(t, "load.json")))
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests != 17342 || r.Errors != 0 || r.OKThroughput < 17339 || r.OKThroughput > 17340 || r.Latency.P99 != 2.162687 {
		t.Errorf("parsed %+v", r)
	}
}

func TestParseLoadErrors(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", "pairgate-load -json: EOF"},
		{"pairgate-load: no token", "pairgate-load -json: invalid character"},
		{`{"requests": 0, "duration_s": 1.0}`, "pairgate-load -json: no requests made"},
	} {
		if _, err := parseLoad([]byte(c.in)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("parseLoad(%q): %v, want an error saying %q", c.in, err, c.want)
		}
	}
}

// Each run with unknown senders is compared with the all-allowed run just
// before it, so a machine that slows down during the run does not make
// the ratio.
func TestLoadRatioPairsRuns(t *testing.T) {
	run := func(rps, p99 float64, errors int64, kinds map[string]int64) loadResult {
		r := loadResult{Requests: 1000, OK: 1000 - errors, Errors: errors, ErrorKinds: kinds, Duration: 1, OKThroughput: rps}
		r.Latency.P99 = p99
		return r
	}
	var d daemonLoad
	d.record(false, run(20000, 4, 0, nil))
	d.record(true, run(17000, 4.5, 2, map[string]int64{"http_503": 2}))
	d.record(false, run(10000, 6, 0, nil))
	d.record(true, run(8000, 7, 1, map[string]int64{"timeout": 1}))
	if diff := cmp.Diff(sample{0.85, 0.8}, d.ratio); diff != "" {
		t.Errorf("ratios (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(sample{20000, 10000}, d.all.rps); diff != "" {
		t.Errorf("all-allowed rates (-want +got):\n%s", diff)
	}
	if got, want := d.unknown.errorsText(), "3 of 2000 requests failed (http_503 2, timeout 1)"; got != want {
		t.Errorf("errors: %q, want %q", got, want)
	}
	if got := d.all.errorsText(); got != "" {
		t.Errorf("no errors: %q", got)
	}
}
