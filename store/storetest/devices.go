package storetest

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
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
		Role: "node", Scopes: []string{"chat", "files"}, Label: "kitchen", CheckCode: "012345", Remote: "192.0.2." + n,
		CreatedAt: created, ExpiresAt: created.Add(10 * minute), Status: store.DevicePending,
	}
}

func tokenHashOf(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// key is setup-token key n made at created.
func key(n uint8, created time.Time) store.SigningKey {
	return store.SigningKey{KID: n, CreatedAt: created}
}

func testSigningKeys(t *testing.T, b Backend) {
	f := newFixture(t, b)
	keys, err := f.s.SigningKeys(f.ctx)
	if err != nil || len(keys) != 0 {
		t.Fatalf("a new store has keys %v (%v)", keys, err)
	}
	k1, k2 := key(1, at(0)), key(2, at(minute))
	if err := f.s.RotateSigningKey(f.ctx, k1, at(-hour), alice); err != nil {
		t.Fatal(err)
	}
	if err := f.s.RotateSigningKey(f.ctx, k2, at(minute-hour), alice); err != nil {
		t.Fatal(err)
	}
	keys, _ = f.s.SigningKeys(f.ctx)
	retired := k1
	retired.RetiredAt = at(minute)
	if diff := cmp.Diff([]store.SigningKey{k2, retired}, keys); diff != "" {
		t.Fatalf("after one rotation (-want +got):\n%s", diff)
	}
	// A number still kept is refused, and the refusal changes nothing.
	for _, k := range []store.SigningKey{key(2, at(2*minute)), key(1, at(2*minute))} {
		if err := f.s.RotateSigningKey(f.ctx, k, at(0), alice); !errors.Is(err, store.ErrKeyInUse) {
			t.Errorf("key %d while key %d is kept: %v, want ErrKeyInUse", k.KID, k.KID, err)
		}
	}
	if again, _ := f.s.SigningKeys(f.ctx); !cmp.Equal(keys, again) {
		t.Errorf("a refused rotation changed the keys: %+v", again)
	}
	// Two hours later key 1 is dropped (its tokens have all expired), so
	// its number can name a new key.
	k1b := key(1, at(2*hour))
	if err := f.s.RotateSigningKey(f.ctx, k1b, at(hour), alice); err != nil {
		t.Fatal(err)
	}
	keys, _ = f.s.SigningKeys(f.ctx)
	if diff := cmp.Diff([]store.SigningKey{k1b, {KID: 2, CreatedAt: at(minute), RetiredAt: at(2 * hour)}}, keys); diff != "" {
		t.Fatalf("after dropping key 1 and reusing its number (-want +got):\n%s", diff)
	}
	changes, _ := f.s.Changes(f.ctx, 0, 100)
	var got []string
	for _, c := range changes {
		got = append(got, string(c.Kind)+" "+c.Detail)
	}
	want := []string{"key.rotated kid 1", "key.rotated kid 2", "key.rotated kid 1"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
}

// setupToken is a setup token (not yet stored) with id n, issued at
// created for ten minutes.
func setupToken(n string, created time.Time) store.SetupToken {
	id := sha256.Sum256([]byte("setup token " + n))
	return store.SetupToken{ID: hex.EncodeToString(id[:12]), KID: 1, Role: "node", Scopes: []string{"chat"}, Label: "kitchen",
		URL: "wss://gw.example.com/pair", CreatedAt: created, ExpiresAt: created.Add(10 * minute)}
}

// issue stores a setup token with id n issued at created.
func (f *fixture) issue(n string, created time.Time) store.SetupToken {
	f.t.Helper()
	t := setupToken(n, created)
	if err := f.s.CreateSetupToken(f.ctx, t, created.Add(-hour), alice); err != nil {
		f.t.Fatalf("CreateSetupToken(%s): %v", n, err)
	}
	return t
}

func testSetupTokens(t *testing.T, b Backend) {
	f := newFixture(t, b)
	tok := f.issue("a", at(0))
	got, err := f.s.GetSetupToken(f.ctx, tok.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(tok, got); diff != "" {
		t.Errorf("GetSetupToken (-want +got):\n%s", diff)
	}
	if _, err := f.s.GetSetupToken(f.ctx, setupToken("none", at(0)).ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown setup token: %v, want ErrNotFound", err)
	}
	dup := setupToken("a", at(minute))
	dup.Role = "operator"
	if err := f.s.CreateSetupToken(f.ctx, dup, at(0), alice); err == nil {
		t.Error("a second setup token with the same id was stored")
	}
	if got, _ := f.s.GetSetupToken(f.ctx, tok.ID); got.Role != "node" {
		t.Errorf("a refused duplicate changed the stored token: %+v", got)
	}
	bare := setupToken("bare", at(0))
	bare.Scopes, bare.Label = nil, ""
	if err := f.s.CreateSetupToken(f.ctx, bare, at(-hour), ops); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.s.GetSetupToken(f.ctx, bare.ID); got.Scopes == nil || len(got.Scopes) != 0 {
		t.Errorf("no scopes read back as %#v, want an empty list", got.Scopes)
	}
	// Each code issued is recorded, with its role and label.
	var details []string
	for _, c := range f.since(0) {
		if c.Kind != store.KindSetupIssued || !c.At.Equal(at(0)) {
			t.Errorf("change %s at %v", c.Kind, c.At)
		}
		details = append(details, c.Actor.Name+": "+c.Detail)
	}
	if diff := cmp.Diff([]string{"cli:alice: role node, label kitchen", "token:ops: role node"}, details); diff != "" {
		t.Errorf("change details (-want +got):\n%s", diff)
	}

	// Issuing purges the tokens expired at or before the cutoff, used or
	// not, and nothing else: a flood of codes leaves only the live ones.
	if err := f.s.CreateDeviceRequest(f.ctx, deviceRequest("a", at(minute)), tok.ID, gate); err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		f.issue(fmt.Sprint("flood", i), at(time.Duration(i)*minute))
	}
	for _, n := range []string{"a", "bare", "flood0", "flood129"} {
		if _, err := f.s.GetSetupToken(f.ctx, setupToken(n, at(0)).ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("setup token %s, expired over an hour before the last issue, is still stored (%v)", n, err)
		}
	}
	for _, n := range []string{"flood130", "flood199"} {
		if _, err := f.s.GetSetupToken(f.ctx, setupToken(n, at(0)).ID); err != nil {
			t.Errorf("setup token %s, expired within the hour: %v", n, err)
		}
	}
}

// testSetupTokenUse: a setup token is consumed once, by the first device
// request made with it while it is live.
func testSetupTokenUse(t *testing.T, b Backend) {
	f := newFixture(t, b)
	tok := f.issue("a", at(0))
	old := f.issue("old", at(0))
	r := deviceRequest("a", at(minute))
	if err := f.s.CreateDeviceRequest(f.ctx, r, tok.ID, gate); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.s.GetSetupToken(f.ctx, tok.ID); !got.UsedAt.Equal(at(minute)) {
		t.Errorf("UsedAt = %v, want %v", got.UsedAt, at(minute))
	}
	seq := f.lastSeq()
	// A second use within the token's lifetime, by another device.
	if err := f.s.CreateDeviceRequest(f.ctx, deviceRequest("b", at(2*minute)), tok.ID, gate); !errors.Is(err, store.ErrTokenUsed) {
		t.Errorf("second use: %v, want ErrTokenUsed", err)
	}
	if got, _ := f.s.GetSetupToken(f.ctx, tok.ID); !got.UsedAt.Equal(at(minute)) {
		t.Errorf("a refused second use moved UsedAt to %v", got.UsedAt)
	}
	// An expired token, and one never issued.
	if err := f.s.CreateDeviceRequest(f.ctx, deviceRequest("c", at(10*minute)), old.ID, gate); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("use at expiry: %v, want ErrNotFound", err)
	}
	if err := f.s.CreateDeviceRequest(f.ctx, deviceRequest("d", at(minute)), setupToken("never", at(0)).ID, gate); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("use of a token never issued: %v, want ErrNotFound", err)
	}
	f.checkChanges("after refused uses", seq)
	for _, n := range []string{"b", "c", "d"} {
		if _, err := f.s.GetDeviceRequest(f.ctx, "dreq_"+n); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("a refused use stored request dreq_%s (%v)", n, err)
		}
	}
	if got, _ := f.s.GetSetupToken(f.ctx, old.ID); !got.UsedAt.IsZero() {
		t.Errorf("a refused use consumed the expired token: %+v", got)
	}
}

func testDevices(t *testing.T, b Backend) {
	f := newFixture(t, b)
	r := deviceRequest("a", at(0))
	tok := f.issue("a", at(0))
	seq := f.lastSeq()
	if err := f.s.CreateDeviceRequest(f.ctx, r, tok.ID, gate); err != nil {
		t.Fatal(err)
	}
	if err := f.s.CreateDeviceRequest(f.ctx, deviceRequest("b", at(0)), tok.ID, gate); !errors.Is(err, store.ErrTokenUsed) {
		t.Fatalf("second use of a setup token: %v, want ErrTokenUsed", err)
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
	if err := f.s.CreateDeviceRequest(f.ctx, again, f.issue("again", at(6*minute)).ID, gate); err != nil {
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
	f.s.CreateDeviceRequest(f.ctx, rej, f.issue("r", at(0)).ID, gate)
	if got, err := f.s.DecideDeviceRequest(f.ctx, rej.ID, false, alice, at(minute)); err != nil || got.Status != store.DeviceRejected {
		t.Errorf("reject: %+v %v", got, err)
	}
	exp := deviceRequest("e", at(0))
	f.s.CreateDeviceRequest(f.ctx, exp, f.issue("e", at(0)).ID, gate)
	if _, err := f.s.DecideDeviceRequest(f.ctx, exp.ID, true, alice, at(10*minute)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("approving an expired request: %v", err)
	}

	var kinds []store.ChangeKind
	for _, c := range f.since(seq) {
		if c.Kind == store.KindSetupIssued {
			continue
		}
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

// testDeviceRaces: one setup token presented by 8 devices at once through
// 4 stores on one database, 8 concurrent decisions, and 8 concurrent
// deliveries: exactly one wins each (OpenClaw #78276 revived a consumed
// token through such a race).
func testDeviceRaces(t *testing.T, b Backend) {
	f := newFixture(t, b)
	stores := []store.Store{f.s, f.open(), f.open(), f.open()}
	for trial := 0; trial < 5; trial++ {
		var wins, used atomic.Int32
		var winner atomic.Value
		var wg sync.WaitGroup
		tok := f.issue("race"+string(rune('a'+trial)), at(0))
		start := make(chan struct{})
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := deviceRequest(string(rune('a'+trial))+string(rune('0'+g)), at(0))
				<-start
				err := stores[g%len(stores)].CreateDeviceRequest(f.ctx, r, tok.ID, gate)
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
		close(start)
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
				if _, err := stores[g%len(stores)].DecideDeviceRequest(f.ctx, id, g%2 == 0, alice, at(minute)); err == nil {
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
				if _, err := stores[g%len(stores)].DeliverDeviceToken(f.ctx, id, tokenHashOf(id+string(rune('0'+g))), at(2*minute)); err == nil {
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
