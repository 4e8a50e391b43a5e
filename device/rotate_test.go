package device

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/pairgate/pairgate/store"
	"github.com/pairgate/pairgate/store/sqlite"
)

// kidOf is the key number a setup token names.
func kidOf(t *testing.T, tok string) uint8 { return rawToken(t, tok)[0] }

// A rotation makes the next key sign; codes of the key it retired still
// pair, like those of the new key.
func TestRotateKey(t *testing.T) {
	e := newPairEnv(t, nil)
	ctx := context.Background()
	old := e.setupToken(0)
	kid, err := e.svc.RotateKey(ctx, operator)
	if err != nil {
		t.Fatal(err)
	}
	newer := e.setupToken(0)
	if kidOf(t, old) != 1 || kid != 2 || kidOf(t, newer) != 2 {
		t.Fatalf("codes of keys %d and %d around a rotation to key %d; want 1, 2 and 2", kidOf(t, old), kidOf(t, newer), kid)
	}
	for i, tok := range []string{old, newer} {
		cl := e.dial(deviceKey(string(rune('p' + i))))
		cl.pair(tok, e.now().UnixMilli())
		if m := cl.recv(); m["type"] != "pending" {
			t.Errorf("pair with the code of key %d after the rotation: %v", kidOf(t, tok), m)
		}
	}
	keys, _ := e.st.SigningKeys(ctx)
	if len(keys) != 2 || keys[0].KID != 2 || !keys[0].RetiredAt.IsZero() || keys[1].KID != 1 || keys[1].RetiredAt.IsZero() {
		t.Errorf("keys after one rotation: %+v", keys)
	}
}

// Rotations made at the same moment by four processes (four stores on one
// database) all succeed, each with a number of its own.
func TestRotateKeyConcurrently(t *testing.T) {
	e := newPairEnv(t, nil)
	ctx := context.Background()
	e.setupToken(0) // key 1
	var svcs []*Service
	for range 4 {
		st, err := sqlite.Open(ctx, sqlite.Options{Path: e.path})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		svc, err := New(Options{Store: st, Secret: testSecret, Now: e.now, URL: e.svc.url})
		if err != nil {
			t.Fatal(err)
		}
		svcs = append(svcs, svc)
	}
	kids := make([]uint8, len(svcs))
	errs := make([]error, len(svcs))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, svc := range svcs {
		wg.Go(func() {
			<-start
			kids[i], errs[i] = svc.RotateKey(ctx, store.Actor{Name: "rotator"})
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("rotation %d: %v", i, err)
		}
	}
	slices.Sort(kids)
	if !slices.Equal(kids, []uint8{2, 3, 4, 5}) {
		t.Errorf("concurrent rotations took keys %v; want 2, 3, 4 and 5", kids)
	}
	if tok := e.setupToken(0); kidOf(t, tok) != 5 {
		t.Errorf("after the rotations key %d signs; want 5", kidOf(t, tok))
	}
}
