package server_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pairgate/pairgate/api"
	"github.com/pairgate/pairgate/store"
)

// TestQueryStrings: a query string the server cannot read in full is a 400
// naming the parameter, never a filter silently dropped (which listed every
// channel); a readable one still filters.
func TestQueryStrings(t *testing.T) {
	e := newAPI(t)
	ctx := context.Background()
	actor := store.Actor{Name: "test"}
	if _, err := e.svc.Allow(ctx, "telegram", "", []string{"42"}, store.ViaManual, actor); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Allow(ctx, "slack", "", []string{"U024BE7LH"}, store.ViaManual, actor); err != nil {
		t.Fatal(err)
	}
	e.do(e.gateway, "POST", "/v1/admit", `{"channel":"telegram","sender":"7"}`, nil)
	e.do(e.gateway, "POST", "/v1/admit", `{"channel":"slack","sender":"U0XYZ"}`, nil)

	bad := []struct {
		query    string
		mentions []string
	}{
		{"channel=slack;", []string{`query parameter "channel"`, `";"`, "&"}},
		{"channel=slack;account=x", []string{`query parameter "channel"`, `";"`}},
		{"a;channel=slack", []string{`query parameter "a;channel=slack"`, `";"`}},
		{"channel=%zz", []string{`query parameter "channel"`, `invalid URL escape "%zz"`}},
		{"channel=slack&account=%", []string{`query parameter "account"`, `invalid URL escape "%"`}},
		{"%zz=1", []string{`query parameter "%zz=1"`, `invalid URL escape "%zz"`}},
		{"channel=slack&channel=x", []string{`query parameter "channel" given 2 times`}},
		{"chanel=slack", []string{`unknown query parameter "chanel"`, "channel, account"}},
		{"ch%61nnel=slack&channel=slack", []string{`query parameter "channel" given 2 times`}},
	}
	for _, path := range []string{"/v1/pairing/requests", "/v1/pairing/allowed"} {
		for _, tt := range bad {
			var got apiErr
			status, _ := e.do(adminToken, "GET", path+"?"+tt.query, "", &got)
			if status != 400 || got.Error.Code != "bad_request" {
				t.Errorf("GET %s?%s: %d %+v, want 400 bad_request", path, tt.query, status, got)
				continue
			}
			for _, m := range tt.mentions {
				if !strings.Contains(got.Error.Message, m) {
					t.Errorf("GET %s?%s: message %q does not mention %q", path, tt.query, got.Error.Message, m)
				}
			}
		}
	}
	var audit apiErr
	if status, _ := e.do(adminToken, "GET", "/v1/audit?limit=5;", "", &audit); status != 400 || !strings.Contains(audit.Error.Message, `"limit"`) {
		t.Errorf("GET /v1/audit?limit=5;: %d %+v, want 400 naming limit", status, audit)
	}

	// Readable queries, escapes included, still filter.
	channels := func(path string) []string {
		var body struct {
			Pending []api.PendingRequest
			Allowed []api.AllowedSender
		}
		if status, _ := e.do(adminToken, "GET", path, "", &body); status != 200 {
			t.Fatalf("GET %s: %d", path, status)
		}
		var out []string
		for _, p := range body.Pending {
			out = append(out, p.Channel+"/"+p.Account+" "+p.Sender)
		}
		for _, a := range body.Allowed {
			out = append(out, a.Channel+"/"+a.Account+" "+a.Sender)
		}
		return out
	}
	for path, want := range map[string][]string{
		"/v1/pairing/requests?channel=slack":                         {"slack/default U0XYZ"},
		"/v1/pairing/requests?channel=sl%61ck&account=default":       {"slack/default U0XYZ"},
		"/v1/pairing/allowed?channel=telegram":                       {"telegram/default 42"},
		"/v1/pairing/allowed?channel=telegram&include_revoked=true&": {"telegram/default 42"},
	} {
		if diff := cmp.Diff(want, channels(path)); diff != "" {
			t.Errorf("GET %s (-want +got):\n%s", path, diff)
		}
	}
}
