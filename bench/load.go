package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// loadPlan is how the daemon is loaded: conns connections for duration,
// senders 1..allowed on the allowlist, rounds times each of all allowed and
// unknownRatio unknown, alternating, against one daemon, so the two rates
// compare like with like.
type loadPlan struct {
	conns        int
	allowed      int
	duration     time.Duration
	rounds       int
	unknownRatio float64
}

// daemonLoad is what the load program measured.
type daemonLoad struct {
	plan loadPlan
	// all allowed; with a fraction unknown.
	all, unknown loadFigures
	// ratio is each round's unknown rate over the all-allowed rate of
	// the round before it.
	ratio sample
}

type loadFigures struct {
	rps, p99 sample // ok req/s; p99 in ms
	requests int64
	errors   int64
	kinds    map[string]int64
}

// loadResult is the part of `pairgate-load -json` that bench reads.
type loadResult struct {
	Requests     int64            `json:"requests"`
	OK           int64            `json:"ok"`
	Errors       int64            `json:"errors"`
	ErrorKinds   map[string]int64 `json:"error_kinds"`
	Duration     float64          `json:"duration_s"`
	OKThroughput float64          `json:"ok_rps"`
	Latency      struct {
		P99 float64 `json:"p99"`
	} `json:"latency_ms"`
}

func parseLoad(data []byte) (loadResult, error) {
	var r loadResult
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&r); err != nil {
		return r, fmt.Errorf("pairgate-load -json: %w", err)
	}
	if r.Requests == 0 || r.Duration <= 0 {
		return r, fmt.Errorf("pairgate-load -json: no requests made: %s", bytes.TrimSpace(data))
	}
	return r, nil
}

func (f *loadFigures) add(r loadResult) {
	f.rps = append(f.rps, r.OKThroughput)
	f.p99 = append(f.p99, r.Latency.P99)
	f.requests += r.Requests
	f.errors += r.Errors
	for k, n := range r.ErrorKinds {
		if f.kinds == nil {
			f.kinds = map[string]int64{}
		}
		f.kinds[k] += n
	}
}

// measureLoad starts `pairgate serve` in a home of its own under dir, makes
// a gateway token, puts senders 1..allowed on the allowlist (pairgate-load
// -seed) and runs pairgate-load as planned.
func measureLoad(ctx context.Context, bin, dir string, p loadPlan) (*daemonLoad, error) {
	env := pairgateEnv()
	home := filepath.Join(dir, "home-load")
	d, _, err := startServe(ctx, bin, home, env)
	if err != nil {
		return nil, err
	}
	defer d.stop()
	out, err := runCmd(ctx, env, filepath.Join(bin, "pairgate"), "--home", home, "tokens", "create", "--scope", "gateway", "--name", "bench", "--quiet")
	if err != nil {
		return nil, err
	}
	tokenFile := filepath.Join(dir, "gateway.token")
	if err := os.WriteFile(tokenFile, out, 0o600); err != nil {
		return nil, err
	}
	res := &daemonLoad{plan: p}
	for round := range p.rounds {
		for _, ratio := range []float64{0, p.unknownRatio} {
			args := []string{"-url", d.url, "-token-file", tokenFile, "-c", fmt.Sprint(p.conns), "-d", p.duration.String(),
				"-allowed", fmt.Sprint(p.allowed), "-unknown-ratio", fmt.Sprint(ratio), "-json"}
			if round == 0 && ratio == 0 {
				args = append(args, "-seed", "-admin-token-file", filepath.Join(home, "admin.token"))
			}
			out, err := runCmd(ctx, env, filepath.Join(bin, "pairgate-load"), args...)
			if err != nil {
				return nil, fmt.Errorf("%w\npairgate serve stderr:\n%s", err, tail(d.stderr.String(), 10))
			}
			r, err := parseLoad(out)
			if err != nil {
				return nil, err
			}
			res.record(ratio > 0, r)
		}
	}
	return res, nil
}

// record adds a run of pairgate-load: all allowed, or with unknown
// senders, whose rate is then compared with the all-allowed run before it.
func (d *daemonLoad) record(unknown bool, r loadResult) {
	if !unknown {
		d.all.add(r)
		return
	}
	d.unknown.add(r)
	if n := len(d.all.rps); n > 0 {
		d.ratio = append(d.ratio, r.OKThroughput/d.all.rps[n-1])
	}
}

// errorsText says how many requests failed, and how, or "" when none did.
func (f loadFigures) errorsText() string {
	if f.errors == 0 {
		return ""
	}
	var kinds []string
	for _, k := range slices.Sorted(maps.Keys(f.kinds)) {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, f.kinds[k]))
	}
	return fmt.Sprintf("%d of %d requests failed (%s)", f.errors, f.requests, strings.Join(kinds, ", "))
}
