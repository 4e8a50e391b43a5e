package pairing_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pairgate/pairgate/api"
	"github.com/pairgate/pairgate/pairing"
	"github.com/pairgate/pairgate/store"
)

// A request imported with the code another system gave its sender is
// approved with that code, lives code_ttl from its creation in the source,
// and is never reminded of (pairgate could only send a code of its own);
// what cannot come over says why.
func TestImportPending(t *testing.T) {
	e := newEnv(t, nil) // code_ttl 1 h
	now := e.clock.Now()
	if _, err := e.svc.Allow(ctx, "telegram", "", []string{"9"}, store.ViaManual, operator); err != nil {
		t.Fatal(err)
	}
	reqs := []pairing.ImportedRequest{
		{Sender: "1", Name: "Ana", Code: "k7m9-pq2x", CreatedAt: now.Add(-20 * time.Minute)},
		{Sender: "2", Code: "ABCD2345", CreatedAt: now.Add(-2 * time.Hour)},
		{Sender: "3", Code: "K7M9PQ2"},
		{Sender: "4", Code: "ABCD1234", CreatedAt: now},
		{Sender: "5", Code: "ABCD2346"},
		{Sender: "9", Code: "ABCD2347", CreatedAt: now},
		{Sender: "6", Code: "K7M9PQ2X", CreatedAt: now},
	}
	// The dry run's check reads nothing: it knows the code and its age,
	// not what pairgate holds (sender 9 allowed, code of 6 taken by 1).
	for i, w := range []string{"", "expired", "8 characters", "pairgate can take", "lifetime is unknown", "", ""} {
		exp, err := e.svc.CheckImport("telegram", "", reqs[i])
		switch {
		case w == "" && (err != nil || !exp.Equal(reqs[i].CreatedAt.Add(time.Hour))):
			t.Errorf("CheckImport(%s) = %v, %v; want expiry code_ttl after its creation", reqs[i].Sender, exp, err)
		case w != "" && (!errors.Is(err, pairing.ErrNotImported) || !strings.Contains(err.Error(), w)):
			t.Errorf("CheckImport(%s) = %v, want ErrNotImported saying %q", reqs[i].Sender, err, w)
		}
	}
	res, err := e.svc.ImportPending(ctx, "telegram", "", reqs, operator)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"", "expired", "8 characters", "pairgate can take", "lifetime is unknown", "allowed already", "same code"}
	for i, w := range want {
		switch err := res[i]; {
		case w == "" && err != nil:
			t.Errorf("request of %s: %v, want it imported", reqs[i].Sender, err)
		case w != "" && (!errors.Is(err, pairing.ErrNotImported) || !strings.Contains(err.Error(), w)):
			t.Errorf("request of %s: %v, want ErrNotImported saying %q", reqs[i].Sender, err, w)
		}
	}
	for i, err := range res {
		if err != nil && strings.Contains(strings.ToUpper(err.Error()), strings.ToUpper(reqs[i].Code)) {
			t.Errorf("the reason for %s repeats its code: %v", reqs[i].Sender, err)
		}
	}
	pending, err := e.svc.ListPending(ctx, pairing.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 1 || pending[0].Sender != "1" || !pending[0].ExpiresAt.Equal(now.Add(40*time.Minute)) {
		t.Fatalf("pending after the import: %+v; want sender 1, expiring code_ttl after its creation in the source", pending)
	}

	// Writing again within the code's life: no reminder, ever (the code
	// pairgate would send is not the one the sender holds).
	for _, d := range []time.Duration{0, 15 * time.Minute, 24 * time.Minute} { // 39 min of its 40
		e.clock.Advance(d)
		if got := e.svc.Admit(ctx, dm("1")); got.Verdict != api.Drop || got.Reason != api.ReasonPending || got.Code != "" {
			t.Errorf("the imported sender writing again: %+v, want a silent drop (pending)", got)
		}
	}
	// The owner approves with the code the sender was given.
	a := e.approve(t, "K7M9PQ2X")
	if a.Allowed.Sender != "1" {
		t.Errorf("approved %+v, want sender 1", a)
	}
	if got := e.svc.Admit(ctx, dm("1")); got.Verdict != api.Admit {
		t.Errorf("after approval: %+v", got)
	}
}

// Once an imported code expires, the sender gets a pairgate code.
func TestImportedCodeExpires(t *testing.T) {
	e := newEnv(t, nil)
	res, err := e.svc.ImportPending(ctx, "telegram", "", []pairing.ImportedRequest{{Sender: "1", Code: "K7M9PQ2X", CreatedAt: e.clock.Now()}}, operator)
	if err != nil || res[0] != nil {
		t.Fatalf("ImportPending: %v, %v", res, err)
	}
	e.clock.Advance(time.Hour + time.Second)
	d := e.svc.Admit(ctx, dm("1"))
	if d.Verdict != api.Challenge || d.Code == "" || d.Code == "K7M9PQ2X" {
		t.Fatalf("after the imported code expired: %+v, want a challenge with a pairgate code", d)
	}
	if _, err := e.svc.Approve(ctx, pairing.Target{Channel: "telegram", CodeOrID: "K7M9PQ2X"}, false, operator); err == nil {
		t.Error("the expired imported code approved")
	}
}
