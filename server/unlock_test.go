package server_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pairgate/pairgate/api"
	"github.com/pairgate/pairgate/config"
)

// A locked scope shows in GET /v1/pairing/requests beside the pending
// requests, and POST /v1/pairing/unlock lifts it.
func TestUnlockOverHTTP(t *testing.T) {
	e := newAPI(t)
	var d api.Decision
	e.do(e.gateway, "POST", "/v1/admit", `{"channel":"telegram","sender":"1"}`, &d)
	for range 5 {
		e.do(adminToken, "POST", "/v1/pairing/approve", `{"channel":"telegram","code":"ZZZZZZZZ"}`, nil)
	}
	type listing struct {
		Pending []api.PendingRequest `json:"pending"`
		Locked  []api.Lockout        `json:"locked"`
	}
	var got listing
	if status, _ := e.do(adminToken, "GET", "/v1/pairing/requests", "", &got); status != http.StatusOK {
		t.Fatalf("list: %d", status)
	}
	want := []api.Lockout{{Channel: "telegram", Account: "default", Until: e.clock.Now().Add(time.Hour), Failures: 5}}
	if diff := cmp.Diff(want, got.Locked); diff != "" || len(got.Pending) != 1 {
		t.Errorf("list while locked: %d pending, locked (-want +got):\n%s", len(got.Pending), diff)
	}

	var u struct{ Unlocked api.Unlocked }
	if status, _ := e.do(adminToken, "POST", "/v1/pairing/unlock", `{"channel":"telegram"}`, &u); status != http.StatusOK || !u.Unlocked.WasLocked {
		t.Fatalf("unlock: %d %+v", status, u)
	}
	if status, _ := e.do(adminToken, "POST", "/v1/pairing/approve", `{"channel":"telegram","code":"`+d.Code+`"}`, nil); status != http.StatusOK {
		t.Errorf("approve after unlock: %d", status)
	}
	got = listing{}
	e.do(adminToken, "GET", "/v1/pairing/requests", "", &got)
	if got.Locked == nil || len(got.Locked) != 0 {
		t.Errorf("list after unlock: locked = %#v, want []", got.Locked)
	}
	if status, _ := e.do(adminToken, "POST", "/v1/pairing/unlock", `{"channel":"telegram"}`, &u); status != http.StatusOK || u.Unlocked.WasLocked {
		t.Errorf("unlock of an unlocked scope: %d %+v, want 200 with was_locked false", status, u)
	}
	var ae apiErr
	if status, _ := e.do(e.gateway, "POST", "/v1/pairing/unlock", `{"channel":"telegram"}`, &ae); status != http.StatusForbidden {
		t.Errorf("unlock with a gateway token: %d %+v, want 403", status, ae)
	}
	if status, _ := e.do(adminToken, "POST", "/v1/pairing/unlock", `{"channel":"telegram","account":"a.b"}`, &ae); status != http.StatusBadRequest || ae.Error.Code != "invalid_input" {
		t.Errorf("unlock of an invalid account: %d %+v", status, ae)
	}
}

// A code typed on the wrong account is a 404 that names the account the
// code is pending on.
func TestWrongAccountOverHTTP(t *testing.T) {
	e := newAPI(t)
	var d api.Decision
	e.do(e.gateway, "POST", "/v1/admit", `{"channel":"telegram","account":"work","sender":"1"}`, &d)
	var ae apiErr
	status, _ := e.do(adminToken, "POST", "/v1/pairing/approve", `{"channel":"telegram","code":"`+d.Code+`"}`, &ae)
	if status != http.StatusNotFound || ae.Error.Code != "not_found" || !strings.Contains(ae.Error.Message, `did you mean "account":"work"?`) {
		t.Errorf("approve of a work code on default: %d %+v", status, ae)
	}
}

// Senders admitted by allow_from show in GET /v1/pairing/allowed with
// "via":"config"; revoking one is a 409 naming the config key.
func TestConfigSendersOverHTTP(t *testing.T) {
	e := newAPI(t)
	cfg := e.svc.Config()
	next := *cfg
	next.Pairing.Channels = map[string]config.Channel{"telegram": {AllowFrom: []string{"42"}}}
	if err := e.svc.Reconfigure(&next); err != nil {
		t.Fatal(err)
	}
	var got struct{ Allowed []api.AllowedSender }
	e.do(adminToken, "GET", "/v1/pairing/allowed?channel=telegram", "", &got)
	want := []api.AllowedSender{{Channel: "telegram", Account: "*", Sender: "42", Via: api.ViaConfig, Config: "pairing.channels.telegram.allow_from"}}
	if diff := cmp.Diff(want, got.Allowed); diff != "" {
		t.Errorf("allowed (-want +got):\n%s", diff)
	}
	var ae apiErr
	status, _ := e.do(adminToken, "POST", "/v1/pairing/revoke", `{"channel":"telegram","sender":"42"}`, &ae)
	if status != http.StatusConflict || ae.Error.Code != "allowed_by_config" || !strings.Contains(ae.Error.Message, "pairing.channels.telegram.allow_from") {
		t.Errorf("revoke of a config sender: %d %+v", status, ae)
	}
	e.do(adminToken, "POST", "/v1/pairing/allow", `{"channel":"telegram","sender":"42"}`, nil)
	var rev struct {
		Revoked        api.AllowedSender
		StillAllowedBy []string `json:"still_allowed_by"`
	}
	if status, _ := e.do(adminToken, "POST", "/v1/pairing/revoke", `{"channel":"telegram","sender":"42"}`, &rev); status != http.StatusOK || len(rev.StillAllowedBy) != 1 {
		t.Errorf("revoke of a sender in the store and the config: %d %+v", status, rev)
	}
}
