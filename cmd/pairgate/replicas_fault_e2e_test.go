package main_test

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pairgate/pairgate/api"
	"github.com/pairgate/pairgate/internal/pgtest"
	"github.com/pairgate/pairgate/store"
	"github.com/pairgate/pairgate/store/postgres"
)

var killRounds = flag.Int("replica-kill-rounds", 50, "kill -9 rounds of TestReplicaKilledDuringApprovals")

// A replica killed with kill -9 in the middle of approvals loses nothing it
// acknowledged: every approval that answered 200 is on the allowlist, as
// another replica sees it.
func TestReplicaKilledDuringApprovals(t *testing.T) {
	rs := startReplicas(t, 1, "")
	rng := rand.New(rand.NewPCG(3, uint64(time.Now().UnixNano())))
	var acked, lost int
	for round := range *killRounds {
		account := fmt.Sprint("r", round)
		var codes []string
		for i := range 3 {
			body := fmt.Sprintf(`{"channel":"telegram","account":%q,"sender":"%d"}`, account, 9000+i)
			status, data := rs.call(0, "/v1/admit", body)
			if status != 200 || !strings.Contains(string(data), `"challenge"`) {
				t.Fatalf("round %d: challenge: %d %s", round, status, data)
			}
			codes = append(codes, string(data[strings.Index(string(data), `"code":"`)+8:][:8]))
		}
		victim := startServe(t, rs.home)
		var mu sync.Mutex
		var ok []string
		var wg sync.WaitGroup
		for i, code := range codes {
			wg.Go(func() {
				status, _, err := victim.do(rs.client, "POST", "/v1/pairing/approve", rs.admin,
					fmt.Sprintf(`{"channel":"telegram","account":%q,"code":%q}`, account, code))
				if err == nil && status == 200 {
					mu.Lock()
					ok = append(ok, fmt.Sprint(9000+i))
					mu.Unlock()
				}
			})
		}
		time.Sleep(time.Duration(rng.Int64N(int64(30 * time.Millisecond))))
		victim.cmd.Process.Signal(syscall.SIGKILL)
		wg.Wait()
		<-victim.exited
		acked += len(ok)
		for _, sender := range ok {
			status, data := rs.call(0, "/v1/admit", fmt.Sprintf(`{"channel":"telegram","account":%q,"sender":%q}`, account, sender))
			if status != 200 || !strings.Contains(string(data), `"verdict":"admit"`) {
				lost++
				t.Errorf("round %d: the approval of %s that the killed replica acknowledged is lost: %d %s", round, sender, status, data)
			}
		}
	}
	t.Logf("%d rounds of kill -9 during approvals: %d approvals acknowledged, %d lost", *killRounds, acked, lost)
	if acked == 0 {
		t.Error("no approval was acknowledged before a kill: the test proves nothing")
	}
}

// pgProxy stands between the replicas and PostgreSQL, and can cut them off
// (every connection dropped, new ones refused) and let them back.
type pgProxy struct {
	t      *testing.T
	addr   string // where the replicas connect
	target string
	mu     sync.Mutex
	ln     net.Listener
	conns  []net.Conn
}

func newPGProxy(t *testing.T, target string) *pgProxy {
	t.Helper()
	p := &pgProxy{t: t, target: target}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.cut)
	return p
}

func (p *pgProxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { io.Copy(up, c); up.Close() }()
			go func() { io.Copy(c, up); c.Close() }()
		}
	}()
}

// cut drops every connection and refuses new ones: PostgreSQL is gone, as
// far as the replicas can tell.
func (p *pgProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// restore listens again on the same address.
func (p *pgProxy) restore() {
	p.t.Helper()
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatal(err)
	}
	p.serve(ln)
}

// PostgreSQL unreachable: replicas admit the senders they know, drop the
// rest as unavailable, say /readyz 503 and refuse writes; a revocation made
// meanwhile (by a process that still reaches the database) is applied soon
// after they reach it again, with no restart. The garbage collection lease
// moves to another replica when its holder is killed.
func TestReplicasWhenPostgreSQLIsUnreachable(t *testing.T) {
	dsn := pgtest.DSN(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newPGProxy(t, u.Host)
	viaProxy := *u
	viaProxy.Host = proxy.addr
	home := t.TempDir()
	writeConfig(t, home, "pairing:\n  storage:\n    driver: postgres\n    dsn: \""+viaProxy.String()+"\"\n")
	rs := &replicaSet{t: t, home: home, client: &http.Client{Timeout: 5 * time.Second}}
	for range 2 {
		rs.procs = append(rs.procs, startServe(t, home))
	}
	rs.admin = rs.procs[0].adminToken()
	if status, data := rs.call(0, "/v1/pairing/allow", `{"channel":"telegram","sender":"111"}`); status != 200 {
		t.Fatalf("allow: %d %s", status, data)
	}
	rs.until("telegram", "111", api.Admit, 2*time.Second)

	direct, err := postgres.Open(context.Background(), postgres.Options{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()

	proxy.cut()
	for i := range rs.procs {
		if d := rs.admit(i, "telegram", "111"); d.Verdict != api.Admit {
			t.Errorf("replica %d, database cut off: a known sender gets %+v, want admit from memory", i, d)
		}
		if d := rs.admit(i, "telegram", "222"); d.Reason != api.ReasonUnavailable {
			t.Errorf("replica %d, database cut off: an unknown sender gets %+v, want drop unavailable", i, d)
		}
		if status, _, _ := rs.procs[i].do(rs.client, "GET", "/readyz", "", ""); status != 503 {
			t.Errorf("replica %d, database cut off: /readyz %d, want 503", i, status)
		}
		if status, _ := rs.call(i, "/v1/pairing/allow", `{"channel":"telegram","sender":"333"}`); status != 503 {
			t.Errorf("replica %d, database cut off: a write answers %d, want 503", i, status)
		}
	}
	if _, err := direct.Revoke(context.Background(), store.Scope{Channel: "telegram", Account: "default"}, "111",
		store.Actor{Name: "cli:test"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	proxy.restore()
	restored := time.Now()
	took := rs.until("telegram", "111", api.Drop, 5*time.Second)
	t.Logf("a revocation made while the replicas were cut off was applied by both %v after the database came back", took.Round(time.Millisecond))
	rs.waitReady(5 * time.Second)
	if took > 3*time.Second {
		t.Errorf("the revocation took %v after the database came back", time.Since(restored))
	}

	// The lease moves: kill the holder, the other takes the work over.
	holder := func() string {
		var h string
		db := pgtest.Open(t, dsn)
		db.QueryRow(`SELECT holder FROM leases WHERE name = 'gc' AND expires_at > $1`, time.Now().UnixMilli()).Scan(&h)
		return h
	}
	var h string
	for start := time.Now(); h == ""; time.Sleep(50 * time.Millisecond) {
		if h = holder(); h == "" && time.Since(start) > 15*time.Second {
			t.Fatal("no replica holds the gc lease")
		}
	}
	killed := -1
	for i, p := range rs.procs {
		if strings.Contains(h, fmt.Sprintf("/%d/", p.cmd.Process.Pid)) {
			killed = i
			p.cmd.Process.Signal(syscall.SIGKILL)
			<-p.exited
		}
	}
	if killed < 0 {
		t.Fatalf("the gc lease's holder %q is none of the replicas", h)
	}
	start := time.Now()
	for {
		if next := holder(); next != "" && next != h {
			t.Logf("the gc lease moved from a killed replica to another after %v", time.Since(start).Round(time.Millisecond))
			break
		}
		if time.Since(start) > 20*time.Second {
			t.Fatal("the gc lease did not move to the surviving replica within 20 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// PostgreSQL restarted with pg_ctlcluster in the middle of a run, then
// stopped and started again: every request is answered meanwhile (a known
// sender admitted from memory throughout); while it is down the replicas
// fail closed; they recover by themselves, the NOTIFY listener included.
// The cluster is the test's own, so the restart disturbs no other test.
func TestReplicasWhenPostgreSQLRestarts(t *testing.T) {
	cluster := pgtest.NewCluster(t)
	rs := startReplicasOn(t, 3, cluster.DSN(), "")
	if status, data := rs.call(0, "/v1/pairing/allow", `{"channel":"telegram","sender":"111"}`); status != 200 {
		t.Fatalf("allow: %d %s", status, data)
	}
	rs.until("telegram", "111", api.Admit, 2*time.Second)

	// A load on every replica while the server restarts.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	answers := map[string]int{}
	for i := range rs.procs {
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				sender := "111"
				if n%2 == 1 {
					sender = fmt.Sprintf("%d%04d", i+7, n)
				}
				status, data, err := rs.procs[i].do(rs.client, "POST", "/v1/admit", rs.admin, fmt.Sprintf(`{"channel":"telegram","sender":%q}`, sender))
				d, derr := strictDecision(data)
				mu.Lock()
				switch {
				case err != nil:
					t.Errorf("replica %d during the restart: no answer: %v", i, err)
				case status != 200 || derr != nil:
					t.Errorf("replica %d during the restart: %d %s", i, status, data)
				case sender == "111" && d.Verdict != api.Admit:
					t.Errorf("replica %d during the restart: the known sender got %+v", i, d)
				case sender != "111" && d.Verdict != api.Challenge && d.Reason != api.ReasonMaxPending && d.Reason != api.ReasonUnavailable:
					t.Errorf("replica %d during the restart: a new sender got %+v", i, d)
				}
				answers[string(d.Verdict)+" "+string(d.Reason)]++
				mu.Unlock()
				time.Sleep(2 * time.Millisecond)
			}
		})
	}
	time.Sleep(200 * time.Millisecond)
	began := time.Now()
	cluster.Ctl("restart")
	restarted := time.Now()
	rs.waitReady(10 * time.Second)
	t.Logf("pg_ctlcluster restart took %v; every replica was ready %v after it returned", restarted.Sub(began).Round(time.Millisecond), time.Since(restarted).Round(time.Millisecond))
	close(stop)
	wg.Wait()
	t.Logf("answers during the restart: %v", answers)
	for i := range rs.procs {
		rs.retryWrite(i, fmt.Sprintf(`{"channel":"telegram","sender":"44%d"}`, i), 10*time.Second)
	}

	// Down: fail closed.
	cluster.Ctl("stop")
	for i := range rs.procs {
		if d := rs.admit(i, "telegram", "111"); d.Verdict != api.Admit {
			t.Errorf("replica %d, database stopped: a known sender gets %+v, want admit from memory", i, d)
		}
		if d := rs.admit(i, "telegram", "222"); d.Reason != api.ReasonUnavailable {
			t.Errorf("replica %d, database stopped: an unknown sender gets %+v, want drop unavailable", i, d)
		}
		if status, _ := rs.call(i, "/v1/pairing/allow", `{"channel":"telegram","sender":"333"}`); status != 503 {
			t.Errorf("replica %d, database stopped: a write answers %d, want 503", i, status)
		}
		for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
			if status, _, _ := rs.procs[i].do(rs.client, "GET", "/readyz", "", ""); status == 503 {
				break
			}
			if time.Since(start) > 5*time.Second {
				t.Fatalf("replica %d: /readyz still green 5 s after the database stopped", i)
			}
		}
	}

	// Up again: writes work on every replica, and revocations reach them all
	// by NOTIFY again (well under the 500 ms fallback poll) once each has
	// its listener back, which the server itself shows.
	cluster.Ctl("start")
	started := time.Now()
	rs.waitReady(10 * time.Second)
	for i := range rs.procs {
		rs.retryWrite(i, fmt.Sprintf(`{"channel":"telegram","sender":"55%d"}`, i), 10*time.Second)
	}
	db := pgtest.Open(t, cluster.DSN())
	for start := time.Now(); ; time.Sleep(50 * time.Millisecond) {
		var n int
		db.QueryRow(`SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'LISTEN %'`).Scan(&n)
		if n == len(rs.procs) {
			break
		}
		if time.Since(start) > 10*time.Second { // the longest backoff is 5 s
			t.Fatalf("%d of %d replicas listen again 10 s after the database started", n, len(rs.procs))
		}
	}
	t.Logf("all replicas ready and listening %v after the database started", time.Since(started).Round(time.Millisecond))
	var took []time.Duration
	for k := range 20 {
		sender := fmt.Sprintf("66%02d", k)
		if status, data := rs.call(k%3, "/v1/pairing/allow", fmt.Sprintf(`{"channel":"telegram","sender":%q}`, sender)); status != 200 {
			t.Fatalf("allow after the restart: %d %s", status, data)
		}
		rs.until("telegram", sender, api.Admit, 2*time.Second)
		start := time.Now()
		if status, data := rs.call((k+1)%3, "/v1/pairing/revoke", fmt.Sprintf(`{"channel":"telegram","sender":%q}`, sender)); status != 200 {
			t.Fatalf("revoke after the restart: %d %s", status, data)
		}
		rs.until("telegram", sender, api.Drop, 2*time.Second)
		took = append(took, time.Since(start))
	}
	slices.Sort(took)
	t.Logf("revocations after the restart: p50 %v, max %v", took[len(took)/2].Round(time.Millisecond), took[len(took)-1].Round(time.Millisecond))
	if took[len(took)/2] > 100*time.Millisecond {
		t.Errorf("revocations take %v (p50) after the restart: the replicas are polling, not woken by NOTIFY", took[len(took)/2])
	}
}

// waitReady waits until every replica's /readyz is green.
func (rs *replicaSet) waitReady(limit time.Duration) {
	rs.t.Helper()
	for i := range rs.procs {
		for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
			if status, _, _ := rs.procs[i].do(rs.client, "GET", "/readyz", "", ""); status == 200 {
				break
			}
			if time.Since(start) > limit {
				rs.t.Fatalf("replica %d: /readyz not green within %v", i, limit)
			}
		}
	}
}

// retryWrite allows a sender on replica i, retrying a 503 until limit.
func (rs *replicaSet) retryWrite(i int, body string, limit time.Duration) {
	rs.t.Helper()
	for start := time.Now(); ; time.Sleep(50 * time.Millisecond) {
		status, data := rs.call(i, "/v1/pairing/allow", body)
		if status == 200 {
			return
		}
		if status != 503 || time.Since(start) > limit {
			rs.t.Fatalf("replica %d: a write answers %d %s after the database returned", i, status, data)
		}
	}
}
