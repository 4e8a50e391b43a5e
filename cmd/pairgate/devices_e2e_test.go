package main_test

// Operating paired devices from the CLI: ids by unique prefix, and a
// listing that fits the terminal.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/pairgate/pairgate/store"
	"github.com/pairgate/pairgate/store/sqlite"
)

// seedDevices pairs devices straight in the store of home (the protocol is
// tested elsewhere): one per id, with the request's name, platform and
// label. Ids need not be hashes of real keys here.
func seedDevices(t *testing.T, home string, devices ...store.DeviceRequest) {
	t.Helper()
	if r := devRun(t, home, quietEnv(), "pairing", "list"); r.code != 0 {
		t.Fatalf("pairing list: exit %d\n%s", r.code, r.stderr)
	}
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(home, "pairgate.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now().Add(-time.Minute)
	for _, d := range devices {
		d.ID = "dreq_" + d.DeviceID[:16]
		d.PublicKey = make([]byte, 32)
		d.Status, d.CreatedAt, d.ExpiresAt = store.DevicePending, now, now.Add(10*time.Minute)
		if d.Role == "" {
			d.Role = "node"
		}
		actor := store.Actor{Name: "test", Source: "test"}
		createDeviceRequest(t, st, d, actor)
		if _, err := st.DecideDeviceRequest(ctx, d.ID, true, actor, now); err != nil {
			t.Fatal(err)
		}
		hash := sha256.Sum256([]byte(d.ID))
		if _, err := st.DeliverDeviceToken(ctx, d.ID, hash[:], now); err != nil {
			t.Fatal(err)
		}
	}
}

// fakeID is a device id: prefix, then hex digits from seed.
func fakeID(prefix, seed string) string {
	h := sha256.Sum256([]byte(seed))
	return (prefix + hex.EncodeToString(h[:]))[:64]
}

// TestDeviceIDPrefix: every command that takes a device id takes a unique
// prefix of at least 8 hex characters too, in the CLI and the API; an
// ambiguous prefix is refused naming how many devices it matches.
func TestDeviceIDPrefix(t *testing.T) {
	home := t.TempDir()
	a, b, c := fakeID("abcdef01a", "a"), fakeID("abcdef01b", "b"), fakeID("12345678", "c")
	seedDevices(t, home, store.DeviceRequest{DeviceID: a, Name: "Pixel"}, store.DeviceRequest{DeviceID: b, Name: "iPad"},
		store.DeviceRequest{DeviceID: c, Name: "Pi"})

	refused := []struct {
		args  []string
		code  int
		class string
		says  string
	}{
		{[]string{"devices", "revoke", "abcdef01"}, 1, "ambiguous", "matches 2 devices"},
		{[]string{"devices", "rotate", "ABCDEF01"}, 1, "ambiguous", "matches 2 devices"},
		{[]string{"devices", "remove", "1234567"}, 2, "invalid_input", `device id "1234567"`},
		{[]string{"devices", "revoke", "12345678-"}, 2, "invalid_input", `device id "12345678-"`},
		{[]string{"devices", "revoke", "ffffffff"}, 1, "not_found", "ffffffff"},
	}
	for _, tt := range refused {
		r := devRun(t, home, quietEnv(), tt.args...)
		if r.code != tt.code || !strings.Contains(r.stderr, tt.says) {
			t.Errorf("%q: exit %d, stderr %q; want exit %d saying %q", tt.args, r.code, r.stderr, tt.code, tt.says)
		}
		var e jsonError
		r = devRun(t, home, quietEnv(), append(tt.args, "--json")...)
		if err := devStrict([]byte(r.stderr), &e); err != nil || e.Error.Code != tt.class {
			t.Errorf("%q --json: stderr %q; want the code %s", tt.args, r.stderr, tt.class)
		}
	}

	var rev struct{ Revoked devDevice }
	devRunJSON(t, home, quietEnv(), &rev, "devices", "revoke", "12345678")
	if rev.Revoked.DeviceID != c || rev.Revoked.RevokedAt == nil {
		t.Errorf("revoke 12345678: %+v, want %s revoked", rev.Revoked, c)
	}
	var rot devRotated
	devRunJSON(t, home, quietEnv(), &rot, "devices", "rotate", strings.ToUpper(a[:9]))
	if rot.DeviceID != a || rot.DeviceToken == "" {
		t.Errorf("rotate %s: %+v, want a new token for %s", strings.ToUpper(a[:9]), rot, a)
	}
	if r := devRun(t, home, quietEnv(), "devices", "remove", b[:12]); r.code != 0 || !strings.Contains(r.stdout, "Removed device "+b) {
		t.Errorf("remove %s: exit %d, stdout %q, stderr %q; want it to name %s", b[:12], r.code, r.stdout, r.stderr, b)
	}

	// The API resolves prefixes the same way: it is one rule, in the
	// device service.
	d := startServe(t, home)
	client := &http.Client{Timeout: 5 * time.Second}
	status, body, err := d.do(client, "POST", "/v1/devices/"+a[:10]+"/revoke", d.adminToken(), "")
	if err != nil || status != 200 || !strings.Contains(string(body), a) {
		t.Errorf("POST /v1/devices/%s/revoke: %d %s %v; want 200 revoking %s", a[:10], status, body, err, a)
	}
	seedDevices(t, home, store.DeviceRequest{DeviceID: fakeID("abcdef01c", "d"), Name: "Mac"})
	status, body, _ = d.do(client, "POST", "/v1/devices/abcdef01/rotate", d.adminToken(), "")
	if status != 409 || !strings.Contains(string(body), `"code":"ambiguous"`) {
		t.Errorf("POST /v1/devices/abcdef01/rotate with two matches: %d %s; want 409 ambiguous", status, body)
	}
	status, body, _ = d.do(client, "POST", "/v1/devices/abc/revoke", d.adminToken(), "")
	if status != 400 || !strings.Contains(string(body), `"code":"invalid_input"`) {
		t.Errorf("POST /v1/devices/abc/revoke: %d %s; want 400 invalid_input", status, body)
	}
}

// TestDevicesListFits100Columns: `devices list` shows each device's label
// (the setup code's), ids short enough to type and long enough to use as
// a prefix, and every line of a realistic listing, and of one with names
// and labels at their longest, fits 100 columns.
func TestDevicesListFits100Columns(t *testing.T) {
	home := t.TempDir()
	ids := []string{fakeID("", "ana"), fakeID("", "pi"), fakeID("", "mac")}
	seedDevices(t, home,
		store.DeviceRequest{DeviceID: ids[0], Name: "Ana's Pixel 9", Platform: "android", Label: "Ana's phone"},
		store.DeviceRequest{DeviceID: ids[1], Name: "kitchen-pi", Platform: "linux", Label: "kitchen wall"},
		store.DeviceRequest{DeviceID: ids[2], Name: "Büro MacBook Pro", Platform: "macos", Role: "operator", Label: "office"})
	if r := devRun(t, home, quietEnv(), "devices", "revoke", ids[1]); r.code != 0 {
		t.Fatalf("revoke: %s", r.stderr)
	}
	seedRequest(t, home, store.DeviceRequest{ID: "dreq_ramsep242kldeell", DeviceID: fakeID("", "tab"), Name: "Galaxy Tab S9",
		Platform: "android", Role: "node", Label: "living room", CheckCode: "431805"})

	r := devRun(t, home, quietEnv(), "devices", "list")
	if r.code != 0 {
		t.Fatalf("devices list: exit %d\n%s", r.code, r.stderr)
	}
	widest(t, "a realistic devices list", r.stdout, 100)
	for _, want := range []string{"Ana's phone", "kitchen wall", "office", "living room", "431805", "revoked", "active"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("devices list does not show %q:\n%s", want, r.stdout)
		}
	}
	// The id shown is a prefix the other commands take.
	var shown string
	for _, l := range lines(r.stdout) {
		if strings.Contains(l, "Büro MacBook Pro") {
			shown = strings.Fields(l)[0]
		}
	}
	if len(shown) < 8 || !strings.HasPrefix(ids[2], shown) {
		t.Fatalf("the row of Büro MacBook Pro starts with %q, want a prefix of %s:\n%s", shown, ids[2], r.stdout)
	}
	if r := devRun(t, home, quietEnv(), "devices", "rotate", shown); r.code != 0 {
		t.Errorf("devices rotate %s (the id as listed): exit %d\n%s", shown, r.code, r.stderr)
	}
	var l devListing
	devRunJSON(t, home, quietEnv(), &l, "devices", "list")
	var labels []string
	for _, d := range l.Devices {
		labels = append(labels, d.Label)
	}
	slices.Sort(labels)
	if len(l.Requests) != 1 || l.Requests[0].Label != "living room" || !slices.Equal(labels, []string{"Ana's phone", "kitchen wall", "office"}) {
		t.Errorf("devices list --json labels: %+v", l)
	}

	// Names, platforms and labels as long as the store keeps them.
	long := t.TempDir()
	seedDevices(t, long, store.DeviceRequest{DeviceID: fakeID("", "long"), Name: strings.Repeat("N", 64), Platform: strings.Repeat("p", 32),
		Role: "operator", Label: strings.Repeat("L", 64)})
	seedRequest(t, long, store.DeviceRequest{ID: "dreq_ramsep242kldeell", DeviceID: fakeID("", "long2"), Name: strings.Repeat("N", 64),
		Platform: strings.Repeat("p", 32), Role: "operator", Label: strings.Repeat("L", 64), CheckCode: "431805"})
	r = devRun(t, long, quietEnv(), "devices", "list")
	widest(t, "devices list with the longest fields", r.stdout, 100)
	if !strings.Contains(r.stdout, "NNNN…") || !strings.Contains(r.stdout, "LLLL…") {
		t.Errorf("long names and labels are not shown cut with an ellipsis:\n%s", r.stdout)
	}
}

// seedRequest puts a pending device request straight in the store.
func seedRequest(t *testing.T, home string, r store.DeviceRequest) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(home, "pairgate.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now()
	r.PublicKey, r.Status, r.CreatedAt, r.ExpiresAt = make([]byte, 32), store.DevicePending, now, now.Add(10*time.Minute)
	createDeviceRequest(t, st, r, store.Actor{Name: "test", Source: "test"})
}

// createDeviceRequest stores r as a device that presented a setup code made
// for it a moment before, as the /pair handler does.
func createDeviceRequest(t *testing.T, st *sqlite.Store, r store.DeviceRequest, actor store.Actor) {
	t.Helper()
	id := sha256.Sum256([]byte(r.ID))
	tok := store.SetupToken{ID: hex.EncodeToString(id[:12]), KID: 1, Role: r.Role, Label: r.Label, URL: "wss://gw.example.com/pair",
		CreatedAt: r.CreatedAt, ExpiresAt: r.CreatedAt.Add(10 * time.Minute)}
	if err := st.CreateSetupToken(context.Background(), tok, r.CreatedAt.Add(-time.Hour), actor); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateDeviceRequest(context.Background(), r, tok.ID, actor); err != nil {
		t.Fatal(err)
	}
}

// widest fails if a line of out is wider than limit characters.
func widest(t *testing.T, what, out string, limit int) {
	t.Helper()
	for _, l := range lines(out) {
		if n := utf8.RuneCountInString(l); n > limit {
			t.Errorf("%s: a line of %d characters, more than %d:\n%s\nall of it:\n%s", what, n, limit, l, out)
		}
	}
}
