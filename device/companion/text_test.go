package companion

// A gateway is outside too: what the companion prints of its messages (an
// error's code and text, a request id, a role) reaches the user's terminal
// escaped.

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/pairgate/pairgate/device"
)

const evilText = "bad_request\x1b[2J\x1b]0;pwned\x07"

// hostileServer answers every connection with a challenge (or, with
// early, an error straight away) and then with answer(nonce, message).
func hostileServer(t *testing.T, early bool, answer func(nonce string, m map[string]any) []map[string]any) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx := r.Context()
		if early {
			wsjson.Write(ctx, c, map[string]string{"type": "error", "code": "rate_limited\u202e", "message": evilText})
			c.Close(websocket.StatusPolicyViolation, "")
			return
		}
		raw := make([]byte, 32)
		rand.Read(raw)
		nonce := base64.RawURLEncoding.EncodeToString(raw)
		wsjson.Write(ctx, c, map[string]any{"type": "challenge", "nonce": nonce, "server_time": time.Now().UnixMilli()})
		var m map[string]any
		if err := wsjson.Read(ctx, c, &m); err != nil {
			return
		}
		for _, out := range answer(nonce, m) {
			if err := wsjson.Write(ctx, c, out); err != nil {
				return
			}
		}
		c.Close(websocket.StatusNormalClosure, "")
	}))
	t.Cleanup(srv.Close)
	return "ws://" + srv.Listener.Addr().String() + "/pair"
}

func hostileCode(url string) string {
	j, _ := json.Marshal(map[string]any{"v": 1, "url": url, "token": "t", "expires_at": time.Now().Add(10 * time.Minute).UTC().Format(time.RFC3339)})
	return base64.RawURLEncoding.EncodeToString(j)
}

// noRaw fails if s holds a control or bidi character.
func noRaw(t *testing.T, what, s string) {
	t.Helper()
	if i := strings.IndexFunc(s, func(r rune) bool {
		return r != '\n' && (unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r))
	}); i >= 0 {
		t.Errorf("%s holds %q raw: %q", what, []rune(s[i:])[0], s)
	}
}

func TestServerErrorTextEscaped(t *testing.T) {
	for _, early := range []bool{false, true} {
		url := hostileServer(t, early, func(string, map[string]any) []map[string]any {
			return []map[string]any{{"type": "error", "code": "bad_request\u009b", "message": evilText}}
		})
		o, out := testOptions(t, hostileCode(url))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := Pair(ctx, o)
		cancel()
		var pe *ProtocolError
		if !errors.As(err, &pe) {
			t.Fatalf("Pair: %v, want a *ProtocolError", err)
		}
		// The fields keep what the server sent, for programs; the text is
		// for people.
		want := `bad_request\u009b: bad_request\x1b[2J\x1b]0;pwned\x07`
		if early {
			if pe.Code != "rate_limited\u202e" || pe.Message != evilText {
				t.Errorf("ProtocolError %+v: the fields must hold what the server sent", pe)
			}
			want = `rate_limited\u202e: bad_request\x1b[2J\x1b]0;pwned\x07`
		} else if pe.Code != "bad_request\u009b" || pe.Message != evilText {
			t.Errorf("ProtocolError %+v: the fields must hold what the server sent", pe)
		}
		if err.Error() != want {
			t.Errorf("error text %q, want %q", err.Error(), want)
		}
		noRaw(t, "the output", out.String())
	}
}

func TestServerValuesEscapedInOutput(t *testing.T) {
	const (
		evilRequest = "dreq_\x1b[2J\u202eevil"
		evilRole    = "node\x1b]0;pwned\x07"
	)
	url := hostileServer(t, false, func(nonce string, m map[string]any) []map[string]any {
		id, _ := m["device_id"].(string)
		if m["type"] == "pair" {
			pub, _ := base64.RawURLEncoding.DecodeString(m["device"].(map[string]any)["public_key"].(string))
			h := sha256.Sum256(pub)
			id = hex.EncodeToString(h[:])
		}
		tok := make([]byte, 32)
		rand.Read(tok)
		switch m["type"] {
		case "pair":
			return []map[string]any{
				{"type": "pending", "request_id": evilRequest, "device_id": id, "check_code": checkCode(nonce, id),
					"expires_at": time.Now().Add(10 * time.Minute).UTC().Format(time.RFC3339)},
				{"type": "approved", "device_id": id, "device_token": base64.RawURLEncoding.EncodeToString(tok), "role": evilRole, "scopes": []string{}},
			}
		case "auth":
			return []map[string]any{{"type": "authenticated", "device_id": id, "role": evilRole, "scopes": []string{}}}
		}
		return nil
	})
	o, out := testOptions(t, hostileCode(url))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := Pair(ctx, o); err != nil {
		t.Fatalf("Pair: %v\n%s", err, out)
	}
	noRaw(t, "the output", out.String())
	for _, want := range []string{`request dreq_\x1b[2J\u202eevil`, `Authenticated as node\x1b]0;pwned\x07`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the output does not show %s:\n%s", want, out)
		}
	}
}

// The companion refuses a name or platform the server would cut, so what
// the user chose is what the operator sees.
func TestNameLimitsMatchTheServer(t *testing.T) {
	for _, tt := range []struct{ name, platform string }{
		{strings.Repeat("n", device.MaxNameLen+1), "linux"},
		{"phone", strings.Repeat("p", device.MaxPlatformLen+1)},
	} {
		o, _ := testOptions(t, hostileCode("ws://127.0.0.1:1/pair"))
		o.Name, o.Platform = tt.name, tt.platform
		_, err := Pair(context.Background(), o)
		if err == nil || !strings.Contains(err.Error(), "at most") {
			t.Errorf("Pair with a %d-byte name and a %d-byte platform: %v, want a refusal naming the limit", len(tt.name), len(tt.platform), err)
		}
	}
	o, _ := testOptions(t, "x")
	o.Name = strings.Repeat("n", device.MaxNameLen)
	if _, err := o.withDefaults(); err != nil {
		t.Errorf("a name of exactly %d bytes: %v", device.MaxNameLen, err)
	}
}
