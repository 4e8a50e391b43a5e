package storetest

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pairgate/pairgate/store"
)

// deviceRequest builds a pending device request for a key named n, made at
// created and expiring ten minutes later.
func deviceRequest(n string, created time.Time) store.DeviceRequest {
	pub := sha256.Sum256([]byte("public key " + n))
	id := sha256.Sum256(pub[:])
	return store.DeviceRequest{
		ID: "dreq_" + n, DeviceID: hex.EncodeToString(id[:]), PublicKey: pub[:], Name: "Pixel " + n, Platform: "android",
		Role: "node", Scopes: []string{"chat", "files"}, Label: "kitchen", CheckCode: "012345",
		CreatedAt: created, ExpiresAt: created.Add(10 * minute), Status: store.DevicePending,
	}
}

func tokenHashOf(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

func testSigningKeys(t *testing.T, b Backend) {
	f := newFixture(t, b)
	keys, err := f.s.SigningKeys(f.ctx)
	if err != nil || len(keys) != 0 {
		t.Fatalf("a new store has keys %v (%v)", keys, err)
	}
	if err := f.s.RotateSigningKey(f.ctx, "k1", at(0), at(-hour), alice); err != nil {
		t.Fatal(err)
	}
	if err := f.s.RotateSigningKey(f.ctx, "k2", at(minute), at(minute-hour), alice); err != nil {
		t.Fatal(err)
	}
	keys, _ = f.s.SigningKeys(f.ctx)
	want := []store.SigningKey{{KID: "k2", CreatedAt: at(minute)}, {KID: "k1", CreatedAt: at(0), RetiredAt: at(minute)}}
	if diff := cmp.Diff(want, keys); diff != "" {
		t.Fatalf("after one rotation (-want +got):\n%s", diff)
	}
	if err := f.s.RotateSigningKey(f.ctx, "k2", at(2*minute), at(0), alice); err == nil {
		t.Error("a kid used before was accepted again")
	}
	// Two hours later k1 is dropped: its tokens have all expired.
	if err := f.s.RotateSigningKey(f.ctx, "k3", at(2*hour), at(hour), alice); err != nil {
		t.Fatal(err)
	}
	keys, _ = f.s.SigningKeys(f.ctx)
	if len(keys) != 2 || keys[0].KID != "k3" || keys[1].KID != "k2" {
		t.Fatalf("after dropping: %+v", keys)
	}
	if err := f.s.RecordSetupIssued(f.ctx, "node", "kitchen", alice, at(0)); err != nil {
		t.Fatal(err)
	}
	changes, _ := f.s.Changes(f.ctx, 0, 100)
	var kinds []store.ChangeKind
	for _, c := range changes {
		kinds = append(kinds, c.Kind)
	}
	wantKinds := []store.ChangeKind{store.KindKeyRotated, store.KindKeyRotated, store.KindKeyRotated, store.KindSetupIssued}
	if diff := cmp.Diff(wantKinds, kinds); diff != "" {
		t.Errorf("change kinds (-want +got):\n%s", diff)
	}
}

func testDevices(t *testing.T, b Backend) {
	f := newFixture(t, b)
	r := deviceRequest("a", at(0))
	if err := f.s.CreateDeviceRequest(f.ctx, r, "jti-a", at(10*minute), gate); err != nil {
		t.Fatal(err)
	}
	if err := f.s.CreateDeviceRequest(f.ctx, deviceRequest("b", at(0)), "jti-a", at(10*minute), gate); !errors.Is(err, store.ErrTokenUsed) {
		t.Fatalf("second use of a jti: %v, want ErrTokenUsed", err)
	}
	got, err := f.s.GetDeviceRequest(f.ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(r, got); diff != "" {
		t.Errorf("GetDeviceRequest (-want +got):\n%s", diff)
	}
	if _, err := f.s.GetDeviceRequest(f.ctx, "dreq_none"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown request: %v", err)
	}
	list, _ := f.s.ListDeviceRequests(f.ctx, at(minute))
	if len(list) != 1 || list[0].ID != r.ID {
		t.Errorf("ListDeviceRequests: %+v", list)
	}
	if list, _ := f.s.ListDeviceRequests(f.ctx, at(10*minute)); len(list) != 0 {
		t.Errorf("an expired request is listed: %+v", list)
	}
	if _, err := f.s.DeliverDeviceToken(f.ctx, r.ID, tokenHashOf("t0"), at(minute)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("delivering before approval: %v", err)
	}
	approved, err := f.s.DecideDeviceRequest(f.ctx, r.ID, true, alice, at(minute))
	if err != nil {
		t.Fatal(err)
	}
	if approved.Status != store.DeviceApproved || approved.DecidedBy != alice.Name || !approved.DecidedAt.Equal(at(minute)) {
		t.Errorf("approved request: %+v", approved)
	}
	if _, err := f.s.DecideDeviceRequest(f.ctx, r.ID, false, alice, at(minute)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("rejecting an approved request: %v", err)
	}
	d, err := f.s.DeliverDeviceToken(f.ctx, r.ID, tokenHashOf("t1"), at(2*minute))
	if err != nil {
		t.Fatal(err)
	}
	want := store.Device{DeviceID: r.DeviceID, PublicKey: r.PublicKey, Name: r.Name, Platform: r.Platform, Role: r.Role,
		Scopes: r.Scopes, Label: r.Label, TokenHash: tokenHashOf("t1"), RequestID: r.ID, PairedAt: at(2 * minute), LastSeenAt: at(2 * minute)}
	if diff := cmp.Diff(want, d); diff != "" {
		t.Errorf("DeliverDeviceToken (-want +got):\n%s", diff)
	}
	if _, err := f.s.DeliverDeviceToken(f.ctx, r.ID, tokenHashOf("t2"), at(2*minute)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second delivery: %v", err)
	}
	if got, _ := f.s.GetDevice(f.ctx, r.DeviceID); !cmp.Equal(got.TokenHash, tokenHashOf("t1")) {
		t.Error("a refused second delivery changed the token")
	}

	rotated, err := f.s.RotateDeviceToken(f.ctx, r.DeviceID, tokenHashOf("t3"), alice, at(3*minute))
	if err != nil || !cmp.Equal(rotated.TokenHash, tokenHashOf("t3")) {
		t.Fatalf("rotate: %+v %v", rotated, err)
	}
	if err := f.s.TouchDevice(f.ctx, r.DeviceID, at(4*minute)); err != nil {
		t.Fatal(err)
	}
	revoked, err := f.s.RevokeDevice(f.ctx, r.DeviceID, alice, at(5*minute))
	if err != nil || !revoked.RevokedAt.Equal(at(5*minute)) || !revoked.LastSeenAt.Equal(at(4*minute)) {
		t.Fatalf("revoke: %+v %v", revoked, err)
	}
	if _, err := f.s.RotateDeviceToken(f.ctx, r.DeviceID, tokenHashOf("t4"), alice, at(6*minute)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("rotating a revoked device: %v", err)
	}
	if _, err := f.s.RevokeDevice(f.ctx, r.DeviceID, alice, at(6*minute)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("revoking twice: %v", err)
	}
	devices, _ := f.s.ListDevices(f.ctx)
	if len(devices) != 1 || devices[0].RevokedAt.IsZero() {
		t.Errorf("ListDevices: %+v", devices)
	}
	// Paired again, from a setup code with another label: the device
	// takes the new request's label.
	again := deviceRequest("a", at(6*minute))
	again.ID, again.Label = "dreq_again", "office"
	if err := f.s.CreateDeviceRequest(f.ctx, again, "jti-again", at(16*minute), gate); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.DecideDeviceRequest(f.ctx, again.ID, true, alice, at(6*minute)); err != nil {
		t.Fatal(err)
	}
	if d, err := f.s.DeliverDeviceToken(f.ctx, again.ID, tokenHashOf("t5"), at(6*minute)); err != nil || d.Label != "office" || !d.RevokedAt.IsZero() {
		t.Errorf("paired again with label office: %+v %v", d, err)
	}
	if err := f.s.RemoveDevice(f.ctx, r.DeviceID, alice, at(7*minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.GetDevice(f.ctx, r.DeviceID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("removed device: %v", err)
	}
	if err := f.s.RemoveDevice(f.ctx, r.DeviceID, alice, at(7*minute)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("removing twice: %v", err)
	}

	// Rejection and expiry.
	rej := deviceRequest("r", at(0))
	f.s.CreateDeviceRequest(f.ctx, rej, "jti-r", at(10*minute), gate)
	if got, err := f.s.DecideDeviceRequest(f.ctx, rej.ID, false, alice, at(minute)); err != nil || got.Status != store.DeviceRejected {
		t.Errorf("reject: %+v %v", got, err)
	}
	exp := deviceRequest("e", at(0))
	f.s.CreateDeviceRequest(f.ctx, exp, "jti-e", at(10*minute), gate)
	if _, err := f.s.DecideDeviceRequest(f.ctx, exp.ID, true, alice, at(10*minute)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("approving an expired request: %v", err)
	}

	changes, _ := f.s.Changes(f.ctx, 0, 100)
	var kinds []store.ChangeKind
	for _, c := range changes {
		kinds = append(kinds, c.Kind)
		if c.DeviceID == "" {
			t.Errorf("change %d (%s) names no device", c.Seq, c.Kind)
		}
	}
	wantKinds := []store.ChangeKind{store.KindDeviceRequested, store.KindDeviceApproved, store.KindDevicePaired,
		store.KindDeviceRotated, store.KindDeviceRevoked,
		store.KindDeviceRequested, store.KindDeviceApproved, store.KindDevicePaired, store.KindDeviceRemoved,
		store.KindDeviceRequested, store.KindDeviceRejected, store.KindDeviceRequested}
	if diff := cmp.Diff(wantKinds, kinds); diff != "" {
		t.Errorf("change kinds (-want +got):\n%s", diff)
	}
}

// testDeviceRaces: one setup token presented by 8 devices at once, 8
// concurrent decisions, and 8 concurrent deliveries: exactly one wins each
// (OpenClaw #78276 revived a consumed token through such a race).
func testDeviceRaces(t *testing.T, b Backend) {
	f := newFixture(t, b)
	stores := []store.Store{f.s, f.open()}
	for trial := 0; trial < 5; trial++ {
		var wins, used atomic.Int32
		var winner atomic.Value
		var wg sync.WaitGroup
		jti := "jti-race-" + string(rune('a'+trial))
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := deviceRequest(string(rune('a'+trial))+string(rune('0'+g)), at(0))
				err := stores[g%2].CreateDeviceRequest(f.ctx, r, jti, at(10*minute), gate)
				switch {
				case err == nil:
					wins.Add(1)
					winner.Store(r.ID)
				case errors.Is(err, store.ErrTokenUsed):
					used.Add(1)
				default:
					t.Errorf("unexpected error: %v", err)
				}
			}()
		}
		wg.Wait()
		if wins.Load() != 1 || used.Load() != 7 {
			t.Fatalf("trial %d: %d devices paired with one token, %d refused; want 1 and 7", trial, wins.Load(), used.Load())
		}
		id := winner.Load().(string)
		var decided atomic.Int32
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := stores[g%2].DecideDeviceRequest(f.ctx, id, g%2 == 0, alice, at(minute)); err == nil {
					decided.Add(1)
				}
			}()
		}
		wg.Wait()
		if decided.Load() != 1 {
			t.Fatalf("trial %d: %d decisions won, want 1", trial, decided.Load())
		}
		r, _ := f.s.GetDeviceRequest(f.ctx, id)
		if r.Status != store.DeviceApproved {
			continue
		}
		var delivered atomic.Int32
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := stores[g%2].DeliverDeviceToken(f.ctx, id, tokenHashOf(id+string(rune('0'+g))), at(2*minute)); err == nil {
					delivered.Add(1)
				}
			}()
		}
		wg.Wait()
		if delivered.Load() != 1 {
			t.Fatalf("trial %d: the device token went out %d times, want once", trial, delivered.Load())
		}
	}
}
