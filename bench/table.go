package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// The steps of a run, by the names progress and errors use.
const (
	stepBuild      = "build"
	stepFsync      = "fsync rate"
	stepAdmit      = "admit in process"
	stepEngines    = "durable writes, SQLite"
	stepPostgres   = "durable writes, PostgreSQL"
	stepStartup    = "start-up with 1,000,000 allowed"
	stepToken      = "setup token"
	stepLoad       = "daemon under load"
	stepQR         = "setup code QR"
	stepRevocation = "revocation across replicas"
	stepFsyncAgain = "fsync rate again"
)

// SPEC §6's figures for hermes, which cannot run here (no PyPI).
const (
	// hermesChecksPerSec: is_approved at 10,000 users, paid by every
	// message, so also by every one that gets a code.
	hermesChecksPerSec = 60
	// hermesApprovalsPerSec: approve at 10,000 users.
	hermesApprovalsPerSec = 18
)

// admitSizes are the allowlists of BenchmarkAdmitAllowed.
func admitSizes() []int { return []int{10, 10_000, 1_000_000} }

// inproc is an in-process benchmark: per operation.
type inproc struct {
	ns, allocs, bytes sample
}

// engine is BenchmarkEngines on one engine: per second.
type engine struct {
	challenge1, challenge16, approve sample
}

// results is everything one run measured. A nil figure was not measured:
// why[step] says why (the step failed, or could not run).
type results struct {
	when     time.Time
	took     time.Duration
	machine  machine
	command  string
	plan     plan
	postgres bool // a DSN was given

	fsyncFirst, fsyncLast sample // fsyncs/s
	admit                 map[int]*inproc
	sqlite, pg            *engine
	token                 *inproc
	startup               *startup
	load                  *daemonLoad
	revocation            *revocation
	qr                    *qrSize

	why map[string]string
}

// noPostgres is the reason for the rows that need a PostgreSQL server.
const noPostgres = "not measured: needs PostgreSQL (-postgres DSN or $" + postgresEnv + ")"

func (r *results) reason(step string) string {
	if w, ok := r.why[step]; ok {
		return w
	}
	return "not measured"
}

// fsyncRate is the denominator of the ratios: the median of every fsync
// run, at the start and at the end.
func (r *results) fsyncRate() (float64, bool) {
	all := append(append(sample{}, r.fsyncFirst...), r.fsyncLast...)
	if len(all) == 0 {
		return 0, false
	}
	return all.median(), true
}

// ratio writes rate over the fsync rate.
func (r *results) ratio(rate sample) string {
	f, ok := r.fsyncRate()
	if !ok || len(rate) == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f", rate.median()/f)
}

// row is one line of the table.
type row struct {
	path, target, measured, ratio, met string
}

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "no"
}

// rows are the table: the fsync rate, one row per SPEC §7 target in its
// order, then PostgreSQL's durable writes.
func (r *results) rows() []row {
	perSec := func(s sample) string { return s.span(thousands) + "/s" }
	var rows []row
	add := func(x row) {
		if x.ratio == "" {
			x.ratio = "—"
		}
		if x.met == "" {
			x.met = "—"
		}
		rows = append(rows, x)
	}
	missing := func(path, target, why string) { add(row{path: path, target: target, measured: why}) }

	// The unit of the ratios.
	{
		const path, target = "this machine's `fsync` rate (`BenchmarkFsync`: 4 KiB append + `fsync`), at the start / at the end", "(the unit of the ratios)"
		first, last := r.reason(stepFsync), r.reason(stepFsyncAgain)
		if len(r.fsyncFirst) > 0 {
			first = perSec(r.fsyncFirst)
		}
		if len(r.fsyncLast) > 0 {
			last = perSec(r.fsyncLast)
		}
		x := row{path: path, target: target, measured: first + " / " + last}
		if f, ok := r.fsyncRate(); ok {
			x.ratio = "1 (" + thousands(f) + "/s)"
		}
		add(x)
	}

	{
		const path, target = "`Admit`, allowed sender, in process", "≤ 100 ns/op, 0 allocs/op, flat from 10 to 1,000,000 allowed senders"
		var spans, sizes []string
		var allocs sample
		met := len(r.admit) == len(admitSizes())
		for _, n := range admitSizes() {
			a := r.admit[n]
			if a == nil {
				met = false
				continue
			}
			spans = append(spans, a.ns.span(decimals(0)))
			sizes = append(sizes, thousands(float64(n)))
			allocs = append(allocs, a.allocs...)
			met = met && a.ns.median() <= 100 && a.allocs.max() == 0
		}
		if len(spans) < len(admitSizes()) {
			missing(path, target, r.reason(stepAdmit))
		} else {
			lo, hi := r.admit[10].ns.median(), r.admit[1_000_000].ns.median()
			add(row{path: path, target: target,
				measured: fmt.Sprintf("%s ns/op at %s allowed, %s allocs/op; 1,000,000 allowed at %.2f× the time of 10",
					strings.Join(spans, " / "), strings.Join(sizes, " / "), allocs.span(decimals(0)), hi/lo),
				met: yesNo(met)})
		}
	}

	daemonNote := func(l *daemonLoad) string {
		cores := ""
		if r.machine.cores != 2 {
			cores = fmt.Sprintf(", on %d cores", r.machine.cores)
		}
		return fmt.Sprintf("%d connections, %s allowed, %d × %s%s", l.plan.conns, thousands(float64(l.plan.allowed)), l.plan.rounds, l.plan.duration, cores)
	}
	{
		const path, target = "`POST /v1/admit` on loopback, 2 cores", "≥ 20,000 req/s, p99 ≤ 5 ms"
		if l := r.load; l == nil {
			missing(path, target, r.reason(stepLoad))
		} else {
			m := fmt.Sprintf("%s req/s, p99 %s ms (%s; the load program on the same machine)", l.all.rps.span(thousands), l.all.p99.span(decimals(2)), daemonNote(l))
			if e := l.all.errorsText(); e != "" {
				m += "; " + e
			}
			add(row{path: path, target: target, measured: m,
				met: yesNo(l.all.rps.median() >= 20_000 && l.all.p99.median() <= 5 && l.all.errors == 0)})
		}
	}

	hermes := func(rate sample, per float64, what string) string {
		return fmt.Sprintf("%s× hermes's %d %s (SPEC §6; not run here)", thousands(rate.median()/per), int(per), what)
	}
	{
		const path, target = "new challenge (durable write)", "≥ 1,000/s on SQLite; 10× hermes measured side by side"
		if e := r.sqlite; e == nil {
			missing(path, target, r.reason(stepEngines))
		} else {
			add(row{path: path, target: target,
				measured: perSec(e.challenge1) + " (SQLite, 1 caller, 10,000 allowed); " + hermes(e.challenge1, hermesChecksPerSec, "checks/s at 10,000 users"),
				ratio:    r.ratio(e.challenge1),
				met:      yesNo(e.challenge1.median() >= 1_000 && e.challenge1.median() >= 10*hermesChecksPerSec)})
		}
	}
	{
		const path, target = "approve with 10,000 allowed", "≥ 1,000/s (hermes: 18/s)"
		if e := r.sqlite; e == nil {
			missing(path, target, r.reason(stepEngines))
		} else {
			add(row{path: path, target: target,
				measured: perSec(e.approve) + " (SQLite, 1 caller); " + hermes(e.approve, hermesApprovalsPerSec, "approvals/s"),
				ratio:    r.ratio(e.approve),
				met:      yesNo(e.approve.median() >= 1_000)})
		}
	}
	{
		const path, target = "start-up with 1,000,000 allowed senders", "≤ 3 s, ≤ 300 MB RSS"
		if s := r.startup; s == nil {
			missing(path, target, r.reason(stepStartup))
		} else {
			add(row{path: path, target: target,
				measured: fmt.Sprintf("%s s until /healthz answers, peak RSS %s MB (`pairgate serve`, integrity check included, %s)",
					s.seconds.span(decimals(2)), s.peakMB.span(decimals(0)), plural(len(s.seconds), "start")),
				met: yesNo(s.seconds.median() <= 3 && s.peakMB.median() <= 300)})
		}
	}
	{
		const path, target = "setup token issue + verify (compact v2)", "≤ 2 µs, ≤ 4 allocs"
		if t := r.token; t == nil {
			missing(path, target, r.reason(stepToken))
		} else {
			us := make(sample, len(t.ns))
			for i, ns := range t.ns {
				us[i] = ns / 1000
			}
			add(row{path: path, target: target,
				measured: fmt.Sprintf("%s µs, %s allocs/op (%s B/op)", us.span(decimals(2)), t.allocs.span(decimals(0)), t.bytes.span(decimals(0))),
				met:      yesNo(t.ns.median() <= 2_000 && t.allocs.max() <= 4)})
		}
	}
	{
		const path, target = "new challenge, 16 concurrent callers (SQLite, synchronous=FULL)", "≥ 3,000/s (group commit), ≥ 10× hermes side by side"
		if e := r.sqlite; e == nil {
			missing(path, target, r.reason(stepEngines))
		} else {
			add(row{path: path, target: target,
				measured: perSec(e.challenge16) + " (group commit, 10,000 allowed); " + hermes(e.challenge16, hermesChecksPerSec, "checks/s at 10,000 users"),
				ratio:    r.ratio(e.challenge16),
				met:      yesNo(e.challenge16.median() >= 3_000 && e.challenge16.median() >= 10*hermesChecksPerSec)})
		}
	}
	{
		const path, target = "`POST /v1/admit` with 10 % distinct unknown senders", "≥ 60 % of the all-allowed rate, p99 ≤ 5 ms"
		if l := r.load; l == nil {
			missing(path, target, r.reason(stepLoad))
		} else {
			m := fmt.Sprintf("%s req/s, %s of the all-allowed rate of the run before it; p99 %s ms (%s)",
				l.unknown.rps.span(thousands), l.ratio.span(decimals(2)), l.unknown.p99.span(decimals(2)), daemonNote(l))
			if e := l.unknown.errorsText(); e != "" {
				m += "; " + e
			}
			add(row{path: path, target: target, measured: m,
				met: yesNo(l.ratio.median() >= 0.6 && l.unknown.p99.median() <= 5 && l.unknown.errors == 0)})
		}
	}
	{
		const path, target = "revocation seen by another replica", "≤ 1 s p99"
		switch v := r.revocation; {
		case v != nil:
			ms := func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }
			add(row{path: path, target: target,
				measured: fmt.Sprintf("p50 %s, p99 %s, max %s over %d revocations (2 replicas on PostgreSQL, from the revoke request on one to the other's refusal)",
					ms(v.p50), ms(v.p99), ms(v.max), v.rounds),
				met: yesNo(v.p99 <= time.Second)})
		case !r.postgres:
			missing(path, target, noPostgres)
		default:
			missing(path, target, r.reason(stepRevocation))
		}
	}
	{
		const path, target = "terminal QR of a setup code (40-character URL)", "≤ 80 columns including the quiet zone"
		if q := r.qr; q == nil {
			missing(path, target, r.reason(stepQR))
		} else {
			add(row{path: path, target: target,
				measured: fmt.Sprintf("%d columns × %d lines (a %d-character setup code)", q.cols, q.lines, q.codeLen),
				met:      yesNo(q.cols <= 80)})
		}
	}
	{
		const path, target = "new challenge 1 / 16 callers, approve, PostgreSQL", "(report)"
		switch e := r.pg; {
		case e != nil:
			add(row{path: path, target: target,
				measured: perSec(e.challenge1) + " / " + perSec(e.challenge16) + ", " + perSec(e.approve),
				ratio:    r.ratio(e.challenge1) + " / " + r.ratio(e.challenge16) + ", " + r.ratio(e.approve)})
		case !r.postgres:
			missing(path, target, noPostgres)
		default:
			missing(path, target, r.reason(stepPostgres))
		}
	}
	return rows
}

// writeMarkdown writes the header, the table and what to read it with.
func (r *results) writeMarkdown(w io.Writer) error {
	var b strings.Builder
	m := r.machine
	fmt.Fprintf(&b, "Measured %s on %s (%d cores, GOMAXPROCS %d), %s, %s", r.when.UTC().Format("2006-01-02 15:04 MST"),
		m.cpu, m.cores, m.gomaxprocs, m.goVersion, m.os)
	if m.load != "" {
		fmt.Fprintf(&b, "; load average %s at the start", m.load)
	}
	fmt.Fprintf(&b, "; the run took %s:\n\n```sh\n%s\n```\n\n", r.took.Round(time.Second), r.command)
	b.WriteString("| path | target (SPEC §7) | measured | ratio to `fsync` | met? |\n|---|---|---|---|---|\n")
	for _, x := range r.rows() {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", cell(x.path), cell(x.target), cell(x.measured), cell(x.ratio), cell(x.met))
	}
	p := r.plan
	fmt.Fprintf(&b, "\nRanges are min–max over %s of each in-process benchmark (%s each, `Admit` %s, durable writes %s operations on SQLite and %s on PostgreSQL) and %s of each daemon load; "+
		"met? compares the median with the target. The ratio is a durable write's median rate over the median `fsync` rate "+
		"of the same run, start and end together: other work on the machine moves the absolute figures far more than the ratios. "+
		"hermes cannot run here (no PyPI), so the hermes comparisons are against SPEC §6's figures: %d approvals/s at 10,000 users, "+
		"and for challenges its `is_approved` check at 10,000 users, %d/s, which every message pays before it gets a code.\n",
		plural(p.count, "run"), p.benchtime, p.admitBenchtime, thousands(float64(p.sqliteOps)), thousands(float64(p.pgOps)), plural(p.load.rounds, "run"), hermesApprovalsPerSec, hermesChecksPerSec)
	_, err := io.WriteString(w, b.String())
	return err
}

// plural writes n things: "1 run", "3 runs".
func plural(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}

// cell makes text safe inside a table cell.
func cell(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "|", `\|`), "\n", " ")
}
