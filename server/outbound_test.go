package server_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pairgate/pairgate/api"
	"github.com/pairgate/pairgate/command"
	"github.com/pairgate/pairgate/store"
)

// withOwner makes sender 42 on telegram the owner.
func (e *apiEnv) withOwner(t *testing.T) {
	t.Helper()
	cfg := *e.svc.Config()
	cfg.Owner.Senders = map[string][]string{"telegram": {"42"}}
	if err := e.svc.Reconfigure(&cfg); err != nil {
		t.Fatal(err)
	}
}

func (e *apiEnv) outbound(t *testing.T, query string) api.OutboundBatch {
	t.Helper()
	var b api.OutboundBatch
	if st, _ := e.do(e.gateway, "GET", "/v1/outbound"+query, "", &b); st != 200 {
		t.Fatalf("GET /v1/outbound%s: %d", query, st)
	}
	return b
}

func TestOutboundOverHTTP(t *testing.T) {
	e := newAPI(t)
	e.withOwner(t)
	if b := e.outbound(t, ""); len(b.Messages) != 0 || b.Next != 0 {
		t.Fatalf("a fresh store: %+v", b)
	}
	var d api.Decision
	e.do(e.gateway, "POST", "/v1/admit", `{"channel":"telegram","sender":"555","sender_name":"Alice","reply_by":"outbound"}`, &d)
	if d.Verdict != api.Challenge || d.Reply != "" {
		t.Fatalf("admit with reply_by outbound: %+v", d)
	}
	b := e.outbound(t, "?after=0")
	if len(b.Messages) != 2 || b.Next != 2 || b.Messages[0].Cause != store.CauseNotice || b.Messages[1].To != "555" ||
		!strings.Contains(b.Messages[1].Text, d.Code) {
		t.Fatalf("GET /v1/outbound after a challenge: %+v", b)
	}
	if b := e.outbound(t, "?after=2&wait=0s"); len(b.Messages) != 0 || b.Next != 2 {
		t.Errorf("after the last: %+v", b)
	}

	// The long poll answers as soon as a message is recorded.
	go func() {
		time.Sleep(150 * time.Millisecond)
		var res api.CommandResult
		e.do(e.gateway, "POST", "/v1/command", `{"channel":"telegram","sender":"42","text":"/approve `+d.Code+`"}`, &res)
	}()
	start := time.Now()
	b = e.outbound(t, "?after=2&wait=20s")
	if time.Since(start) > 5*time.Second || len(b.Messages) == 0 {
		t.Fatalf("the long poll: %+v after %v", b, time.Since(start))
	}
	for len(b.Messages) < 2 {
		more := e.outbound(t, "?after="+strconv.FormatInt(b.Next, 10)+"&wait=5s")
		b.Messages, b.Next = append(b.Messages, more.Messages...), more.Next
	}
	if b.Messages[0].To != "555" || b.Messages[0].Cause != store.CauseApproved || b.Messages[1].To != "42" ||
		!strings.HasPrefix(b.Messages[1].Text, "Approved Alice (telegram 555)") {
		t.Errorf("after /approve in chat: %+v", b.Messages)
	}

	// The gateway scope may read; bad parameters are named.
	for _, tt := range []struct{ query, want string }{
		{"?after=-1", `query parameter "after"`},
		{"?wait=2m", `query parameter "wait": want a duration from 0s to 1m0s`},
		{"?limit=0", `query parameter "limit"`},
		{"?since=3", `unknown query parameter "since"`},
	} {
		var ae apiErr
		if st, _ := e.do(e.gateway, "GET", "/v1/outbound"+tt.query, "", &ae); st != 400 || !strings.Contains(ae.Error.Message, tt.want) {
			t.Errorf("GET /v1/outbound%s: %d %+v; want 400 naming %s", tt.query, st, ae, tt.want)
		}
	}
	if st, _ := e.do("", "GET", "/v1/outbound", "", nil); st != 401 {
		t.Errorf("GET /v1/outbound without a token: %d", st)
	}
}

func TestCommandOverHTTP(t *testing.T) {
	e := newAPI(t)
	e.withOwner(t)
	var res api.CommandResult
	if st, _ := e.do(e.gateway, "POST", "/v1/command", `{"channel":"telegram","sender":"42","text":"/weather"}`, &res); st != 200 || res.Handled {
		t.Errorf("a command that is not pairgate's: %d %+v", st, res)
	}
	if st, _ := e.do(e.gateway, "POST", "/v1/command", `{"channel":"telegram","sender":"7","text":"/pending"}`, &res); st != 200 || !res.Handled || res.Messages != 1 {
		t.Errorf("a non-owner's /pending: %d %+v", st, res)
	}
	if b := e.outbound(t, ""); len(b.Messages) != 1 || b.Messages[0].To != "7" || b.Messages[0].Text != command.Refusal {
		t.Errorf("the non-owner was answered %+v", b)
	}
	if st, _ := e.do(e.gateway, "POST", "/v1/command", `{"channel":"telegram","sender":"42","text":"/pending"}`, &res); st != 200 || res.Command != "pending" {
		t.Errorf("the owner's /pending: %d %+v", st, res)
	}
	var ae apiErr
	if st, _ := e.do(e.gateway, "POST", "/v1/command", `{"channel":"telegram","text":"/pending"}`, &ae); st != 400 || ae.Error.Code != api.CodeInvalidInput {
		t.Errorf("no sender: %d %+v", st, ae)
	}
	if st, _ := e.do(e.gateway, "POST", "/v1/command", `{"channel":"telegram","sender":"42","text":"/pending","extra":1}`, &ae); st != 400 {
		t.Errorf("an unknown field: %d %+v", st, ae)
	}
	if st, _ := e.do(e.gateway, "POST", "/v1/admit", `{"channel":"telegram","sender":"42","reply_by":"email"}`, &ae); st != 400 ||
		!strings.Contains(ae.Error.Message, `"reply_by"`) {
		t.Errorf("admit with reply_by email: %d %+v", st, ae)
	}
}

// A shutdown does not wait for a long poll: Drain answers it at once with
// what there is, and the gateway asks again.
func TestDrainEndsTheLongPoll(t *testing.T) {
	e := newAPI(t)
	got := make(chan api.OutboundBatch, 1)
	start := time.Now()
	go func() { got <- e.outbound(t, "?after=0&wait=30s") }()
	time.Sleep(100 * time.Millisecond)
	e.srv.Drain()
	select {
	case b := <-got:
		if len(b.Messages) != 0 || b.Next != 0 {
			t.Errorf("the drained poll answered %+v", b)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("the drained poll answered after %v", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Drain did not end the long poll")
	}
}
