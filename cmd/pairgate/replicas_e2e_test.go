package main_test

import (
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pairgate/pairgate/api"
	"github.com/pairgate/pairgate/internal/pgtest"
)

var revocationRounds = flag.Int("revocation-rounds", 200, "revocations measured per mode in TestReplicasRevocationPropagation")

// replicaSet is N `pairgate serve` processes on one PostgreSQL schema. They
// share one home (so one pairing secret, admin token and pairgate.yaml), as
// replicas on several machines share copies of them.
type replicaSet struct {
	t      *testing.T
	home   string
	admin  string
	procs  []*serveProc
	client *http.Client
}

func startReplicas(t *testing.T, n int, extra string) *replicaSet {
	t.Helper()
	return startReplicasOn(t, n, pgtest.DSN(t), extra)
}

// startReplicasOn is startReplicas on the database at dsn.
func startReplicasOn(t *testing.T, n int, dsn, extra string) *replicaSet {
	t.Helper()
	home := t.TempDir()
	writeConfig(t, home, "pairing:\n  storage:\n    driver: postgres\n    dsn: \""+dsn+"\"\n"+extra)
	rs := &replicaSet{t: t, home: home, client: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4}}}
	for range n {
		rs.procs = append(rs.procs, startServe(t, home))
	}
	rs.admin = rs.procs[0].adminToken()
	return rs
}

// call posts body to path on replica i with the admin token.
func (rs *replicaSet) call(i int, path, body string) (int, []byte) {
	rs.t.Helper()
	status, data, err := rs.procs[i].do(rs.client, "POST", path, rs.admin, body)
	if err != nil {
		rs.t.Fatalf("replica %d %s: %v", i, path, err)
	}
	return status, data
}

func (rs *replicaSet) admit(i int, channel, sender string) api.Decision {
	rs.t.Helper()
	status, data := rs.call(i, "/v1/admit", fmt.Sprintf(`{"channel":%q,"sender":%q}`, channel, sender))
	var d api.Decision
	if status != 200 || json.Unmarshal(data, &d) != nil {
		rs.t.Fatalf("replica %d admit %s: %d %s", i, sender, status, data)
	}
	return d
}

// until waits for every replica to give want for sender and returns how
// long the slowest took.
func (rs *replicaSet) until(channel, sender string, want api.Verdict, limit time.Duration) time.Duration {
	rs.t.Helper()
	start := time.Now()
	var slowest time.Duration
	for i := range rs.procs {
		for rs.admit(i, channel, sender).Verdict != want {
			if time.Since(start) > limit {
				rs.t.Fatalf("replica %d still does not answer %s for %s after %v", i, want, sender, limit)
			}
			time.Sleep(time.Millisecond)
		}
		slowest = max(slowest, time.Since(start))
	}
	return slowest
}

// An approval on one replica admits the sender on another; a revocation on
// a third is refused by all three, and measured over many rounds, with
// NOTIFY and with polling only.
func TestReplicasRevocationPropagation(t *testing.T) {
	for _, mode := range []struct{ name, config string }{
		{"notify", ""},
		{"poll-only", "    notify: false\n"},
	} {
		t.Run(mode.name, func(t *testing.T) {
			// discord only admits the allowlist: probing it writes nothing.
			rs := startReplicas(t, 3, mode.config+"  channels:\n    discord: {policy: allowlist}\n")
			d := rs.admit(1, "telegram", "123456789")
			if d.Verdict != api.Challenge {
				t.Fatalf("challenge on replica 2: %+v", d)
			}
			if status, data := rs.call(0, "/v1/pairing/approve", fmt.Sprintf(`{"channel":"telegram","code":%q}`, d.Code)); status != 200 {
				t.Fatalf("approve on replica 1: %d %s", status, data)
			}
			rs.until("telegram", "123456789", api.Admit, 2*time.Second)

			n := *revocationRounds
			senders := make([]string, n)
			for i := range senders {
				senders[i] = fmt.Sprint(100000000000000000 + i)
			}
			for _, s := range senders {
				if status, data := rs.call(0, "/v1/pairing/allow", fmt.Sprintf(`{"channel":"discord","sender":%q}`, s)); status != 200 {
					t.Fatalf("allow: %d %s", status, data)
				}
			}
			rs.until("discord", senders[n-1], api.Admit, 2*time.Second)
			var took []time.Duration
			for _, s := range senders {
				rs.until("discord", s, api.Admit, 2*time.Second)
				if status, data := rs.call(1, "/v1/pairing/revoke", fmt.Sprintf(`{"channel":"discord","sender":%q}`, s)); status != 200 {
					t.Fatalf("revoke on replica 2: %d %s", status, data)
				}
				took = append(took, rs.until("discord", s, api.Drop, 3*time.Second))
			}
			slices.Sort(took)
			p50, p99, worst := took[len(took)/2], took[len(took)*99/100], took[len(took)-1]
			t.Logf("%s: %d revocations, refused by all 3 replicas after p50 %v, p99 %v, max %v", mode.name, n,
				p50.Round(10*time.Microsecond), p99.Round(10*time.Microsecond), worst.Round(10*time.Microsecond))
			if p99 > time.Second {
				t.Errorf("%s: p99 %v until every replica refuses a revoked sender; want ≤ 1 s", mode.name, p99)
			}
		})
	}
}

// 8 OS processes, each a sender reaching one of three replicas of one
// scope at once: the cap holds and every code handed out is approvable; 8
// processes racing to approve one code across replicas: exactly one
// approves, the rest answer already approved.
func TestReplicasRaceChallengesAndApprovals(t *testing.T) {
	rs := startReplicas(t, 3, "")
	var reqs []racerRequest
	for p := range 8 {
		reqs = append(reqs, racerRequest{URL: rs.procs[p%3].url + "/v1/admit", Token: rs.admin, Body: fmt.Sprintf(`{"channel":"telegram","sender":"%d"}`, 5000+p)})
	}
	var codes []string
	for p, a := range race(t, reqs) {
		d, err := strictDecision([]byte(a.Body))
		switch {
		case a.Status != 200 || err != nil:
			t.Fatalf("sender %d: %d %s", p, a.Status, a.Body)
		case d.Verdict == api.Challenge:
			codes = append(codes, d.Code)
		case d.Reason != api.ReasonMaxPending:
			t.Errorf("sender %d: %+v", p, d)
		}
	}
	if len(codes) != 3 {
		t.Fatalf("%d codes handed out by 3 replicas with a cap of 3", len(codes))
	}
	for _, c := range codes[1:] {
		if status, data := rs.call(2, "/v1/pairing/approve", fmt.Sprintf(`{"channel":"telegram","code":%q}`, c)); status != 200 {
			t.Fatalf("a code handed out is not approvable: %d %s", status, data)
		}
	}
	reqs = reqs[:0]
	for p := range 8 {
		reqs = append(reqs, racerRequest{URL: rs.procs[p%3].url + "/v1/pairing/approve", Token: rs.admin, Body: fmt.Sprintf(`{"channel":"telegram","code":%q}`, codes[0])})
	}
	var approved, already int
	for p, a := range race(t, reqs) {
		switch {
		case a.Status == 200 && strings.Contains(a.Body, `"already":true`):
			already++
		case a.Status == 200:
			approved++
		default:
			t.Errorf("racing approval %d: %d %s", p, a.Status, a.Body)
		}
	}
	if approved != 1 || already != 7 {
		t.Errorf("8 racing approvals across replicas: %d approved, %d already; want 1 and 7", approved, already)
	}
}

// TestReplicasShareWebSessions: a browser signed in on one replica is
// signed in on all (sessions are rows in the database), and signing out on
// one, or revoking the token it signed in with, ends it on every replica.
func TestReplicasShareWebSessions(t *testing.T) {
	rs := startReplicas(t, 3, "")
	noRedirect := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	send := func(i int, method, path, cookie string, form url.Values) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, rs.procs[i].url+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		res, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	signIn := func(i int, token string) string {
		t.Helper()
		res := send(i, "POST", "/signin", "", url.Values{"token": {token}})
		if res.StatusCode != http.StatusSeeOther || len(res.Cookies()) != 1 {
			t.Fatalf("sign in on replica %d: %d, cookies %v", i, res.StatusCode, res.Cookies())
		}
		c := res.Cookies()[0]
		return c.Name + "=" + c.Value
	}
	signedIn := func(i int, cookie string) bool {
		t.Helper()
		return send(i, "GET", "/", cookie, nil).StatusCode == http.StatusOK
	}

	cookie := signIn(0, rs.admin)
	for i := range 3 {
		if !signedIn(i, cookie) {
			t.Fatalf("a session made on replica 0 is not signed in on replica %d", i)
		}
	}
	if res := send(2, "POST", "/signout", cookie, url.Values{}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign out on replica 2: %d", res.StatusCode)
	}
	for i := range 3 {
		if signedIn(i, cookie) {
			t.Errorf("replica %d still takes the session signed out on replica 2", i)
		}
	}

	var tok api.NewToken
	runJSON(t, rs.home, &tok, "tokens", "create", "--scope", "admin", "--name", "ops")
	cookie = signIn(1, tok.Token)
	if !signedIn(0, cookie) {
		t.Fatal("a session made with an API token on replica 1 is not signed in on replica 0")
	}
	if r := run(t, rs.home, "tokens", "revoke", tok.ID); r.code != 0 {
		t.Fatalf("tokens revoke: exit %d\n%s", r.code, r.stderr)
	}
	start := time.Now()
	for i := range 3 {
		for signedIn(i, cookie) {
			if time.Since(start) > 2*time.Second {
				t.Fatalf("replica %d still takes a session of a token revoked %v ago", i, time.Since(start))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	t.Logf("every replica refused the session of a revoked token %v after the revoke", time.Since(start).Round(time.Millisecond))
}
