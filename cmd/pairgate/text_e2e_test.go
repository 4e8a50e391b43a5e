package main_test

// Text from outside (a device's name, a sender's display name, a server's
// error message) never reaches the operator's terminal raw: SPEC section 4.

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/coder/websocket"

	"github.com/pairgate/pairgate/device"
	"github.com/pairgate/pairgate/device/companion"
	"github.com/pairgate/pairgate/store"
	"github.com/pairgate/pairgate/store/sqlite"
)

// rawText fails if out holds anything a terminal would obey rather than
// show: a control character other than the newlines between lines, or a
// bidi control; or invalid UTF-8 (a stray 0x9b is a CSI to some terminals).
func rawText(t *testing.T, what, out string) {
	t.Helper()
	if !utf8.ValidString(out) {
		t.Errorf("%s: output is not valid UTF-8: %q", what, out)
	}
	for _, r := range out {
		if r != '\n' && (unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r)) {
			t.Errorf("%s: output holds %U raw:\n%q", what, r, out)
			return
		}
	}
}

// lines splits output into its lines, without the final newline.
func lines(out string) []string { return strings.Split(strings.TrimSuffix(out, "\n"), "\n") }

// TestForgedDeviceNameEndToEnd: a device whose name carries a NUL, a
// clear-screen sequence and a newline followed by a fake row pairs with the
// real daemon; what the operator's `devices list` prints has exactly the
// rows there are, with the real check code, and nothing a terminal obeys.
func TestForgedDeviceNameEndToEnd(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	d := startServe(t, home)
	var setup devSetup
	devRunJSON(t, home, nil, &setup, "setup-code", "--public-url", "ws://"+devAddr(d))

	const (
		evilName     = "a\u0000b\u001b[2J\nFAKE"
		evilPlatform = "linux\u001b]0;pwned\u0007\u009b\u202e"
	)
	keyFile := filepath.Join(t.TempDir(), "device.key")
	out := &serveBuf{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	paired := make(chan error, 1)
	go func() {
		_, err := companion.Pair(ctx, companion.Options{SetupCode: setup.SetupCode, Name: evilName, Platform: evilPlatform,
			KeyFile: keyFile, Out: out})
		paired <- err
	}()

	l := pollRequests(t, func() devListing {
		var l devListing
		devRunJSON(t, home, nil, &l, "devices", "list")
		return l
	})
	req := l.Requests[0]
	if req.Name != "ab[2JFAKE" || req.Platform != "linux]0;pwned" {
		t.Errorf("devices list --json: name %q, platform %q; want the controls dropped: \"ab[2JFAKE\", \"linux]0;pwned\"", req.Name, req.Platform)
	}
	if len(req.Name) > device.MaxNameLen || len(req.Platform) > device.MaxPlatformLen {
		t.Errorf("stored name %d bytes, platform %d bytes", len(req.Name), len(req.Platform))
	}

	r := devRun(t, home, nil, "devices", "list")
	if r.code != 0 {
		t.Fatalf("devices list: exit %d\n%s", r.code, r.stderr)
	}
	rawText(t, "devices list", r.stdout)
	got := lines(r.stdout)
	// Header, the one request, a blank line, the hint, a blank line, no devices.
	if len(got) != 6 || !strings.HasPrefix(got[0], "REQUEST ID") || got[5] != "No paired devices." {
		t.Fatalf("devices list printed %d lines, want 6:\n%s", len(got), r.stdout)
	}
	if f := strings.Fields(got[1]); len(f) < 2 || f[0] != req.RequestID || f[1] != req.CheckCode {
		t.Errorf("the request row %q: want request id %s and check code %s in the first two columns", got[1], req.RequestID, req.CheckCode)
	}
	if n := len(regexp.MustCompile(`\b\d{6}\b`).FindAllString(r.stdout, -1)); n != 1 {
		t.Errorf("devices list shows %d six-digit codes, want only the real one:\n%s", n, r.stdout)
	}
	if !strings.Contains(out.String(), "Check code: "+req.CheckCode) {
		t.Errorf("the device shows another check code than the operator sees (%s):\n%s", req.CheckCode, out)
	}

	if r := devRun(t, home, nil, "devices", "approve", req.RequestID); r.code != 0 {
		t.Fatalf("devices approve: exit %d\n%s", r.code, r.stderr)
	} else {
		rawText(t, "devices approve", r.stdout)
	}
	select {
	case err := <-paired:
		if err != nil {
			t.Fatalf("companion.Pair: %v\n%s", err, out)
		}
	case <-ctx.Done():
		t.Fatalf("the device was not paired:\n%s", out)
	}
	r = devRun(t, home, nil, "devices", "list")
	rawText(t, "devices list after pairing", r.stdout)
	got = lines(r.stdout)
	if len(got) != 4 || got[0] != "No pending device requests." || !strings.HasPrefix(got[2], "DEVICE ID") || !strings.Contains(got[3], "ab[2JFAKE") {
		t.Errorf("devices list after pairing, want 4 lines with the cleaned name:\n%s", r.stdout)
	}
}

// TestCLIEscapesStoredText: rows whose text came from outside before it
// was cleaned at ingress (an older pairgate, an import, another writer of
// the store) are printed with their control characters escaped, one line
// per row.
func TestCLIEscapesStoredText(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	if r := devRun(t, home, nil, "pairing", "list"); r.code != 0 { // creates the secret and the store
		t.Fatalf("pairing list: exit %d\n%s", r.code, r.stderr)
	}
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(home, "pairgate.db")})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	scope := store.Scope{Channel: "telegram", Account: "default"}
	evil := store.Actor{Name: "owner\u001b]0;pwned\u0007", Source: "chat\u202e"}
	hash := make([]byte, 32)
	rand.Read(hash)
	if _, err := st.CreateRequest(ctx, store.CreateRequestParams{MaxPending: 3, Actor: evil, Request: store.Request{
		ID: "req_evil\u0007", Scope: scope, Sender: "111\u001b[2J", Name: "Mallory\n\u202eFAKE\u009b",
		CodeHash: hash, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Allow(ctx, store.AllowParams{Scope: scope, Senders: []store.AllowSender{{Sender: "222\r", Name: "Eve\r\nFORGED\tROW"}},
		Via: store.ViaManual, Actor: evil, Now: now}); err != nil {
		t.Fatal(err)
	}
	pub := make([]byte, 32)
	rand.Read(pub)
	dr := store.DeviceRequest{ID: "dreq_evil\u0007", DeviceID: device.DeviceID(pub), PublicKey: pub,
		Name: "a\u0000b\u001b[2J\nFAKE 999999", Platform: "linux\u009b\u202e", Role: "node", CheckCode: "123456",
		CreatedAt: now, ExpiresAt: now.Add(10 * time.Minute), Status: store.DevicePending}
	tok := store.SetupToken{ID: "00112233445566778899aabb", KID: 1, Role: "node", URL: "wss://gw.example.com/pair",
		CreatedAt: now, ExpiresAt: now.Add(10 * time.Minute)}
	if err := st.CreateSetupToken(ctx, tok, now.Add(-time.Hour), evil); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateDeviceRequest(ctx, dr, tok.ID, evil); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateToken(ctx, store.APIToken{ID: "tok_evil\u001b", Name: "ops\u001b[2J\n", Scope: store.ScopeGateway,
		Hash: hash, CreatedAt: now, CreatedBy: "cli:\u009bx"}, evil); err != nil {
		t.Fatal(err)
	}
	st.Close()

	for _, tt := range []struct {
		args  []string
		lines int
		shows []string // escaped text the operator must see
	}{
		{[]string{"pairing", "list"}, 4, []string{`111\x1b[2J`, `Mallory\n\u202eFAKE\u009b`}},
		{[]string{"pairing", "allowed"}, 2, []string{`Eve\r\nFORGED\tROW`, `owner\x1b]0;pwned\x07`}},
		// The list cuts names and platforms to fit 100 columns.
		{[]string{"devices", "list"}, 6, []string{`a\x00b\x1b[2J\n…`, `linux\u00…`, `dreq_evil\x07`}},
		{[]string{"tokens", "list"}, 2, []string{`ops\x1b[2J\n`, `cli:\u009bx`, `tok_evil\x1b`}},
		{[]string{"devices", "approve", "dreq_evil\u0007"}, 1, []string{`dreq_evil\x07`, `a\x00b\x1b[2J\nFAKE 999999`}},
		{[]string{"pairing", "approve", "telegram", "req_evil\u0007"}, 1, []string{`111\x1b[2J (Mallory\n\u202eFAKE\u009b)`}},
	} {
		r := devRun(t, home, nil, tt.args...)
		what := strings.Join(tt.args, " ")
		if r.code != 0 {
			t.Errorf("%s: exit %d\n%s", what, r.code, r.stderr)
			continue
		}
		rawText(t, what, r.stdout)
		if n := len(lines(r.stdout)); n != tt.lines {
			t.Errorf("%s printed %d lines, want %d:\n%s", what, n, tt.lines, r.stdout)
		}
		for _, s := range tt.shows {
			if !strings.Contains(r.stdout, s) {
				t.Errorf("%s: output does not show %s:\n%s", what, s, r.stdout)
			}
		}
	}
}

// TestCompanionEscapesServerError: a gateway (here a hostile one) answers
// pair with an error whose text is a terminal escape sequence; `pairgate
// companion pair` reports it, escaped, and exits 1.
func TestCompanionEscapesServerError(t *testing.T) {
	t.Parallel()
	const evil = "bad_request\u001b[2J\u001b]0;pwned\u0007"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		nonce := make([]byte, 32)
		rand.Read(nonce)
		b, _ := json.Marshal(map[string]any{"type": "challenge", "nonce": base64.RawURLEncoding.EncodeToString(nonce), "server_time": time.Now().UnixMilli()})
		c.Write(r.Context(), websocket.MessageText, b)
		if _, _, err := c.Read(r.Context()); err != nil {
			return
		}
		b, _ = json.Marshal(map[string]string{"type": "error", "code": "bad_request\u009b", "message": evil})
		c.Write(r.Context(), websocket.MessageText, b)
		c.Close(websocket.StatusPolicyViolation, "bad_request")
	}))
	t.Cleanup(srv.Close)
	code, err := device.EncodeSetupCode(device.SetupCode{URL: "ws://" + srv.Listener.Addr().String() + "/pair", Token: "t",
		ExpiresAt: time.Now().Add(10 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	r := devRun(t, t.TempDir(), nil, "companion", "pair", code)
	if r.code != 1 {
		t.Fatalf("companion pair: exit %d, want 1\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	rawText(t, "companion pair stderr", r.stderr)
	rawText(t, "companion pair stdout", r.stdout)
	if want := `bad_request\u009b: bad_request\x1b[2J\x1b]0;pwned\x07`; !strings.Contains(r.stderr, want) {
		t.Errorf("companion pair stderr does not show the error escaped (%s):\n%s", want, r.stderr)
	}
}
