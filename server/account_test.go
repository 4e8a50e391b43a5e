package server_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/pairgate/pairgate/api"
)

// TestAccountNamesOverHTTP: the gate answers a message on an unusable
// account with a decision (drop, invalid_account), as it does for an
// unknown channel; the admin routes refuse it as invalid input, naming the
// account and the rule; an upper-case account is the lower-case one.
func TestAccountNamesOverHTTP(t *testing.T) {
	e := newAPI(t)
	const rule = "1–64 characters of a-z, 0-9, _ and -"
	for _, acct := range []string{"*", ">", "a.b", "../x", "a b"} {
		var d api.Decision
		body := `{"channel":"telegram","account":"` + acct + `","sender":"42"}`
		status, _ := e.do(e.gateway, "POST", "/v1/admit", body, &d)
		if diff := cmp.Diff(api.Decision{Verdict: api.Drop, Reason: api.ReasonInvalidAccount}, d); status != 200 || diff != "" {
			t.Errorf("POST /v1/admit %s: %d (-want +got):\n%s", body, status, diff)
		}
		for _, c := range []struct{ method, path, body string }{
			{"POST", "/v1/pairing/approve", `{"channel":"telegram","account":"` + acct + `","code":"ABCD2345"}`},
			{"POST", "/v1/pairing/reject", `{"channel":"telegram","account":"` + acct + `","request_id":"req_x"}`},
			{"POST", "/v1/pairing/allow", `{"channel":"telegram","account":"` + acct + `","sender":"42"}`},
			{"POST", "/v1/pairing/revoke", `{"channel":"telegram","account":"` + acct + `","sender":"42"}`},
			{"GET", "/v1/pairing/requests?channel=telegram&account=" + url.QueryEscape(acct), ""},
			{"GET", "/v1/pairing/allowed?channel=telegram&account=" + url.QueryEscape(acct), ""},
		} {
			var got apiErr
			status, _ := e.do(adminToken, c.method, c.path, c.body, &got)
			msg := got.Error.Message
			if status != 400 || got.Error.Code != "invalid_input" || !strings.Contains(msg, `account "`+acct+`"`) || !strings.Contains(msg, rule) {
				t.Errorf("%s %s %s: %d %+v; want 400 invalid_input naming the account and %q", c.method, c.path, c.body, status, got, rule)
			}
		}
	}

	var res struct{ Allowed []api.AllowResult }
	if status, _ := e.do(adminToken, "POST", "/v1/pairing/allow", `{"channel":"telegram","account":"Work","sender":"42"}`, &res); status != 200 {
		t.Fatalf("allow on Work: %d", status)
	}
	var d api.Decision
	e.do(e.gateway, "POST", "/v1/admit", `{"channel":"telegram","account":"work","sender":"42"}`, &d)
	if d.Verdict != api.Admit || len(res.Allowed) != 1 || res.Allowed[0].Account != "work" {
		t.Errorf("allowed on Work (%+v), admit on work: %+v", res.Allowed, d)
	}
}
