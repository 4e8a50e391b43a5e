package device

// What a device says about itself and what an issuer writes on a setup code
// reaches the operator's screen: it is cleaned on the way in.

import (
	"context"
	"crypto/ed25519"
	"strings"
	"testing"
	"unicode"

	"github.com/google/go-cmp/cmp"

	"github.com/pairgate/pairgate/store"
)

// pairAs sends pair with the given device name and platform, signed with
// cl's key.
func (cl *client) pairAs(token string, signedAt int64, name, platform string) {
	cl.send(map[string]any{"type": "pair", "token": token,
		"device":    map[string]string{"public_key": b64url.EncodeToString(cl.key.Public().(ed25519.PublicKey)), "name": name, "platform": platform},
		"signed_at": signedAt, "signature": cl.sign(pairString(cl.nonce, cl.id, signedAt, token))})
}

func TestPairCleansNameAndPlatform(t *testing.T) {
	tests := []struct {
		name                 string
		inName, inPlatform   string
		wantName, wantPlatfm string
	}{
		{"escape sequences and a forged row", "a\u0000b\u001b[2J\nFAKE", "android\u001b]0;pwned\u0007",
			"ab[2JFAKE", "android]0;pwned"},
		{"C1 and bidi controls", "Ana\u009b2J\u202egnp.exe", "ios\u0085\u2066x",
			"Ana2Jgnp.exe", "iosx"},
		{"over-long", strings.Repeat("n", 200), strings.Repeat("p", 100),
			strings.Repeat("n", MaxNameLen), strings.Repeat("p", MaxPlatformLen)},
		{"cut on a rune boundary", strings.Repeat("é", 40), strings.Repeat("€", 20),
			strings.Repeat("é", MaxNameLen/2), strings.Repeat("€", MaxPlatformLen/3)},
		{"nothing left but controls", "\u001b[\u0007", "\n",
			"[", ""},
	}
	e := newPairEnv(t, nil)
	ctx := context.Background()
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl := e.dial(deviceKey("ingress" + string(rune('a'+i))))
			cl.t = t
			cl.pairAs(e.setupToken(0), e.now().UnixMilli(), tt.inName, tt.inPlatform)
			p := cl.recv()
			if p["type"] != "pending" {
				t.Fatalf("pair: %v, want pending", p)
			}
			r, err := e.st.GetDeviceRequest(ctx, p["request_id"].(string))
			if err != nil {
				t.Fatal(err)
			}
			got := [2]string{r.Name, r.Platform}
			if diff := cmp.Diff([2]string{tt.wantName, tt.wantPlatfm}, got); diff != "" {
				t.Errorf("stored name and platform (-want +got):\n%s", diff)
			}
			for _, s := range got {
				if strings.ContainsFunc(s, unicode.IsControl) {
					t.Errorf("stored %q holds a control character", s)
				}
			}
			if len(r.Name) > MaxNameLen || len(r.Platform) > MaxPlatformLen {
				t.Errorf("stored name %d bytes, platform %d bytes: over %d and %d", len(r.Name), len(r.Platform), MaxNameLen, MaxPlatformLen)
			}
		})
	}
}

func TestSetupCodeLabelCleaned(t *testing.T) {
	e := newPairEnv(t, nil)
	ctx := context.Background()
	for _, tt := range []struct{ in, want string }{
		{"kitchen\u001b[2J\n\u202eFAKE", "kitchen[2JFAKE"},
		{strings.Repeat("l", 200), strings.Repeat("l", MaxLabelLen)},
	} {
		s, err := e.svc.IssueSetupCode(ctx, SetupParams{Label: tt.in}, store.Actor{Name: "test"})
		if err != nil {
			t.Fatalf("IssueSetupCode with label %q: %v", tt.in, err)
		}
		c, err := DecodeSetupCode(s.SetupCode)
		if err != nil {
			t.Fatal(err)
		}
		cl := e.dial(deviceKey("label " + tt.in))
		cl.pair(c.Token, e.now().UnixMilli())
		p := cl.recv()
		if p["type"] != "pending" {
			t.Fatalf("pair: %v, want pending", p)
		}
		r, err := e.st.GetDeviceRequest(ctx, p["request_id"].(string))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tt.want, r.Label); diff != "" {
			t.Errorf("label %q as stored with the request (-want +got):\n%s", tt.in, diff)
		}
	}
}
