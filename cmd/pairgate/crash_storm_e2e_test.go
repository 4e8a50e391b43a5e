package main_test

// TestKillStorm is the crash proof of pairgate in go test: `pairgate serve`
// killed with SIGKILL at random moments while clients approve, allow, revoke
// and pair devices at once, on SQLite and on PostgreSQL, and PostgreSQL
// itself restarted under a running daemon. What it proves, after every
// restart: every change a client was told about (HTTP 2xx with a well-formed
// answer, or a device token in a companion's hands) is in the store; no
// request is half-approved (a sender allowed and still pending, a device
// paired and still pending); and, on SQLite, the file passes PRAGMA
// integrity_check after every kill.
//
// An operation in flight at a kill may or may not have happened, so the
// checks speak only of acknowledged operations: each sender and each device
// belongs to one worker at a time, nothing is sent about a sender or a
// device after an operation on it that was not acknowledged, and such a
// sender may be found in the state before that operation or the state after
// it, nothing else.

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	_ "modernc.org/sqlite" // database/sql driver "sqlite", for the integrity check

	"github.com/pairgate/pairgate/api"
	"github.com/pairgate/pairgate/device/companion"
	"github.com/pairgate/pairgate/internal/pgtest"
)

var (
	stormRounds     = flag.Int("storm-rounds", 50, "kill -9 rounds of TestKillStorm/sqlite and TestKillStorm/postgres")
	stormPGRestarts = flag.Int("storm-pg-restarts", 4, "PostgreSQL restarts of TestKillStorm/postgres-restarted")
	stormSeed       = flag.Uint64("storm-seed", 0, "seed of TestKillStorm's random choices (0: from the clock); every run logs the seed it used")
)

func TestKillStorm(t *testing.T) {
	if testing.Short() {
		t.Skip("kill -9 storm")
	}
	seed := *stormSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	// The seed fixes the kill delays and the workers' choices; the timing of
	// the daemon and the clients varies from run to run all the same.
	t.Logf("seed %d (replay its kill delays and choices with -storm-seed %d)", seed, seed)
	t.Run("sqlite", func(t *testing.T) {
		newStorm(t, seed, "").killRounds(*stormRounds)
	})
	t.Run("postgres", func(t *testing.T) {
		newStorm(t, seed, pgtest.DSN(t)).killRounds(*stormRounds)
	})
	t.Run("postgres-restarted", func(t *testing.T) {
		// A cluster of the test's own: restarting it disturbs no other test.
		cluster := pgtest.NewCluster(t)
		newStorm(t, seed, cluster.DSN()).pgRestarts(cluster, *stormPGRestarts)
	})
}

// The kinds of acknowledged operations the summary counts.
const (
	ackChallenge  = "challenge"      // POST /v1/admit answered a challenge: a pending request
	ackApprove    = "approve"        // POST /v1/pairing/approve
	ackAllow      = "allow"          // POST /v1/pairing/allow
	ackRevoke     = "revoke"         // POST /v1/pairing/revoke
	ackSetupCode  = "setup-code"     // POST /v1/setup-codes
	ackDevRequest = "device-request" // a companion's request, seen pending by GET /v1/devices
	ackDevApprove = "device-approve" // POST /v1/devices/requests/{id}/approve
	ackDevPaired  = "device-paired"  // the companion received its device token
	ackDevAuth    = "device-auth"    // the token authenticates after the last restart
)

var stormKinds = []string{ackChallenge, ackApprove, ackAllow, ackRevoke, ackSetupCode, ackDevRequest, ackDevApprove, ackDevPaired, ackDevAuth}

// stormState is where a sender stands in the store.
type stormState uint8

const (
	stormNone    stormState = iota // no trace
	stormPending                   // a pending request
	stormAllowed                   // an active allow entry
	stormRevoked                   // a revoked allow entry
)

func (s stormState) String() string {
	return [...]string{"nothing", "pending", "allowed", "revoked"}[s]
}

// stormSender is what the test knows of one sender: the state its last
// acknowledged operation left, and, when an operation sent after that was
// not acknowledged, the state that operation leaves if it happened.
type stormSender struct {
	acked     stormState
	requestID string // the acknowledged challenge's request, while pending
	code      string
	ackedBy   string // the operation, for messages
	round     int
	inDoubt   bool
	maybe     stormState
	doubtOp   string
	broken    bool // already reported as lost
}

// accepts says whether got (with the sender's pending request ids) is a
// state the sender may be in.
func (r stormSender) accepts(got stormState, requestIDs []string) bool {
	if got == r.acked && (got != stormPending || slices.Contains(requestIDs, r.requestID)) {
		return true
	}
	return r.inDoubt && got == r.maybe
}

// stormDevState is how far a device's pairing has come, acknowledged.
type stormDevState uint8

const (
	stormDevSetup     stormDevState = iota // its setup code was issued
	stormDevRequested                      // its request was seen pending
	stormDevApproved                       // the approval was acknowledged
	stormDevPaired                         // the companion holds its device token
)

func (s stormDevState) String() string {
	return [...]string{"setup code issued", "request pending", "approved", "paired"}[s]
}

// stormDevice is one companion's pairing. inDoubt means the step after
// state was sent without an acknowledgement: the pair message (state
// stormDevSetup) or the approval (stormDevRequested).
type stormDevice struct {
	n         int
	id        string // device id, from its key
	key       ed25519.PrivateKey
	keyFile   string
	setupCode string
	request   string
	state     stormDevState
	inDoubt   bool
	round     int // of the last acknowledged step
	startAt   int // the companion starts in this round or later
	started   bool
	running   bool
	canceled  bool // by the test, at the end
	orphan    bool // its companion lost the connection before it was told it is pending: nobody will take the token
	tokenLost bool // delivered on a socket a kill cut: paired, but the companion has no token
	broken    bool
	cancel    context.CancelFunc
	done      chan struct{}
	dial      companion.Dialer
	creds     companion.Credentials
	out       *serveBuf
}

// stormLedger records what was acknowledged. Pools hold senders whose last
// operation was acknowledged and that no worker holds: an acknowledged
// challenge waiting for its approval, an allowed sender to revoke, a revoked
// one to allow again.
type stormLedger struct {
	t       *testing.T
	mu      sync.Mutex
	next    int
	senders map[string]*stormSender
	pending []string
	allowed []string
	revoked []string
	devices []*stormDevice
	acks    map[string]int
	unknown int // operations whose outcome is unknown: in flight at a kill, or answered 5xx
	gone    int // of which no answer at all: in flight when the daemon died
	lastAck time.Time
	maxGap  time.Duration // the longest time without an acknowledgement, since resetGap
	lost    int
	half    int
}

func (l *stormLedger) newSender(round int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.next++
	s := fmt.Sprint(7_000_000_000 + l.next)
	l.senders[s] = &stormSender{round: round}
	return s
}

func (l *stormLedger) begin(sender, op string, maybe stormState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.senders[sender]
	r.inDoubt, r.maybe, r.doubtOp = true, maybe, op
}

// ack records an acknowledged operation and, unless the worker holds on to
// the sender, puts it in the pool of its new state.
func (l *stormLedger) ack(sender, kind string, state stormState, requestID, code string, round int, hold bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.senders[sender]
	r.acked, r.requestID, r.code, r.ackedBy, r.round = state, requestID, code, kind, round
	r.inDoubt = false
	l.acks[kind]++
	l.gap()
	if hold {
		return
	}
	switch state {
	case stormPending:
		l.pending = append(l.pending, sender)
	case stormAllowed:
		l.allowed = append(l.allowed, sender)
	case stormRevoked:
		l.revoked = append(l.revoked, sender)
	}
}

// gap notes an acknowledgement's time; l.mu is held.
func (l *stormLedger) gap() {
	now := time.Now()
	if !l.lastAck.IsZero() {
		l.maxGap = max(l.maxGap, now.Sub(l.lastAck))
	}
	l.lastAck = now
}

func (l *stormLedger) resetGap() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	g := l.maxGap
	l.maxGap, l.lastAck = 0, time.Time{}
	return g
}

// doubt counts an operation whose outcome is unknown. Its sender stays in
// doubt (begin marked it) for good: no worker touches it again.
func (l *stormLedger) doubt(o stormOutcome) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.unknown++
	if o == stormGone {
		l.gone++
	}
}

// refused: the store refused an operation its acknowledged state allows,
// so that state is lost.
func (l *stormLedger) refused(sender, op, why string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.senders[sender]
	l.lost++
	r.broken = true
	if r.ackedBy == "" {
		l.t.Errorf("sender %s, new: %s refused: %s", sender, op, why)
		return
	}
	l.t.Errorf("sender %s: %s after an acknowledged %s (round %d) was refused: %s: the acknowledged state is lost", sender, op, r.ackedBy, r.round, why)
}

// take removes a random sender from a pool.
func (l *stormLedger) take(pool *[]string, rng *rand.Rand) (string, stormSender, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(*pool) == 0 {
		return "", stormSender{}, false
	}
	i := rng.IntN(len(*pool))
	s := (*pool)[i]
	(*pool)[i] = (*pool)[len(*pool)-1]
	*pool = (*pool)[:len(*pool)-1]
	return s, *l.senders[s], true
}

func (l *stormLedger) totalAcks() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, v := range l.acks {
		n += v
	}
	return n
}

func (l *stormLedger) ackCounts() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]int{}
	for k, v := range l.acks {
		out[k] = v
	}
	return out
}

// stormSnapshot is a copy of the ledger, taken before the store is read.
// Senders do not move while the store is read (the workers are stopped);
// devices may, as companions resume, but only forward: the store must show
// at least the snapshot.
type stormSnapshot struct {
	senders map[string]stormSender
	devices []stormDevice
}

func (l *stormLedger) snapshot() stormSnapshot {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := stormSnapshot{senders: make(map[string]stormSender, len(l.senders))}
	for k, v := range l.senders {
		s.senders[k] = *v
	}
	for _, d := range l.devices {
		s.devices = append(s.devices, *d)
	}
	return s
}

// stormGate is open while a daemon is up: companions dial only then, so a
// companion waiting for its approval resumes as soon as the next daemon
// listens, not after a backoff grown while it was down.
type stormGate struct {
	mu   sync.Mutex
	open chan struct{}
}

func (g *stormGate) up() {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.open:
	default:
		close(g.open)
	}
}

func (g *stormGate) down() {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.open:
		g.open = make(chan struct{})
	default:
	}
}

func (g *stormGate) wait(ctx context.Context) error {
	g.mu.Lock()
	ch := g.open
	g.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// storm is one subtest: a home, the daemons started on it, the ledger.
type storm struct {
	t               *testing.T
	seed            uint64
	rng             *rand.Rand
	home, addr, dsn string
	pairURL         string
	gw, admin       string
	gate            *stormGate
	led             *stormLedger
	ctx             context.Context // of the companions
	cancel          context.CancelFunc
	began           time.Time
	rounds, empty   int
	integrityRuns   int // PRAGMA integrity_check runs, and of them the failed ones
	integrityBad    int
	lastLog         *serveProc // the daemon that ran last, for its log when a check fails
}

func newStorm(t *testing.T, seed uint64, dsn string) *storm {
	h := fnv.New64a()
	h.Write([]byte(t.Name()))
	s := &storm{t: t, seed: seed, rng: rand.New(rand.NewPCG(seed, h.Sum64())), home: t.TempDir(), dsn: dsn,
		gate: &stormGate{open: make(chan struct{})}, began: time.Now(),
		led: &stormLedger{t: t, senders: map[string]*stormSender{}, acks: map[string]int{}}}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	t.Cleanup(s.cancel)
	// One address for every daemon of the subtest, so a setup code issued
	// before a kill, and a companion waiting across one, work after it.
	s.addr = serveFreeAddr(t)
	s.pairURL = "ws://" + s.addr + "/pair"
	cfg := "pairing:\n"
	if dsn != "" {
		cfg += "  storage:\n    driver: postgres\n    dsn: \"" + dsn + "\"\n"
	}
	// A cap that never refuses: acknowledged challenges pile up pending.
	cfg += "  public_url: " + s.pairURL + "\n  limits:\n    max_pending: 1000000\n"
	writeConfig(t, s.home, cfg)
	var gw mintedToken
	runJSON(t, s.home, &gw, "tokens", "create", "--scope", "gateway", "--name", "storm")
	s.gw = gw.Token
	return s
}

// start starts a daemon on the subtest's address.
func (s *storm) start() *serveProc {
	s.t.Helper()
	d := startServeOn(s.t, s.home, s.addr)
	s.lastLog = d
	if s.admin == "" {
		s.admin = d.adminToken()
	}
	s.gate.up()
	return d
}

func stormClient() (*http.Client, *http.Transport) {
	tr := &http.Transport{MaxIdleConnsPerHost: 16}
	return &http.Client{Transport: tr, Timeout: 5 * time.Second}, tr
}

// killRounds: each round starts the daemon, checks the store through it,
// lets the workers run for 20-120 ms, kills the daemon with SIGKILL, and (on
// SQLite) checks the file's integrity while nothing has it open.
func (s *storm) killRounds(rounds int) {
	t := s.t
	for round := range rounds {
		d := s.start()
		client, tr := stormClient()
		if round > 0 {
			snap := s.led.snapshot()
			s.check(fmt.Sprintf("round %d, after the restart", round), snap, s.viewAPI(d, client), false)
		}
		before := s.led.totalAcks()
		stop := make(chan struct{})
		wg := s.workers(d, client, stop, round, false)
		time.Sleep(20*time.Millisecond + time.Duration(s.rng.Int64N(int64(100*time.Millisecond))))
		s.gate.down()
		d.cmd.Process.Signal(syscall.SIGKILL)
		<-d.exited
		close(stop)
		wg.Wait()
		tr.CloseIdleConnections()
		s.rounds++
		if s.led.totalAcks() == before {
			s.empty++
		}
		s.integrity(fmt.Sprintf("round %d, after kill -9", round))
		if t.Failed() {
			t.Logf("stopping after round %d; the killed daemon's log (tail):\n%s", round, serveTail(d.stderr.String(), 30))
			break
		}
	}
	s.led.mu.Lock()
	inFlightAtKills := s.led.gone
	s.led.mu.Unlock()
	d := s.start()
	s.finish(d, fmt.Sprintf("%d rounds of kill -9, %d requests in flight at the kills", s.rounds, inFlightAtKills))
	if inFlightAtKills == 0 && s.rounds >= 10 {
		t.Errorf("no operation was in flight at any of %d kills: the kills did not land during writes", s.rounds)
	}
}

// pgRestarts: one daemon throughout; PostgreSQL restarted (or stopped and
// started after a pause) at a random moment while the workers write. The
// daemon must be ready again, and acknowledge writes of every kind, within
// 15 s of the database's return, and lose nothing it acknowledged.
func (s *storm) pgRestarts(cluster *pgtest.Cluster, restarts int) {
	t := s.t
	d := s.start()
	client, tr := stormClient()
	defer tr.CloseIdleConnections()
	var took []string
	for round := range restarts {
		stop := make(chan struct{})
		s.led.resetGap()
		wg := s.workers(d, client, stop, round, true)
		time.Sleep(50*time.Millisecond + time.Duration(s.rng.Int64N(int64(250*time.Millisecond))))
		before := s.led.ackCounts()
		how := "restart"
		began := time.Now()
		if round%2 == 0 {
			cluster.Ctl("restart")
		} else {
			how = "stop, start"
			cluster.Ctl("stop")
			time.Sleep(100*time.Millisecond + time.Duration(s.rng.Int64N(int64(300*time.Millisecond))))
			cluster.Ctl("start")
		}
		back := time.Now()
		ready := s.waitReady(d, client, 15*time.Second)
		// Carrying on means acknowledging new writes, not only a green /readyz.
		var missing []string
		for deadline := back.Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			now := s.led.ackCounts()
			missing = missing[:0]
			for _, k := range []string{ackChallenge, ackApprove, ackAllow, ackRevoke} {
				if now[k] <= before[k] {
					missing = append(missing, k)
				}
			}
			if len(missing) == 0 || time.Now().After(deadline) {
				break
			}
		}
		carried := time.Since(back)
		close(stop)
		wg.Wait()
		s.rounds++
		took = append(took, fmt.Sprintf("%s took %v (no write acknowledged for %v), then ready after %v, every kind acknowledged after %v",
			how, back.Sub(began).Round(time.Millisecond), s.led.resetGap().Round(time.Millisecond), ready.Round(time.Millisecond), carried.Round(time.Millisecond)))
		if len(missing) > 0 {
			t.Errorf("restart %d (%s): no acknowledged %v within 15 s of PostgreSQL's return: the daemon did not carry on\ndaemon log (tail):\n%s",
				round, how, missing, serveTail(d.stderr.String(), 30))
		}
		snap := s.led.snapshot()
		s.check(fmt.Sprintf("restart %d (%s), after it", round, how), snap, s.viewAPI(d, client), false)
		if t.Failed() {
			break
		}
	}
	t.Logf("PostgreSQL restarts under the running daemon: %s", strings.Join(took, "; "))
	s.finish(d, fmt.Sprintf("%d PostgreSQL restarts under one daemon", s.rounds))
}

// waitReady waits until /readyz is green and says how long it took.
func (s *storm) waitReady(d *serveProc, client *http.Client, limit time.Duration) time.Duration {
	s.t.Helper()
	start := time.Now()
	for {
		if status, _, err := d.do(client, "GET", "/readyz", "", ""); err == nil && status == 200 {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			s.t.Fatalf("/readyz not green within %v of PostgreSQL's return\ndaemon log (tail):\n%s", limit, serveTail(d.stderr.String(), 30))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// finish ends a subtest on the running daemon d: the companions whose
// approval was acknowledged must get their device tokens, every token must
// authenticate; then the daemon is stopped and another process (the CLI)
// checks the store; the summary is logged and a run that acknowledged too
// little to prove anything fails.
func (s *storm) finish(d *serveProc, what string) {
	t := s.t
	client, tr := stormClient()
	defer tr.CloseIdleConnections()
	snap := s.led.snapshot()
	s.check("after the last restart", snap, s.viewAPI(d, client), false)

	// A companion whose approval was acknowledged resumes and takes its
	// token from this daemon; the others are stopped.
	s.led.mu.Lock()
	var waitFor []*stormDevice
	for _, dv := range s.led.devices {
		if dv.running && dv.state == stormDevApproved {
			waitFor = append(waitFor, dv)
		}
	}
	s.led.mu.Unlock()
	waitCtx, cancelWait := context.WithTimeout(s.ctx, 30*time.Second)
	defer cancelWait()
	for _, dv := range waitFor {
		select {
		case <-dv.done:
		case <-waitCtx.Done():
			t.Errorf("device %d (%s): its approval was acknowledged (round %d), and 30 s after the last restart its companion still has no device token\ncompanion:\n%s",
				dv.n, dv.id, dv.round, dv.out)
		}
	}
	s.led.mu.Lock()
	var all []*stormDevice
	for _, dv := range s.led.devices {
		if dv.started {
			if dv.running {
				dv.canceled = true
				dv.cancel()
			}
			all = append(all, dv)
		}
	}
	s.led.mu.Unlock()
	stopCtx, cancelStop := context.WithTimeout(s.ctx, 10*time.Second)
	defer cancelStop()
	for _, dv := range all {
		select {
		case <-dv.done:
		case <-stopCtx.Done():
			t.Fatalf("device %d: its companion did not stop within 10 s of being cancelled", dv.n)
		}
	}

	// Every device token a companion holds works after the kills.
	for _, dv := range s.led.snapshot().devices {
		if dv.state != stormDevPaired || dv.broken {
			continue
		}
		ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
		role, _, err := companion.Auth(ctx, dv.creds.URL, dv.key, dv.id, dv.creds.DeviceToken, dv.dial)
		cancel()
		if err != nil || role != "node" {
			s.led.mu.Lock()
			s.led.lost++
			s.led.mu.Unlock()
			t.Errorf("device %d (%s): paired in round %d, its token does not authenticate after the last restart: role %q, %v", dv.n, dv.id, dv.round, role, err)
			continue
		}
		s.led.mu.Lock()
		s.led.acks[ackDevAuth]++
		s.led.mu.Unlock()
	}

	if code, _ := d.stop(10 * time.Second); code != 0 {
		t.Errorf("serve exited %d after SIGTERM\nstderr (tail):\n%s", code, serveTail(d.stderr.String(), 20))
	}
	s.integrity("after the last daemon stopped")
	s.check("by the CLI, with the daemon stopped", s.led.snapshot(), s.viewCLI(), true)

	acks := s.led.ackCounts()
	var parts []string
	for _, k := range stormKinds {
		parts = append(parts, fmt.Sprintf("%s %d", k, acks[k]))
	}
	s.led.mu.Lock()
	lost, half, unknown := s.led.lost, s.led.half, s.led.unknown
	var orphans, tokenLost int
	for _, dv := range s.led.devices {
		if dv.orphan {
			orphans++
		}
		if dv.tokenLost {
			tokenLost++
		}
	}
	s.led.mu.Unlock()
	integrity := ""
	if s.dsn == "" {
		integrity = fmt.Sprintf("; PRAGMA integrity_check ok %d times of %d", s.integrityRuns-s.integrityBad, s.integrityRuns)
	}
	t.Logf("%s (%d acknowledged nothing), seed %d, %v: acknowledged %s; %d operations of unknown outcome; devices: %d tokens lost with a killed socket, %d companions cut off before pending; lost %d, half-approved %d%s",
		what, s.empty, s.seed, time.Since(s.began).Round(100*time.Millisecond), strings.Join(parts, ", "), unknown, tokenLost, orphans, lost, half, integrity)

	// Too few of a kind and the test proves nothing about that kind.
	// The floors are a quarter or less of what a run acknowledges here
	// (PostgreSQL, the slower engine, under -race on 2 cores).
	least := map[string]int{ackChallenge: s.rounds / 2, ackApprove: s.rounds / 4, ackAllow: s.rounds, ackRevoke: s.rounds / 4,
		ackSetupCode: s.rounds / 4, ackDevApprove: s.rounds / 10, ackDevPaired: s.rounds / 10, ackDevAuth: s.rounds / 10}
	for _, k := range stormKinds {
		if n, ok := least[k]; ok && acks[k] < max(n, 1) {
			t.Errorf("only %d %s acknowledged in %d rounds (want at least %d): the storm proves little about it", acks[k], k, s.rounds, max(n, 1))
		}
	}
	if s.empty*2 > s.rounds {
		t.Errorf("%d of %d rounds acknowledged nothing before the kill", s.empty, s.rounds)
	}
}

// integrity runs PRAGMA integrity_check on the SQLite file, read-only, on a
// connection of its own, while no daemon has it open.
func (s *storm) integrity(when string) {
	if s.dsn != "" {
		return
	}
	path := filepath.Join(s.home, "pairgate.db")
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		s.t.Fatalf("%s: open %s read-only: %v", when, path, err)
	}
	defer db.Close()
	rows, err := db.Query(`PRAGMA integrity_check`)
	if err != nil {
		s.t.Fatalf("%s: PRAGMA integrity_check on %s: %v", when, path, err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			s.t.Fatalf("%s: PRAGMA integrity_check: %v", when, err)
		}
		got = append(got, line)
	}
	if err := rows.Err(); err != nil {
		s.t.Fatalf("%s: PRAGMA integrity_check: %v", when, err)
	}
	s.integrityRuns++
	if len(got) != 1 || got[0] != "ok" {
		s.integrityBad++
		s.t.Errorf("%s: PRAGMA integrity_check on %s: %q, want ok", when, path, got)
	}
}

// stormView is the store's content as one reader saw it.
type stormView struct {
	pending api.PendingList
	allowed api.AllowedList // revoked entries included
	devices api.DeviceList
}

// viewAPI reads the store through the daemon.
func (s *storm) viewAPI(d *serveProc, client *http.Client) stormView {
	s.t.Helper()
	var v stormView
	for path, out := range map[string]any{"/v1/pairing/requests": &v.pending, "/v1/pairing/allowed?include_revoked=true": &v.allowed, "/v1/devices": &v.devices} {
		status, data, err := d.do(client, "GET", path, s.admin, "")
		if err != nil || status != 200 {
			s.t.Fatalf("GET %s: %d %s %v\ndaemon log (tail):\n%s", path, status, data, err, serveTail(d.stderr.String(), 30))
		}
		if err := devStrict(data, out); err != nil {
			s.t.Fatalf("GET %s: %v: %s", path, err, data)
		}
	}
	return v
}

// viewCLI reads the store with the CLI: another process, on the store
// directly.
func (s *storm) viewCLI() stormView {
	var v stormView
	runJSON(s.t, s.home, &v.pending, "pairing", "list")
	runJSON(s.t, s.home, &v.allowed, "pairing", "allowed", "--include-revoked")
	runJSON(s.t, s.home, &v.devices, "devices", "list")
	return v
}

// check compares the store as v shows it with snap, a snapshot of the
// ledger taken before v was read (companions may move on meanwhile: the
// store must show at least what was acknowledged before it was read), and
// counts what is lost and what is half-approved. final: every companion has
// finished.
func (s *storm) check(when string, snap stormSnapshot, v stormView, final bool) {
	t := s.t
	var msgs []string
	report := func(format string, args ...any) {
		msgs = append(msgs, fmt.Sprintf(format, args...))
	}
	var lost, half int

	pending := map[string][]string{} // sender → its pending request ids
	for _, p := range v.pending.Pending {
		if p.Channel != "telegram" || p.Account != "default" {
			report("a pending request nobody made: %+v", p)
			continue
		}
		pending[p.Sender] = append(pending[p.Sender], p.RequestID)
	}
	allowed := map[string]api.AllowedSender{}
	for _, a := range v.allowed.Allowed {
		if a.Channel != "telegram" || a.Account != "default" {
			report("an allow entry nobody made: %+v", a)
			continue
		}
		if _, dup := allowed[a.Sender]; dup {
			report("sender %s has two allow entries", a.Sender)
		}
		allowed[a.Sender] = a
	}
	for sender, ids := range pending {
		if a, ok := allowed[sender]; ok && a.RevokedAt == nil {
			half++
			report("sender %s is allowed (%s) and still pending (%v): half-approved", sender, a.Via, ids)
		}
		if len(ids) > 1 {
			report("sender %s has %d pending requests: %v", sender, len(ids), ids)
		}
		if _, ok := snap.senders[sender]; !ok {
			report("a pending request for %s, a sender nobody wrote as", sender)
		}
	}
	for sender := range allowed {
		if _, ok := snap.senders[sender]; !ok {
			report("an allow entry for %s, a sender nobody allowed", sender)
		}
	}
	for sender, r := range snap.senders {
		if r.broken {
			continue
		}
		got := stormNone
		if a, ok := allowed[sender]; ok {
			got = stormRevoked
			if a.RevokedAt == nil {
				got = stormAllowed
			}
		}
		if len(pending[sender]) > 0 && got != stormAllowed {
			got = stormPending
		}
		if r.accepts(got, pending[sender]) {
			continue
		}
		lost++
		doubt := ""
		if r.inDoubt {
			doubt = fmt.Sprintf(" (then a %s, not acknowledged, that would leave it %s)", r.doubtOp, r.maybe)
		}
		want := r.acked.String()
		if r.acked == stormPending {
			want += " as " + r.requestID
		}
		report("sender %s: acknowledged %s in round %d left it %s%s; found %s %v", sender, r.ackedBy, r.round, want, doubt, got, pending[sender])
	}

	// Devices.
	listed := map[string]api.Device{}
	for _, d := range v.devices.Devices {
		listed[d.DeviceID] = d
	}
	requested := map[string]api.DeviceRequest{} // by device id
	for _, r := range v.devices.Requests {
		if _, ok := listed[r.DeviceID]; ok {
			half++
			report("device %s is paired and its request %s still pending: half-approved", r.DeviceID, r.RequestID)
		}
		requested[r.DeviceID] = r
	}
	known := map[string]bool{}
	for _, dv := range snap.devices {
		known[dv.id] = true
		if dv.broken {
			continue
		}
		dev, isListed := listed[dv.id]
		req, isPending := requested[dv.id]
		bad := ""
		switch dv.state {
		case stormDevPaired:
			if !isListed || dev.RevokedAt != nil || isPending {
				bad = "not an active paired device"
			}
		case stormDevApproved:
			switch {
			case isPending:
				bad = "still pending"
			case dv.orphan && isListed:
				bad = "paired, though no companion was there to take the token"
			case final && !dv.orphan && !isListed:
				bad = "not a paired device once its companion resumed"
			}
		case stormDevRequested:
			if !dv.inDoubt && (!isPending || req.RequestID != dv.request) {
				bad = "no longer pending, and nobody approved it"
			}
		case stormDevSetup:
			if !dv.inDoubt && (isListed || isPending) {
				bad = "known to the store, though its companion never connected"
			}
		}
		if bad != "" {
			lost++
			report("device %d (%s): acknowledged %s (request %s) in round %d: %s (listed %t, pending %t)", dv.n, dv.id, dv.state, dv.request, dv.round, bad, isListed, isPending)
		}
	}
	for id := range listed {
		if !known[id] {
			report("a paired device nobody paired: %s", id)
		}
	}
	for id := range requested {
		if !known[id] {
			report("a device request nobody made: %s", id)
		}
	}

	if len(msgs) > 0 {
		if len(msgs) > 20 {
			msgs = append(msgs[:20], fmt.Sprintf("… and %d more", len(msgs)-20))
		}
		log := ""
		if s.lastLog != nil {
			log = "\nthe last daemon's log (tail):\n" + serveTail(s.lastLog.stderr.String(), 30)
		}
		t.Errorf("%s (seed %d): %d lost, %d half-approved:\n%s%s", when, s.seed, lost, half, strings.Join(msgs, "\n"), log)
	}
	s.led.mu.Lock()
	s.led.lost += lost
	s.led.half += half
	s.led.mu.Unlock()
}

// stormOutcome is what became of one request.
type stormOutcome uint8

const (
	stormAcked   stormOutcome = iota // 200 with a well-formed answer
	stormRefused                     // a 4xx: it did not happen
	stormUnknown                     // a 5xx, or an answer that does not say it happened: it may have
	stormGone                        // no answer: the daemon was killed (it may have happened)
)

// stormWorker is one client of one round.
type stormWorker struct {
	s          *storm
	d          *serveProc
	client     *http.Client
	stop       <-chan struct{}
	rng        *rand.Rand
	round      int
	persistent bool // PostgreSQL restarts: carry on after failures (the daemon stays up)
}

// workers starts the round's clients: two approvers, an allower, a revoker
// and a device operator, each with its own random source.
func (s *storm) workers(d *serveProc, client *http.Client, stop <-chan struct{}, round int, persistent bool) *sync.WaitGroup {
	var wg sync.WaitGroup
	for i, run := range []func(*stormWorker){(*stormWorker).approvals, (*stormWorker).approvals, (*stormWorker).allows, (*stormWorker).revokes, (*stormWorker).devices} {
		w := &stormWorker{s: s, d: d, client: client, stop: stop, round: round, persistent: persistent,
			rng: rand.New(rand.NewPCG(s.rng.Uint64(), uint64(i)))}
		wg.Go(func() { run(w) })
	}
	return &wg
}

func (w *stormWorker) stopped() bool {
	select {
	case <-w.stop:
		return true
	default:
		return false
	}
}

// carryOn is what a worker does after a request that was not acknowledged:
// when the daemon is gone, stop; when it answered (PostgreSQL is down),
// pause and go on.
func (w *stormWorker) carryOn(o stormOutcome) bool {
	if o == stormGone && !w.persistent {
		return false
	}
	select {
	case <-w.stop:
		return false
	case <-time.After(5 * time.Millisecond):
		return true
	}
}

// call sends one request; on a 200 it decodes the answer into out (when out
// is not nil).
func (w *stormWorker) call(method, path, token, body string, out any) (stormOutcome, []byte, string) {
	status, data, err := w.d.do(w.client, method, path, token, body)
	switch {
	case err != nil:
		return stormGone, data, err.Error()
	case status >= 400 && status < 500:
		return stormRefused, data, fmt.Sprintf("%d %s", status, strings.TrimSpace(string(data)))
	case status != 200:
		return stormUnknown, data, fmt.Sprintf("%d %s", status, strings.TrimSpace(string(data)))
	}
	if out != nil {
		if err := devStrict(data, out); err != nil {
			w.s.t.Errorf("%s %s answered 200 with a malformed body: %v: %q", method, path, err, data)
			return stormUnknown, data, err.Error()
		}
	}
	return stormAcked, data, ""
}

// approvals: a new sender writes in and gets a challenge; the operator
// approves it by code or by request id, at once, or (one in three) in a
// later turn of any approver, perhaps after a kill.
func (w *stormWorker) approvals() {
	led := w.s.led
	for !w.stopped() {
		sender, rec, ok := led.take(&led.pending, w.rng)
		if !ok {
			sender = led.newSender(w.round)
			led.begin(sender, "admit", stormPending)
			o, data, why := w.call("POST", "/v1/admit", w.s.gw, fmt.Sprintf(`{"channel":"telegram","sender":%q}`, sender), nil)
			var d api.Decision
			if o == stormAcked {
				var err error
				d, err = strictDecision(data)
				switch {
				case err != nil:
					w.s.t.Errorf("admit %s: a malformed decision: %v: %q", sender, err, data)
					o = stormUnknown
				case d.Verdict == api.Challenge:
				case d.Reason == api.ReasonUnavailable: // the store is down: it may have written
					o = stormUnknown
				default:
					w.s.t.Errorf("admit %s, a new sender: %+v, want a challenge", sender, d)
					o = stormUnknown
				}
			}
			switch o {
			case stormAcked:
				later := w.rng.IntN(3) == 0 // left in the pool, for any approver, perhaps after a kill
				led.ack(sender, ackChallenge, stormPending, d.RequestID, d.Code, w.round, !later)
				if later {
					continue
				}
				rec = stormSender{requestID: d.RequestID, code: d.Code}
			case stormRefused:
				led.refused(sender, "admit", why)
				continue
			default:
				led.doubt(o)
				if !w.carryOn(o) {
					return
				}
				continue
			}
		}
		body := fmt.Sprintf(`{"channel":"telegram","request_id":%q}`, rec.requestID)
		via := api.ViaRequest
		if w.rng.IntN(2) == 0 {
			body = fmt.Sprintf(`{"channel":"telegram","code":%q}`, rec.code)
			via = api.ViaCode
		}
		led.begin(sender, "approve", stormAllowed)
		var a api.Approval
		o, _, why := w.call("POST", "/v1/pairing/approve", w.s.admin, body, &a)
		if o == stormAcked && (a.RequestID != rec.requestID || a.Already || a.Allowed.Sender != sender || a.Allowed.RevokedAt != nil || a.Allowed.Via != via) {
			w.s.t.Errorf("approve %s (%s): answered %+v", sender, rec.requestID, a)
			o = stormUnknown
		}
		if !w.settle(o, sender, "approve", ackApprove, stormAllowed, why) {
			return
		}
	}
}

// settle records the outcome o of op on sender (kind and state when it was
// acknowledged) and says whether the worker carries on.
func (w *stormWorker) settle(o stormOutcome, sender, op, kind string, state stormState, why string) bool {
	led := w.s.led
	switch o {
	case stormAcked:
		led.ack(sender, kind, state, "", "", w.round, false)
	case stormRefused:
		led.refused(sender, op, why)
	default:
		led.doubt(o)
		return w.carryOn(o)
	}
	return true
}

// allows: batches of three allows at once (their writes share commits),
// of new senders or (one in three) of revoked ones, allowed again.
func (w *stormWorker) allows() {
	led := w.s.led
	for !w.stopped() {
		var wg sync.WaitGroup
		var mu sync.Mutex
		failed := stormAcked // the worst outcome of the batch
		for range 3 {
			var sender string
			ok := false
			if w.rng.IntN(3) == 0 {
				sender, _, ok = led.take(&led.revoked, w.rng)
			}
			if !ok {
				sender = led.newSender(w.round)
			}
			wg.Go(func() {
				led.begin(sender, "allow", stormAllowed)
				var res api.AllowResponse
				o, _, why := w.call("POST", "/v1/pairing/allow", w.s.admin, fmt.Sprintf(`{"channel":"telegram","sender":%q}`, sender), &res)
				if o == stormAcked && (len(res.Allowed) != 1 || res.Allowed[0].Sender != sender || res.Allowed[0].RevokedAt != nil || !res.Allowed[0].Changed) {
					w.s.t.Errorf("allow %s: answered %+v", sender, res)
					o = stormUnknown
				}
				switch o {
				case stormAcked:
					led.ack(sender, ackAllow, stormAllowed, "", "", w.round, false)
				case stormRefused:
					led.refused(sender, "allow", why)
				default:
					led.doubt(o)
					mu.Lock()
					failed = max(failed, o)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if failed != stormAcked && !w.carryOn(failed) {
			return
		}
	}
}

// revokes: revoke a sender allowed earlier (by approval or allow, perhaps
// before a kill).
func (w *stormWorker) revokes() {
	led := w.s.led
	for !w.stopped() {
		sender, _, ok := led.take(&led.allowed, w.rng)
		if !ok {
			if !w.carryOn(stormUnknown) {
				return
			}
			continue
		}
		led.begin(sender, "revoke", stormRevoked)
		var res api.RevokeResponse
		o, _, why := w.call("POST", "/v1/pairing/revoke", w.s.admin, fmt.Sprintf(`{"channel":"telegram","sender":%q}`, sender), &res)
		if o == stormAcked && (res.Revoked.Sender != sender || res.Revoked.RevokedAt == nil) {
			w.s.t.Errorf("revoke %s: answered %+v", sender, res)
			o = stormUnknown
		}
		if !w.settle(o, sender, "revoke", ackRevoke, stormRevoked, why) {
			return
		}
	}
}

// devices plays the operator of device pairing: it issues setup codes,
// starts a companion for each (one in four only in a later round, so a code
// issued before a kill is used after it), finds their requests with
// GET /v1/devices and approves them. The companions run on their own and
// across kills: one waiting for its approval resumes with the next daemon.
func (w *stormWorker) devices() {
	s, led := w.s, w.s.led
	for !w.stopped() {
		led.mu.Lock()
		var start, approve []*stormDevice
		unseen, active := false, 0
		for _, dv := range led.devices {
			switch {
			case dv.broken:
			case dv.state == stormDevSetup && !dv.inDoubt && !dv.started && dv.startAt <= w.round:
				start = append(start, dv)
			case dv.state == stormDevSetup && dv.inDoubt && dv.running:
				unseen = true
			case dv.state == stormDevRequested && !dv.inDoubt && dv.running:
				approve = append(approve, dv)
			}
			// Pairings under way: a companion not yet approved (or one
			// whose approval is in doubt, which may never come), or a
			// setup code waiting for its round.
			if !dv.broken && (dv.running && (dv.state == stormDevSetup || dv.state == stormDevRequested && !dv.inDoubt) || dv.state == stormDevSetup && !dv.started) {
				active++
			}
		}
		led.mu.Unlock()
		for _, dv := range start {
			s.startCompanion(dv)
		}
		if unseen {
			var l api.DeviceList
			o, _, _ := w.call("GET", "/v1/devices", s.admin, "", &l)
			if o != stormAcked && !w.carryOn(o) {
				return
			}
			if o == stormAcked {
				led.mu.Lock()
				for _, r := range l.Requests {
					for _, dv := range led.devices {
						if dv.id == r.DeviceID && dv.state == stormDevSetup && dv.inDoubt {
							dv.state, dv.request, dv.inDoubt, dv.round = stormDevRequested, r.RequestID, false, w.round
							led.acks[ackDevRequest]++
						}
					}
				}
				led.mu.Unlock()
			}
		}
		for _, dv := range approve {
			led.mu.Lock()
			dv.inDoubt = true
			led.mu.Unlock()
			var dec api.DeviceDecision
			o, _, why := w.call("POST", "/v1/devices/requests/"+dv.request+"/approve", s.admin, "", &dec)
			if o == stormAcked && (dec.Approved == nil || dec.Rejected != nil || dec.Approved.RequestID != dv.request || dec.Approved.DeviceID != dv.id) {
				s.t.Errorf("approve device request %s: answered %+v", dv.request, dec)
				o = stormUnknown
			}
			led.mu.Lock()
			switch o {
			case stormAcked:
				if dv.state == stormDevRequested { // not already paired by its companion meanwhile
					dv.state, dv.round = stormDevApproved, w.round
				}
				dv.inDoubt = false
				led.acks[ackDevApprove]++
			case stormRefused:
				dv.broken = true
				led.lost++
				s.t.Errorf("device %d (%s): the approval of its request %s, seen pending in round %d, was refused: %s", dv.n, dv.id, dv.request, dv.round, why)
			default:
				led.unknown++
				if o == stormGone {
					led.gone++
				}
			}
			led.mu.Unlock()
			if o != stormAcked && o != stormRefused && !w.carryOn(o) {
				return
			}
		}
		if active < 2 {
			var sc api.SetupCode
			o, _, why := w.call("POST", "/v1/setup-codes", s.admin, `{"label":"storm","ttl":"30m"}`, &sc)
			if o == stormAcked && (sc.SetupCode == "" || sc.URL != s.pairURL) {
				s.t.Errorf("POST /v1/setup-codes: answered %+v, want a code for %s", sc, s.pairURL)
				o = stormUnknown
			}
			switch o {
			case stormAcked:
				dv, err := s.newDevice(sc.SetupCode, w.round)
				if err != nil {
					s.t.Errorf("a device for a new setup code: %v", err)
					return
				}
				if w.rng.IntN(4) == 0 {
					dv.startAt = w.round + 1
				} else {
					s.startCompanion(dv)
				}
			case stormRefused:
				s.t.Errorf("POST /v1/setup-codes refused: %s", why)
				return
			default:
				if !w.carryOn(o) {
					return
				}
			}
		}
		select {
		case <-w.stop:
			return
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// newDevice records an acknowledged setup code and makes its device's key.
// Each device connects from an address of its own in 127.0.0.0/8: the
// daemon limits pairing attempts per address (20 a minute), as it should
// for devices on a network; here the devices are all on one machine.
// Only the device worker (one at a time) calls it.
func (s *storm) newDevice(setupCode string, round int) (*stormDevice, error) {
	led := s.led
	led.mu.Lock()
	n := len(led.devices) + 1
	led.mu.Unlock()
	keyFile := filepath.Join(s.home, "storm-devices", fmt.Sprintf("device-%d.key", n))
	if err := os.MkdirAll(filepath.Dir(keyFile), 0o700); err != nil {
		return nil, err
	}
	key, _, err := companion.LoadOrCreateKey(keyFile)
	if err != nil {
		return nil, err
	}
	src := &net.TCPAddr{IP: net.IPv4(127, 77, byte(n/250+1), byte(n%250+1))}
	hc := &http.Client{
		Transport:     &http.Transport{DialContext: (&net.Dialer{LocalAddr: src}).DialContext},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	dial := func(ctx context.Context, url string) (*websocket.Conn, error) {
		if err := s.gate.wait(ctx); err != nil {
			return nil, err
		}
		c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: hc})
		return c, err
	}
	dv := &stormDevice{n: n, id: companion.DeviceID(key.Public().(ed25519.PublicKey)), key: key, keyFile: keyFile,
		setupCode: setupCode, state: stormDevSetup, round: round, startAt: round, done: make(chan struct{}), dial: dial, out: &serveBuf{}}
	led.mu.Lock()
	led.devices = append(led.devices, dv)
	led.acks[ackSetupCode]++
	led.mu.Unlock()
	return dv, nil
}

// startCompanion pairs dv with its setup code, in its own goroutine, and
// records the outcome.
func (s *storm) startCompanion(dv *stormDevice) {
	ctx, cancel := context.WithTimeout(s.ctx, 3*time.Minute)
	s.led.mu.Lock()
	dv.started, dv.running, dv.inDoubt, dv.cancel = true, true, true, cancel
	s.led.mu.Unlock()
	go func() {
		defer close(dv.done)
		defer cancel()
		_, err := companion.Pair(ctx, companion.Options{SetupCode: dv.setupCode, Name: fmt.Sprintf("storm %d", dv.n), Platform: "linux",
			KeyFile: dv.keyFile, Out: dv.out, Dialer: dv.dial, ReconnectBackoff: 20 * time.Millisecond})
		s.companionDone(dv, err)
	}()
}

// companionDone records how a companion's Pair ended. A token saved means
// the daemon delivered it (Pair saves it before authenticating, and an
// authentication cut by a kill is retried at the end).
func (s *storm) companionDone(dv *stormDevice, err error) {
	creds, cerr := companion.ReadCredentials(dv.keyFile + ".token")
	led := s.led
	led.mu.Lock()
	defer led.mu.Unlock()
	dv.running = false
	var pe *companion.ProtocolError
	switch {
	case cerr == nil:
		dv.state, dv.inDoubt, dv.creds = stormDevPaired, false, creds
		led.acks[ackDevPaired]++
	case dv.canceled:
	case errors.As(err, &pe) && pe.Code == "unknown_request" && (dv.state == stormDevApproved || dv.state == stormDevRequested && dv.inDoubt):
		// "delivered already": the token went out on a socket the kill
		// cut. The device is paired; the companion has to pair again.
		dv.tokenLost = true
		if dv.state == stormDevRequested {
			dv.state, dv.inDoubt = stormDevApproved, false
		}
	case errors.As(err, &pe), errors.Is(err, companion.ErrRejected), errors.Is(err, companion.ErrExpired), errors.Is(err, companion.ErrCheckCodeMismatch):
		dv.broken = true
		led.lost++
		s.t.Errorf("device %d (%s), %s in round %d: the companion was refused: %v\ncompanion:\n%s", dv.n, dv.id, dv.state, dv.round, err, dv.out)
	default:
		// The connection failed before the device was told it is pending
		// (later failures are retried by the companion): the request may
		// exist, but no companion will take its token.
		dv.orphan = true
	}
}
