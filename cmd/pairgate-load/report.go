package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/pairgate/pairgate/api"
)

// result is what a run measured; -json prints it as is.
type result struct {
	URL         string `json:"url"`
	Channel     string `json:"channel"`
	Account     string `json:"account"`
	Connections int    `json:"connections"`
	// Requests counts every request made, Unknown those from unknown
	// senders; OK + Errors = Requests.
	Requests int64 `json:"requests"`
	Unknown  int64 `json:"unknown_senders"`
	OK       int64 `json:"ok"`
	Errors   int64 `json:"errors"`
	// ErrorKinds counts errors by kind: http_<status>, timeout, refused,
	// reset, no_local_port, canceled, transport, bad_response.
	ErrorKinds   map[string]int64  `json:"error_kinds"`
	ErrorSamples map[string]string `json:"error_samples"` // the first error of each kind
	Duration     float64           `json:"duration_s"`
	StoppedBy    string            `json:"stopped_by"` // duration, count or interrupted
	Throughput   float64           `json:"throughput_rps"`
	OKThroughput float64           `json:"ok_rps"`
	// Latency is over every request, failed ones included.
	Latency  latencyMS        `json:"latency_ms"`
	Verdicts map[string]int64 `json:"verdicts"` // admit, challenge, drop (always present)
	Reasons  map[string]int64 `json:"reasons"`
}

type latencyMS struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99_9"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func (s *stats) result(cfg config, elapsed time.Duration, stopped string) *result {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := &result{
		URL: strings.TrimRight(cfg.url, "/"), Channel: cfg.channel, Account: accountName(cfg.account), Connections: cfg.conns,
		Requests: s.requests, Unknown: s.unknown, OK: s.ok, Errors: s.requests - s.ok,
		ErrorKinds: map[string]int64{}, ErrorSamples: map[string]string{},
		Duration: elapsed.Seconds(), StoppedBy: stopped,
		Latency: latencyMS{
			P50: ms(s.hist.quantile(0.50)), P90: ms(s.hist.quantile(0.90)), P99: ms(s.hist.quantile(0.99)),
			P999: ms(s.hist.quantile(0.999)), Max: ms(time.Duration(s.hist.max)), Mean: ms(s.hist.mean()),
		},
		Verdicts: map[string]int64{string(api.Admit): 0, string(api.Challenge): 0, string(api.Drop): 0},
		Reasons:  map[string]int64{},
	}
	if elapsed > 0 {
		r.Throughput = float64(s.requests) / elapsed.Seconds()
		r.OKThroughput = float64(s.ok) / elapsed.Seconds()
	}
	for k, e := range s.errs {
		r.ErrorKinds[k] = e.n
		r.ErrorSamples[k] = e.sample
	}
	for v, n := range s.verdicts {
		r.Verdicts[string(v)] += n
	}
	for v, n := range s.reasons {
		r.Reasons[string(v)] = n
	}
	return r
}

func (r *result) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// writeText prints the result for people:
//
//	target      http://127.0.0.1:7420/v1/admit  telegram/default  64 connections
//	requests    213456  ok 213400  errors 56  (unknown senders 21340)
//	duration    10.003s  (stopped by duration)
//	throughput  21339.5 req/s  (ok 21333.9 req/s)
//	latency     p50 1.210ms  p90 2.300ms  p99 4.100ms  p99.9 8.700ms  max 21.300ms  mean 1.402ms
//	verdicts    admit 192000 (90.0%)  challenge 3 (0.0%)  drop 21397 (10.0%)
//	reasons     allowed 192000  max_pending 21394  challenged 3
//	errors      http_503 50: pairgate: unavailable (503): the store does not answer
//	            timeout 6: ...
func (r *result) writeText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "target      %s/v1/admit  %s/%s  %d connections\n", r.URL, r.Channel, r.Account, r.Connections)
	fmt.Fprintf(&b, "requests    %d  ok %d  errors %d  (unknown senders %d)\n", r.Requests, r.OK, r.Errors, r.Unknown)
	fmt.Fprintf(&b, "duration    %.3fs  (stopped by %s)\n", r.Duration, r.StoppedBy)
	fmt.Fprintf(&b, "throughput  %.1f req/s  (ok %.1f req/s)\n", r.Throughput, r.OKThroughput)
	l := r.Latency
	fmt.Fprintf(&b, "latency     p50 %.3fms  p90 %.3fms  p99 %.3fms  p99.9 %.3fms  max %.3fms  mean %.3fms\n",
		l.P50, l.P90, l.P99, l.P999, l.Max, l.Mean)
	b.WriteString("verdicts   ")
	verdicts := []string{string(api.Admit), string(api.Challenge), string(api.Drop)}
	for k := range r.Verdicts { // anything a newer daemon might answer
		if !slices.Contains(verdicts, k) {
			verdicts = append(verdicts, k)
		}
	}
	for _, v := range verdicts {
		fmt.Fprintf(&b, " %s %d (%.1f%%) ", v, r.Verdicts[v], pct(r.Verdicts[v], r.OK))
	}
	b.WriteString("\n")
	if len(r.Reasons) > 0 {
		b.WriteString("reasons    ")
		for _, k := range byCount(r.Reasons) {
			fmt.Fprintf(&b, " %s %d ", k, r.Reasons[k])
		}
		b.WriteString("\n")
	}
	for i, k := range byCount(r.ErrorKinds) {
		label := "errors      "
		if i > 0 {
			label = "            "
		}
		fmt.Fprintf(&b, "%s%s %d: %s\n", label, k, r.ErrorKinds[k], r.ErrorSamples[k])
	}
	_, err := io.WriteString(w, strings.ReplaceAll(b.String(), " \n", "\n"))
	return err
}

func pct(n, of int64) float64 {
	if of == 0 {
		return 0
	}
	return 100 * float64(n) / float64(of)
}

// byCount returns the keys of m, most frequent first, ties by name.
func byCount(m map[string]int64) []string {
	return slices.SortedFunc(maps.Keys(m), func(a, b string) int {
		return cmp.Or(cmp.Compare(m[b], m[a]), strings.Compare(a, b))
	})
}
