package pairing

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/pairgate/pairgate/device"
	"github.com/pairgate/pairgate/device/companion"
	"github.com/pairgate/pairgate/secret"
	"github.com/pairgate/pairgate/store"
)

// soakDevices is the device side of TestSoakMonth: the /pair WebSocket on
// loopback, served by a device.Service on the soak's store and clock, and
// the reference companion pairing through it.
type soakDevices struct {
	t      *testing.T
	svc    *device.Service
	url    string
	dir    string
	now    func() time.Time
	owner  store.Actor
	tokens map[string]string // device id → its current device token
	keys   map[string]string // device id → its key file
	gone   map[string]string // revoked device id → its last token
	n      int
}

func newSoakDevices(t *testing.T, ctx context.Context, st store.Store, sec secret.Secret, now func() time.Time, owner store.Actor) *soakDevices {
	hs := httptest.NewUnstartedServer(nil)
	d := &soakDevices{t: t, url: "ws://" + hs.Listener.Addr().String() + "/pair", dir: t.TempDir(), now: now, owner: owner,
		tokens: map[string]string{}, keys: map[string]string{}, gone: map[string]string{}}
	svc, err := device.New(device.Options{Store: st, Secret: sec, Now: now, AttemptsPerMinute: 1 << 20,
		URL: func() (string, device.URLSource, error) { return d.url, device.URLSourceConfig, nil }})
	if err != nil {
		t.Fatal(err)
	}
	d.svc = svc
	runCtx, stop := context.WithCancel(ctx)
	ran := make(chan struct{})
	go func() { svc.Run(runCtx); close(ran) }()
	hs.Config.Handler = svc
	hs.Start()
	t.Cleanup(func() { hs.Close(); stop(); <-ran })
	return d
}

// pair pairs a new device as an owner would: a setup code, the companion
// presenting it with its own key, the owner approving the request whose
// check code the companion shows, and the companion authenticating with
// the device token it was given.
func (d *soakDevices) pair(ctx context.Context) {
	d.t.Helper()
	d.n++
	code, err := d.svc.IssueSetupCode(ctx, device.SetupParams{Label: fmt.Sprint("soak ", d.n)}, d.owner)
	if err != nil {
		d.t.Fatalf("%v: setup code: %v", d.now(), err)
	}
	keyFile := filepath.Join(d.dir, fmt.Sprint("device", d.n, ".key"))
	type result struct {
		res companion.Result
		err error
	}
	done := make(chan result, 1)
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	go func() {
		res, err := companion.Pair(pctx, companion.Options{SetupCode: code.SetupCode, Name: fmt.Sprint("phone ", d.n), Platform: "ios",
			KeyFile: keyFile, Now: d.now})
		done <- result{res, err}
	}()
	// The request appears when the companion's pair message is stored.
	var req *struct{ id, check string }
	for req == nil {
		select {
		case r := <-done:
			d.t.Fatalf("%v: the companion stopped before its request was seen: %v", d.now(), r.err)
		case <-pctx.Done():
			d.t.Fatalf("%v: no device request within 30 s", d.now())
		case <-time.After(2 * time.Millisecond):
		}
		list, err := d.svc.List(ctx)
		if err != nil {
			d.t.Fatal(err)
		}
		for _, r := range list.Requests {
			if r.Label == fmt.Sprint("soak ", d.n) {
				req = &struct{ id, check string }{r.RequestID, r.CheckCode}
			}
		}
	}
	if _, err := d.svc.Decide(ctx, req.id, true, d.owner); err != nil {
		d.t.Fatalf("%v: approve device request: %v", d.now(), err)
	}
	r := <-done
	if r.err != nil {
		d.t.Fatalf("%v: the companion after approval: %v", d.now(), r.err)
	}
	creds, err := companion.ReadCredentials(r.res.TokenFile)
	if err != nil {
		d.t.Fatal(err)
	}
	d.tokens[r.res.DeviceID] = creds.DeviceToken
	d.keys[r.res.DeviceID] = keyFile
}

// rotate gives a paired device a new token.
func (d *soakDevices) rotate(ctx context.Context, rng *rand.Rand) bool {
	id, ok := d.pick(rng)
	if !ok {
		return false
	}
	tok, err := d.svc.Rotate(ctx, id, d.owner)
	if err != nil {
		d.t.Fatalf("%v: rotate %s: %v", d.now(), id, err)
	}
	if err := d.authRefused(ctx, id, d.tokens[id]); err != nil {
		d.t.Errorf("%v: the token device %s had before its rotation: %v", d.now(), id, err)
	}
	d.tokens[id] = tok.DeviceToken
	return true
}

// revoke revokes a paired device.
func (d *soakDevices) revoke(ctx context.Context, rng *rand.Rand) bool {
	id, ok := d.pick(rng)
	if !ok {
		return false
	}
	if _, err := d.svc.Revoke(ctx, id, d.owner); err != nil {
		d.t.Fatalf("%v: revoke %s: %v", d.now(), id, err)
	}
	d.gone[id] = d.tokens[id]
	delete(d.tokens, id)
	return true
}

func (d *soakDevices) pick(rng *rand.Rand) (string, bool) {
	if len(d.tokens) == 0 {
		return "", false
	}
	ids := make([]string, 0, len(d.tokens))
	for id := range d.tokens {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids[rng.IntN(len(ids))], true
}

// check: every paired device authenticates over /pair with its current
// token, and no revoked device does.
func (d *soakDevices) check(ctx context.Context) {
	d.t.Helper()
	for id, tok := range d.tokens {
		key, err := companion.LoadKey(d.keys[id])
		if err != nil {
			d.t.Fatal(err)
		}
		if _, _, err := companion.AuthAt(ctx, d.now, d.url, key, id, tok); err != nil {
			d.t.Errorf("%v: paired device %s cannot authenticate: %v", d.now(), id, err)
		}
	}
	for id, tok := range d.gone {
		if err := d.authRefused(ctx, id, tok); err != nil {
			d.t.Errorf("%v: revoked device %s: %v", d.now(), id, err)
		}
	}
}

// authRefused is nil if the server refuses tok for device id, else what
// happened instead.
func (d *soakDevices) authRefused(ctx context.Context, id, tok string) error {
	key, err := companion.LoadKey(d.keys[id])
	if err != nil {
		d.t.Fatal(err)
	}
	_, _, err = companion.AuthAt(ctx, d.now, d.url, key, id, tok)
	var pe *companion.ProtocolError
	if errors.As(err, &pe) {
		return nil
	}
	if err == nil {
		return errors.New("it authenticates")
	}
	return fmt.Errorf("auth failed, but not by the server's refusal: %w", err)
}
