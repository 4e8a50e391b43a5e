package natsbus

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/pairgate/pairgate/api"
	"github.com/pairgate/pairgate/config"
	"github.com/pairgate/pairgate/pairing"
	"github.com/pairgate/pairgate/secret"
	"github.com/pairgate/pairgate/store"
	"github.com/pairgate/pairgate/store/sqlite"
)

// slowChallenges is a store whose new requests hang until released: a
// challenge stuck on a slow disk.
type slowChallenges struct {
	*sqlite.Store
	release chan struct{}
}

func (s slowChallenges) CreateRequest(ctx context.Context, p store.CreateRequestParams) (store.Request, error) {
	select {
	case <-s.release:
	case <-ctx.Done():
		return store.Request{}, ctx.Err()
	}
	return s.Store.CreateRequest(ctx, p)
}

// TestAllowedSenderNeverWaitsBehindAChallenge: decisions run side by side,
// so a sender on the allowlist is answered at once while another sender's
// challenge is stuck in the store.
func TestAllowedSenderNeverWaitsBehindAChallenge(t *testing.T) {
	ns := startNATS(t, -1)
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(t.TempDir(), "pairgate.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	slow := slowChallenges{Store: st, release: make(chan struct{})}
	sec, _ := secret.FromBytes(bytes.Repeat([]byte{9}, secret.Size))
	gate, err := pairing.New(pairing.Options{Store: slow, Secret: sec, Config: config.Default()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gate.Allow(ctx, "telegram", "", []string{"42"}, store.ViaManual, store.Actor{Name: "test"}); err != nil {
		t.Fatal(err)
	}
	runBus(t, ns.ClientURL(), gate)
	nc := client(t, ns.ClientURL())
	waitServing(t, nc)

	stuck := make(chan *nats.Msg, 1)
	if _, err := nc.ChanSubscribe("stuck-reply", stuck); err != nil {
		t.Fatal(err)
	}
	if err := nc.PublishRequest(AdmitSubject, "stuck-reply", []byte(`{"channel":"telegram","sender":"7"}`)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // the challenge is in the store by now, stuck
	start := time.Now()
	if d := admit(t, nc, api.AdmitRequest{Channel: "telegram", Sender: "42"}); d.Verdict != api.Admit {
		t.Fatalf("the allowed sender: %+v", d)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("the allowed sender waited %v behind a stuck challenge", took)
	}
	select {
	case m := <-stuck:
		t.Fatalf("the stuck challenge was answered before its store write returned: %s", m.Data)
	default:
	}
	close(slow.release)
	select {
	case m := <-stuck:
		var d api.Decision
		if err := json.Unmarshal(m.Data, &d); err != nil || d.Verdict != api.Challenge {
			t.Errorf("the released challenge: %s %v", m.Data, err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the released challenge got no answer")
	}
}
