package pairing_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pairgate/pairgate/api"
	"github.com/pairgate/pairgate/config"
	"github.com/pairgate/pairgate/pairing"
	"github.com/pairgate/pairgate/secret"
	"github.com/pairgate/pairgate/store"
	"github.com/pairgate/pairgate/store/sqlite"
)

// clock is the injected time source: tests move it instead of sleeping.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type env struct {
	svc   *pairing.Service
	st    *sqlite.Store
	clock *clock
	logs  *bytes.Buffer
	path  string
}

var testKey = bytes.Repeat([]byte{7}, secret.Size)

func newEnv(t testing.TB, mutate func(*config.Config)) *env {
	t.Helper()
	path := filepath.Join(t.TempDir(), "pairgate.db")
	st, err := sqlite.Open(context.Background(), sqlite.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg := config.Default()
	if mutate != nil {
		mutate(cfg)
	}
	sec, err := secret.FromBytes(testKey)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{st: st, clock: newClock(), logs: &bytes.Buffer{}, path: path}
	e.svc, err = pairing.New(pairing.Options{
		Store: st, Secret: sec, Config: cfg, Now: e.clock.Now,
		Logger: slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

var ctx = context.Background()

func dm(sender string) pairing.Inbound {
	return pairing.Inbound{Channel: "telegram", Sender: sender, SenderName: "Alice"}
}

var operator = store.Actor{Name: "cli:test", Source: "test"}

func (e *env) approve(t testing.TB, code string) api.Approval {
	t.Helper()
	a, err := e.svc.Approve(ctx, pairing.Target{Channel: "telegram", CodeOrID: code}, false, operator)
	if err != nil {
		t.Fatalf("approve: %v", err)
	}
	return a
}

func TestGateRulesInOrder(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.Pairing.Channels = map[string]config.Channel{
			"telegram": {AllowFrom: []string{"tg:42"}, Accounts: map[string]config.Account{
				"closed": {Policy: config.PolicyAllowlist},
				"off":    {Policy: config.PolicyDisabled},
				"public": {Policy: config.PolicyOpen},
			}},
		}
	})
	if _, err := e.svc.Allow(ctx, "telegram", "closed", []string{"7"}, store.ViaManual, operator); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		in   pairing.Inbound
		want api.Decision
	}{
		{"invalid sender fails closed", pairing.Inbound{Channel: "telegram", Sender: "not-a-number"}, api.Decision{Verdict: api.Drop, Reason: api.ReasonInvalidSender}},
		{"unknown channel", pairing.Inbound{Channel: "icq", Sender: "1"}, api.Decision{Verdict: api.Drop, Reason: api.ReasonUnknownChannel}},
		{"disabled beats allowed", pairing.Inbound{Channel: "telegram", Account: "off", Sender: "42"}, api.Decision{Verdict: api.Drop, Reason: api.ReasonDisabled}},
		{"open admits anyone", pairing.Inbound{Channel: "telegram", Account: "public", Sender: "999"}, api.Decision{Verdict: api.Admit, Reason: api.ReasonOpen}},
		{"allow_from of the channel, prefixed", pairing.Inbound{Channel: "telegram", Sender: "telegram:42"}, api.Decision{Verdict: api.Admit, Reason: api.ReasonAllowed}},
		{"allow_from inherited by an account", pairing.Inbound{Channel: "telegram", Account: "closed", Sender: "42"}, api.Decision{Verdict: api.Admit, Reason: api.ReasonAllowed}},
		{"allowlisted in the store", pairing.Inbound{Channel: "telegram", Account: "closed", Sender: "7"}, api.Decision{Verdict: api.Admit, Reason: api.ReasonAllowed}},
		{"allowed in a group too", pairing.Inbound{Channel: "telegram", Sender: "42", Chat: api.ChatGroup}, api.Decision{Verdict: api.Admit, Reason: api.ReasonAllowed}},
		{"groups never get a code", pairing.Inbound{Channel: "telegram", Sender: "555", Chat: api.ChatGroup}, api.Decision{Verdict: api.Drop, Reason: api.ReasonGroup}},
		{"allowlist policy never sends a code", pairing.Inbound{Channel: "telegram", Account: "closed", Sender: "555"}, api.Decision{Verdict: api.Drop, Reason: api.ReasonNotAllowed}},
		{"store allowlist is per account", pairing.Inbound{Channel: "telegram", Account: "closed", Sender: "8"}, api.Decision{Verdict: api.Drop, Reason: api.ReasonNotAllowed}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, e.svc.Admit(ctx, tt.in)); diff != "" {
				t.Errorf("Admit(%+v) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
	pending, err := e.svc.ListPending(ctx, pairing.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 0 {
		t.Errorf("no rule above may create a request, got %+v", pending)
	}
}

func TestChallengeApproveAdmit(t *testing.T) {
	e := newEnv(t, nil)
	d := e.svc.Admit(ctx, dm("123456789"))
	if d.Verdict != api.Challenge || d.Reason != api.ReasonChallenged {
		t.Fatalf("first message: got %+v, want a challenge", d)
	}
	if len(d.Code) != pairing.CodeLength || strings.Trim(d.Code, pairing.Alphabet) != "" {
		t.Fatalf("code %q is not %d characters of the alphabet", d.Code, pairing.CodeLength)
	}
	for _, want := range []string{d.Code, "pairgate pairing approve telegram " + d.Code, "valid 1 hour"} {
		if !strings.Contains(d.Reply, want) {
			t.Errorf("reply %q lacks %q", d.Reply, want)
		}
	}
	pending, err := e.svc.ListPending(ctx, pairing.Filter{Channel: "telegram"})
	if err != nil {
		t.Fatal(err)
	}
	want := []api.PendingRequest{{RequestID: d.RequestID, Channel: "telegram", Account: "default", Sender: "123456789",
		Name: "Alice", CreatedAt: e.clock.Now(), ExpiresAt: e.clock.Now().Add(time.Hour)}}
	if diff := cmp.Diff(want, pending); diff != "" {
		t.Errorf("pending (-want +got):\n%s", diff)
	}

	// The operator types the code loosely: lower case, a hyphen, spaces.
	typed := " " + strings.ToLower(d.Code[:4]) + "-" + d.Code[4:] + " "
	a := e.approve(t, typed)
	if a.Allowed.Sender != "123456789" || a.Allowed.Via != api.ViaCode || a.RequestID != d.RequestID {
		t.Errorf("approval = %+v", a)
	}
	if got := e.svc.Admit(ctx, dm("123456789")); got.Verdict != api.Admit || got.Reason != api.ReasonAllowed {
		t.Fatalf("after approval: %+v, want admit/allowed at once", got)
	}
	again, err := e.svc.Approve(ctx, pairing.Target{Channel: "telegram", CodeOrID: d.Code}, false, operator)
	if err != nil || !again.Already || again.Allowed != a.Allowed || again.RequestID != d.RequestID {
		t.Errorf("second approval of the same code: %+v, %v; want the same approval with Already", again, err)
	}

	if _, err := e.svc.Revoke(ctx, "telegram", "", "123456789", operator); err != nil {
		t.Fatal(err)
	}
	got := e.svc.Admit(ctx, dm("123456789"))
	if got.Verdict != api.Challenge {
		t.Fatalf("after revoke: %+v, want a fresh challenge", got)
	}
	if got.Code == d.Code {
		t.Error("a revoked sender got their old, used code again")
	}
	allowed, err := e.svc.ListAllowed(ctx, pairing.Filter{}, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(allowed) != 1 || allowed[0].RevokedAt == nil || allowed[0].RevokedBy != operator.Name {
		t.Errorf("revoked entry should be kept with who revoked it: %+v", allowed)
	}
}

func TestApproveByRequestID(t *testing.T) {
	e := newEnv(t, nil)
	d := e.svc.Admit(ctx, dm("1"))
	a := e.approve(t, strings.ToUpper(d.RequestID))
	if a.Allowed.Via != api.ViaRequest {
		t.Errorf("via = %q, want request", a.Allowed.Via)
	}
}

func TestReminderOncePerRateWindowWithTheSameCode(t *testing.T) {
	e := newEnv(t, nil)
	first := e.svc.Admit(ctx, dm("1"))
	for i := 0; i < 3; i++ {
		e.clock.Advance(time.Minute)
		if d := e.svc.Admit(ctx, dm("1")); d != (api.Decision{Verdict: api.Drop, Reason: api.ReasonPending}) {
			t.Fatalf("repeat within the window: %+v, want a silent drop (nexo re-sends every time)", d)
		}
	}
	e.clock.Advance(7 * time.Minute) // 10 minutes after the code was sent
	again := e.svc.Admit(ctx, dm("1"))
	if again.Verdict != api.Challenge || again.Code != first.Code || again.RequestID != first.RequestID {
		t.Fatalf("after the window: %+v, want the same code again", again)
	}
	if !strings.Contains(again.Reply, "valid 50 minutes") {
		t.Errorf("reminder should say how long the code has left: %q", again.Reply)
	}
	if d := e.svc.Admit(ctx, dm("1")); d.Reason != api.ReasonPending {
		t.Fatalf("right after the reminder: %+v", d)
	}
	// Repeat messages never extend the code: it expires an hour after it
	// was created, and the next message gets a new one.
	e.clock.Advance(50 * time.Minute)
	if _, err := e.svc.Approve(ctx, pairing.Target{Channel: "telegram", CodeOrID: first.Code}, false, operator); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("approving an expired code: %v, want ErrNotFound", err)
	}
	fresh := e.svc.Admit(ctx, dm("1"))
	if fresh.Verdict != api.Challenge || fresh.Code == first.Code {
		t.Fatalf("after expiry: %+v, want a new code", fresh)
	}
}

func TestPendingCap(t *testing.T) {
	e := newEnv(t, nil)
	for _, s := range []string{"1", "2", "3"} {
		if d := e.svc.Admit(ctx, dm(s)); d.Verdict != api.Challenge {
			t.Fatalf("sender %s: %+v", s, d)
		}
	}
	d := e.svc.Admit(ctx, dm("4"))
	if d.Verdict != api.Drop || d.Reason != api.ReasonMaxPending || d.Reply == "" {
		t.Fatalf("fourth sender: %+v, want max_pending with a notice", d)
	}
	if d := e.svc.Admit(ctx, dm("4")); d.Reason != api.ReasonMaxPending || d.Reply != "" {
		t.Fatalf("fourth sender again: %+v, want max_pending without a second notice", d)
	}
	if d := e.svc.Admit(ctx, pairing.Inbound{Channel: "telegram", Account: "other", Sender: "4"}); d.Verdict != api.Challenge {
		t.Fatalf("another account has its own cap: %+v", d)
	}
	e.clock.Advance(10 * time.Minute)
	if d := e.svc.Admit(ctx, dm("4")); d.Reason != api.ReasonMaxPending || d.Reply == "" {
		t.Fatalf("after the rate window: %+v, want the notice once more", d)
	}
	e.clock.Advance(51 * time.Minute) // the three codes expire
	if d := e.svc.Admit(ctx, dm("4")); d.Verdict != api.Challenge {
		t.Fatalf("after the others expired: %+v", d)
	}
}

func TestLockoutAfterWrongCodes(t *testing.T) {
	e := newEnv(t, nil)
	good := e.svc.Admit(ctx, dm("1"))
	wrong := func() error {
		_, err := e.svc.Approve(ctx, pairing.Target{Channel: "telegram", CodeOrID: "ZZZZZZZZ"}, false, operator)
		return err
	}
	for i := 0; i < 4; i++ {
		if err := wrong(); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("wrong code %d: %v", i+1, err)
		}
		e.clock.Advance(time.Minute)
	}
	// Issuing a new code must not reset the count.
	if d := e.svc.Admit(ctx, dm("2")); d.Verdict != api.Challenge {
		t.Fatal(d)
	}
	err := wrong()
	var lock *store.LockoutError
	if !errors.As(err, &lock) || !errors.Is(err, store.ErrLockedOut) {
		t.Fatalf("fifth wrong code: %v, want a lockout", err)
	}
	if want := e.clock.Now().Add(time.Hour); !lock.Until.Equal(want) {
		t.Errorf("locked until %v, want %v", lock.Until, want)
	}
	if _, err := e.svc.Approve(ctx, pairing.Target{Channel: "telegram", CodeOrID: good.Code}, false, operator); !errors.Is(err, store.ErrLockedOut) {
		t.Errorf("the right code while locked: %v, want locked out", err)
	}
	if d := e.svc.Admit(ctx, dm("3")); d.Reason != api.ReasonLockedOut {
		t.Errorf("new sender while locked: %+v", d)
	}
	if _, err := e.svc.Approve(ctx, pairing.Target{Channel: "telegram", Account: "other", CodeOrID: "ZZZZZZZZ"}, false, operator); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("another account is not locked: %v", err)
	}
	e.clock.Advance(time.Hour)
	if _, err := e.svc.Approve(ctx, pairing.Target{Channel: "telegram", CodeOrID: "req_unknown"}, false, operator); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("after the lock: %v", err)
	}
	// Sender 1's code expired during the lock; they get a new one.
	if d := e.svc.Admit(ctx, dm("1")); d.Verdict != api.Challenge || d.Code == good.Code {
		t.Fatalf("sender with an expired code after the lock: %+v", d)
	}
}

func TestRejectDeclinesForTheWindow(t *testing.T) {
	e := newEnv(t, nil)
	d := e.svc.Admit(ctx, dm("1"))
	if _, err := e.svc.Reject(ctx, pairing.Target{Channel: "telegram", CodeOrID: d.Code}, operator); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(23 * time.Hour)
	if got := e.svc.Admit(ctx, dm("1")); got != (api.Decision{Verdict: api.Drop, Reason: api.ReasonDeclined}) {
		t.Fatalf("declined sender: %+v", got)
	}
	e.clock.Advance(time.Hour + time.Second)
	if got := e.svc.Admit(ctx, dm("1")); got.Verdict != api.Challenge {
		t.Fatalf("after the decline window: %+v", got)
	}
}

func TestAccountsAreIsolated(t *testing.T) {
	e := newEnv(t, nil)
	d := e.svc.Admit(ctx, pairing.Inbound{Channel: "telegram", Account: "work", Sender: "1"})
	if _, err := e.svc.Approve(ctx, pairing.Target{Channel: "telegram", CodeOrID: d.Code}, false, operator); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("approving work's code on default: %v, want not found (OpenClaw #26639)", err)
	}
	if _, err := e.svc.Approve(ctx, pairing.Target{Channel: "telegram", Account: "work", CodeOrID: d.Code}, false, operator); err != nil {
		t.Fatal(err)
	}
	if got := e.svc.Admit(ctx, dm("1")); got.Verdict == api.Admit {
		t.Fatalf("approval on work admitted the sender on default: %+v", got)
	}
	if got := e.svc.Admit(ctx, pairing.Inbound{Channel: "whatsapp", Account: "work", Sender: "+15550001"}); got.Verdict == api.Admit {
		t.Fatalf("approval on telegram admitted on whatsapp: %+v", got)
	}
}

func TestStorageErrorsFailClosed(t *testing.T) {
	e := newEnv(t, nil)
	if _, err := e.svc.Allow(ctx, "telegram", "", []string{"1"}, store.ViaManual, operator); err != nil {
		t.Fatal(err)
	}
	e.st.Close()
	if d := e.svc.Admit(ctx, dm("2")); d != (api.Decision{Verdict: api.Drop, Reason: api.ReasonUnavailable}) {
		t.Fatalf("unknown sender with the store down: %+v, want drop/unavailable (nexo admits)", d)
	}
	if _, err := e.svc.Approve(ctx, pairing.Target{Channel: "telegram", CodeOrID: "ABCDEFGH"}, false, operator); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("approve with the store down: %v", err)
	}
}

func TestUnloadableAllowlistDropsEveryone(t *testing.T) {
	e := newEnv(t, nil)
	if _, err := e.svc.Allow(ctx, "telegram", "", []string{"1"}, store.ViaManual, operator); err != nil {
		t.Fatal(err)
	}
	// A second service whose first Admit cannot read the allowlist.
	e2 := newEnv(t, nil)
	e2.st.Close()
	if d := e2.svc.Admit(ctx, dm("1")); d.Reason != api.ReasonUnavailable {
		t.Fatalf("got %+v, want unavailable: an unreadable allowlist is not an empty one", d)
	}
}

func TestInvalidInput(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct {
		name string
		err  error
	}{
		{"unknown channel", func() error { _, err := e.svc.Allow(ctx, "icq", "", []string{"1"}, "", operator); return err }()},
		{"bad sender", func() error {
			_, err := e.svc.Allow(ctx, "telegram", "", []string{"1", "bob"}, "", operator)
			return err
		}()},
		{"long account", func() error {
			_, err := e.svc.Allow(ctx, "telegram", strings.Repeat("a", 129), []string{"1"}, "", operator)
			return err
		}()},
		{"code too short", func() error {
			_, err := e.svc.Approve(ctx, pairing.Target{Channel: "telegram", CodeOrID: "ABC"}, false, operator)
			return err
		}()},
		{"code with O", func() error {
			_, err := e.svc.Approve(ctx, pairing.Target{Channel: "telegram", CodeOrID: "ABCDEFGO"}, false, operator)
			return err
		}()},
		{"two hyphens", func() error {
			_, err := e.svc.Approve(ctx, pairing.Target{Channel: "telegram", CodeOrID: "AB-CD-EFGH"}, false, operator)
			return err
		}()},
	}
	for _, tt := range tests {
		if !errors.Is(tt.err, pairing.ErrInvalidInput) {
			t.Errorf("%s: err = %v, want ErrInvalidInput", tt.name, tt.err)
		}
	}
	allowed, _ := e.svc.ListAllowed(ctx, pairing.Filter{}, true)
	if len(allowed) != 0 {
		t.Errorf("a batch with one bad sender must add none: %+v", allowed)
	}
}

func TestNoCodeInLogs(t *testing.T) {
	e := newEnv(t, nil)
	var codes []string
	for _, s := range []string{"1", "2", "3"} {
		codes = append(codes, e.svc.Admit(ctx, dm(s)).Code)
	}
	e.clock.Advance(11 * time.Minute)
	codes = append(codes, e.svc.Admit(ctx, dm("1")).Code)
	e.approve(t, codes[0])
	e.svc.Approve(ctx, pairing.Target{Channel: "telegram", CodeOrID: "ZZZZZZZZ"}, false, operator)
	if e.logs.Len() == 0 {
		t.Fatal("expected debug logs")
	}
	for _, c := range codes {
		if c == "" || strings.Contains(e.logs.String(), c) {
			t.Fatalf("code %q appears in the logs:\n%s", c, e.logs)
		}
	}
}

func TestAdmitAllowedDoesNotAllocate(t *testing.T) {
	e := newEnv(t, nil)
	if _, err := e.svc.Allow(ctx, "telegram", "", []string{"123456789"}, store.ViaManual, operator); err != nil {
		t.Fatal(err)
	}
	in := dm("123456789")
	if d := e.svc.Admit(ctx, in); d.Verdict != api.Admit {
		t.Fatal(d)
	}
	if n := testing.AllocsPerRun(1000, func() { e.svc.Admit(ctx, in) }); n != 0 {
		t.Errorf("Admit for an allowed sender allocates %v times per call, want 0", n)
	}
}

// Of 8 concurrent approvals of one request one approves it and 7 are told
// it was approved already; none counts as a wrong code, so ten rounds of
// them never lock approvals (5 wrong codes would).
func TestConcurrentApprovalsExactlyOneWins(t *testing.T) {
	e := newEnv(t, nil)
	for trial := 0; trial < 10; trial++ {
		d := e.svc.Admit(ctx, dm(strings.Repeat("9", trial+1)))
		if d.Verdict != api.Challenge {
			t.Fatal(d)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins, already := 0, 0
		var errs []error
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				target := d.Code
				if g%2 == 1 {
					target = d.RequestID
				}
				a, err := e.svc.Approve(ctx, pairing.Target{Channel: "telegram", CodeOrID: target}, false, operator)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err != nil:
					errs = append(errs, err)
				case a.Already:
					already++
				default:
					wins++
				}
			}()
		}
		wg.Wait()
		if wins != 1 || already != 7 || len(errs) > 0 {
			t.Fatalf("trial %d: %d approved, %d already approved, errors %v; want 1, 7, none", trial, wins, already, errs)
		}
	}
	if until, err := e.st.LockedUntil(ctx, store.Scope{Channel: "telegram", Account: "default"}, e.clock.Now()); err != nil || !until.IsZero() {
		t.Errorf("after 70 approvals of approved requests: locked until %v (%v), want not locked", until, err)
	}
}

func TestCodes(t *testing.T) {
	for in, want := range map[string]string{
		"ABCD2345":    "ABCD2345",
		"abcd2345":    "ABCD2345",
		"abcd-2345":   "ABCD2345",
		" AB CD 2345": "ABCD2345",
	} {
		got, err := pairing.NormalizeCode(in)
		if err != nil || got != want {
			t.Errorf("NormalizeCode(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "ABCD234", "ABCD23456", "ABCD-23-45", "ABCD234O", "ABCD2341", "ÄBCD2345", strings.Repeat("A", 100)} {
		if _, err := pairing.NormalizeCode(in); !errors.Is(err, pairing.ErrInvalidInput) {
			t.Errorf("NormalizeCode(%q): err = %v, want ErrInvalidInput", in, err)
		}
	}
}

// TestLiveCodesAreUnique: many live requests in one scope, no code twice,
// and every one approvable.
func TestLiveCodesAreUnique(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.Pairing.Limits.MaxPending = 1000 })
	seen := map[string]string{}
	for i := 0; i < 200; i++ {
		d := e.svc.Admit(ctx, dm(itoa(i+1)))
		if d.Verdict != api.Challenge {
			t.Fatalf("draw %d: %+v", i, d)
		}
		if prev, ok := seen[d.Code]; ok {
			t.Fatalf("code of %s repeated for %s", prev, d.RequestID)
		}
		seen[d.Code] = d.RequestID
	}
	for code, id := range seen {
		if a := e.approve(t, code); a.RequestID != id {
			t.Fatalf("code approved request %s, want %s", a.RequestID, id)
		}
	}
}

func itoa(i int) string {
	const digits = "0123456789"
	if i < 10 {
		return digits[i : i+1]
	}
	return itoa(i/10) + digits[i%10:i%10+1]
}

func FuzzNormalizeCode(f *testing.F) {
	for _, s := range []string{"ABCD2345", "abcd-2345", " a b c d 2 3 4 5 ", "--", "ÄÖ", "req_x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		code, err := pairing.NormalizeCode(in)
		if err != nil {
			if !errors.Is(err, pairing.ErrInvalidInput) {
				t.Fatalf("NormalizeCode(%q): %v, want ErrInvalidInput", in, err)
			}
			return
		}
		if len(code) != pairing.CodeLength || strings.Trim(code, pairing.Alphabet) != "" {
			t.Fatalf("NormalizeCode(%q) = %q: not a code", in, code)
		}
		if again, err := pairing.NormalizeCode(code); err != nil || again != code {
			t.Fatalf("not idempotent: %q → %q, %v", code, again, err)
		}
	})
}

// TestAdmitWhileTheAllowlistChanges reads the view from several goroutines
// while another allows and revokes senders: a sender who stays allowed is
// admitted every time (run with -race to check the view's publication).
func TestAdmitWhileTheAllowlistChanges(t *testing.T) {
	e := newEnv(t, nil)
	if _, err := e.svc.Allow(ctx, "telegram", "", []string{"1"}, store.ViaManual, operator); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if d := e.svc.Admit(ctx, dm("1")); d.Verdict != api.Admit {
					t.Errorf("a sender who stayed allowed got %+v", d)
					return
				}
			}
		}()
	}
	for i := 0; i < 100; i++ {
		s := itoa(1000 + i%7)
		if _, err := e.svc.Allow(ctx, "telegram", "", []string{s}, store.ViaManual, operator); err != nil {
			t.Fatal(err)
		}
		if d := e.svc.Admit(ctx, dm(s)); d.Verdict != api.Admit {
			t.Fatalf("just allowed %s: %+v", s, d)
		}
		if _, err := e.svc.Revoke(ctx, "telegram", "", s, operator); err != nil {
			t.Fatal(err)
		}
		if d := e.svc.Admit(ctx, pairing.Inbound{Channel: "telegram", Sender: s, Chat: api.ChatGroup}); d.Verdict != api.Drop {
			t.Fatalf("just revoked %s: %+v", s, d)
		}
	}
	close(stop)
	wg.Wait()
}
