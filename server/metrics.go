package server

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/pairgate/pairgate/api"
	"github.com/pairgate/pairgate/channel"
	"github.com/pairgate/pairgate/internal/buildinfo"
	"github.com/pairgate/pairgate/store"
)

// metrics are pairgate's Prometheus metrics (SPEC section 4). Counters fed
// from the change log include changes made by other processes (the CLI);
// gate decisions and HTTP figures are this daemon's own.
type metrics struct {
	approvals   *prometheus.CounterVec // pairing_approvals_total{channel,result}
	expired     prometheus.Counter     // pairing_codes_expired_total
	challenged  *prometheus.CounterVec // pairing_inbound_challenged_total{channel,result}
	decisions   *prometheus.CounterVec // pairgate_gate_decisions_total{verdict,reason}
	viewLookups *prometheus.CounterVec // pairgate_allowlist_view_lookups_total{result}
	changes     *prometheus.CounterVec // pairgate_changes_total{kind}
	bootstrap   *prometheus.CounterVec // pairing_bootstrap_tokens_issued_total{profile}
	deviceReqs  *prometheus.CounterVec // pairgate_device_requests_total{result}
	httpReqs    *prometheus.CounterVec // pairgate_http_requests_total{route,code}
	httpLatency *prometheus.HistogramVec
	unrouted    prometheus.Counter
	gcDeleted   *prometheus.CounterVec // pairgate_gc_deleted_total{what}
	gcRuns      *prometheus.CounterVec // pairgate_gc_runs_total{result}
}

func newMetrics(reg *prometheus.Registry, st store.Store, now func() time.Time) *metrics {
	m := &metrics{
		approvals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pairing_approvals_total",
			Help: "Approval attempts by result: approved, not_found (a wrong code), locked_out, already_approved (approved before: a double click, a retry). Includes approvals made with the CLI; locked_out and already_approved count this daemon's answers.",
		}, []string{"channel", "result"}),
		expired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pairing_codes_expired_total",
			Help: "Pairing requests that expired before anyone approved them.",
		}),
		challenged: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pairing_inbound_challenged_total",
			Help: "Gate decisions under the pairing policy for senders not on the allowlist, by result (the gate's reason).",
		}, []string{"channel", "result"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pairgate_gate_decisions_total",
			Help: "Gate decisions made by this daemon, by verdict and reason.",
		}, []string{"verdict", "reason"}),
		viewLookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pairgate_allowlist_view_lookups_total",
			Help: "Allowlist lookups answered from memory: hit (admitted) or miss (not on the list).",
		}, []string{"result"}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pairgate_changes_total",
			Help: "Records appended to the change log since this daemon started, by kind, from any process.",
		}, []string{"kind"}),
		bootstrap: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pairing_bootstrap_tokens_issued_total",
			Help: "Setup codes (bootstrap tokens) issued, by profile (the device role), from any process.",
		}, []string{"profile"}),
		deviceReqs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pairgate_device_requests_total",
			Help: "Device pairing requests by outcome: requested, approved, rejected, paired (token delivered).",
		}, []string{"result"}),
		httpReqs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pairgate_http_requests_total",
			Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"}),
		httpLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "pairgate_http_request_duration_seconds",
			Help:    "HTTP request latency by route, for every route but /pair (a WebSocket session lasts as long as the device stays).",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}, []string{"route"}),
		unrouted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pairgate_http_unrouted_requests_total",
			Help: "HTTP requests for paths pairgate does not serve.",
		}),
		gcDeleted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pairgate_gc_deleted_total",
			Help: "Rows garbage collection deleted, by what they were (requests: expired pending requests; changes: changes pruned from the log).",
		}, []string{"what"}),
		gcRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pairgate_gc_runs_total",
			Help: "Garbage collection runs by result: ok or error.",
		}, []string{"result"}),
	}
	info := buildinfo.Read()
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "pairgate_build_info",
		Help:        "Always 1; the labels say which pairgate this is (as pairgate version prints it).",
		ConstLabels: prometheus.Labels{"version": info.Version, "commit": info.Commit, "goversion": info.Go},
	})
	build.Set(1)
	reg.MustRegister(build, m.approvals, m.expired, m.challenged, m.decisions, m.viewLookups, m.changes,
		m.bootstrap, m.deviceReqs, m.httpReqs, m.httpLatency, m.unrouted, m.gcDeleted, m.gcRuns, &storeCollector{st: st, now: now},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// change counts one change-log record.
func (m *metrics) change(c store.Change) {
	m.changes.WithLabelValues(string(c.Kind)).Inc()
	switch c.Kind {
	case store.KindApproved:
		m.approvals.WithLabelValues(c.Scope.Channel, "approved").Inc()
	case store.KindApproveFailed:
		m.approvals.WithLabelValues(c.Scope.Channel, "not_found").Inc()
	case store.KindExpired:
		m.expired.Inc()
	case store.KindSetupIssued:
		// The role is the device role, node or operator: a bounded label.
		m.bootstrap.WithLabelValues(c.Data.Role).Inc()
	case store.KindDeviceRequested, store.KindDeviceApproved, store.KindDeviceRejected, store.KindDevicePaired:
		m.deviceReqs.WithLabelValues(strings.TrimPrefix(string(c.Kind), "device.")).Inc()
	}
}

// gc counts one garbage collection run.
func (m *metrics) gc(r store.GCResult, err error) {
	if err != nil {
		m.gcRuns.WithLabelValues("error").Inc()
		return
	}
	m.gcRuns.WithLabelValues("ok").Inc()
	for what, n := range map[string]int{"requests": r.Requests, "approvals": r.Approvals, "lockouts": r.Lockouts, "notices": r.Notices,
		"failures": r.Failures, "declines": r.Declines, "setup_tokens": r.SetupTokens, "device_requests": r.DeviceRequests,
		"web_sessions": r.WebSessions, "outbound": r.Outbound, "changes": r.Changes} {
		m.gcDeleted.WithLabelValues(what).Add(float64(n))
	}
}

func (m *metrics) approvalLockedOut(channel string) {
	m.approvals.WithLabelValues(channel, "locked_out").Inc()
}

// approvalAlready counts an approval of a request approved before: it
// changes nothing, so the change log has no record of it.
func (m *metrics) approvalAlready(channel string) {
	m.approvals.WithLabelValues(channel, "already_approved").Inc()
}

// decision counts one gate decision. Only known channels become label
// values, so a caller cannot grow the label set without bound.
func (m *metrics) decision(channel string, d api.Decision) {
	m.decisions.WithLabelValues(string(d.Verdict), string(d.Reason)).Inc()
	switch d.Reason {
	case api.ReasonAllowed:
		m.viewLookups.WithLabelValues("hit").Inc()
	case api.ReasonGroup, api.ReasonNotAllowed, api.ReasonLockedOut, api.ReasonDeclined,
		api.ReasonPending, api.ReasonMaxPending, api.ReasonChallenged:
		m.viewLookups.WithLabelValues("miss").Inc()
	}
	switch d.Reason {
	case api.ReasonChallenged, api.ReasonPending, api.ReasonMaxPending, api.ReasonLockedOut, api.ReasonDeclined:
		m.challenged.WithLabelValues(channel, string(d.Reason)).Inc()
	}
}

// routeMetrics holds one route's series, looked up once.
type routeMetrics struct {
	m       *metrics
	route   string
	latency prometheus.Observer
}

// forRoute looks up a route's series. A session route (a WebSocket) gets
// no latency series: its "latency" is how long the client stayed.
func (m *metrics) forRoute(route string, session bool) *routeMetrics {
	r := &routeMetrics{m: m, route: route}
	if !session {
		r.latency = m.httpLatency.WithLabelValues(route)
	}
	return r
}

func (r *routeMetrics) observe(status int, d time.Duration) {
	r.m.httpReqs.WithLabelValues(r.route, strconv.Itoa(status)).Inc()
	if r.latency != nil {
		r.latency.Observe(d.Seconds())
	}
}

// storeCollector reports pairing_requests_pending{channel} and
// pairgate_devices_paired by asking the store at scrape time, so the gauges
// are right whoever made the change and however requests expired.
type storeCollector struct {
	st  store.Store
	now func() time.Time
}

var pendingDesc = prometheus.NewDesc("pairing_requests_pending", "Live pending pairing requests by channel.", []string{"channel"}, nil)

func (p *storeCollector) Describe(ch chan<- *prometheus.Desc) { ch <- pendingDesc; ch <- devicesDesc }

func (p *storeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	reqs, err := p.st.ListRequests(ctx, store.RequestFilter{}, p.now())
	if err != nil {
		ch <- prometheus.NewInvalidMetric(pendingDesc, errors.New("the store is unavailable"))
		return
	}
	counts := map[string]int{}
	for _, name := range channel.Names() {
		counts[name] = 0
	}
	for _, r := range reqs {
		counts[r.Scope.Channel]++
	}
	for name, n := range counts {
		ch <- prometheus.MustNewConstMetric(pendingDesc, prometheus.GaugeValue, float64(n), name)
	}
	devices, err := p.st.ListDevices(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(devicesDesc, errors.New("the store is unavailable"))
		return
	}
	active := 0
	for _, d := range devices {
		if d.RevokedAt.IsZero() {
			active++
		}
	}
	ch <- prometheus.MustNewConstMetric(devicesDesc, prometheus.GaugeValue, float64(active))
}

var devicesDesc = prometheus.NewDesc("pairgate_devices_paired", "Paired devices that are not revoked.", nil, nil)
