package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/pairgate/pairgate/api"
	"github.com/pairgate/pairgate/store"
)

// auditEnv is an API over a store holding, after the gateway token's
// token.created, 12 senders allowed (pairing.allowed) on telegram or
// signal by cli:alice or cli:bob, and 4 of them revoked
// (pairing.revoked) by cli:alice.
func auditEnv(t *testing.T) *apiEnv {
	t.Helper()
	e := newAPI(t)
	ctx := context.Background()
	alice := store.Actor{Name: "cli:alice", Source: "cli"}
	bob := store.Actor{Name: "cli:bob", Source: "cli"}
	for i := range 12 {
		scope := store.Scope{Channel: "telegram", Account: "default"}
		if i%3 == 0 {
			scope.Channel = "signal"
		}
		actor := alice
		if i%2 == 1 {
			actor = bob
		}
		_, err := e.st.Allow(ctx, store.AllowParams{Scope: scope, Senders: []store.AllowSender{{Sender: fmt.Sprint(100 + i)}},
			Via: store.ViaManual, Actor: actor, Now: e.clock.Now()})
		if err != nil {
			t.Fatal(err)
		}
		if i%3 == 1 {
			if _, err := e.st.Revoke(ctx, scope, fmt.Sprint(100+i), alice, e.clock.Now()); err != nil {
				t.Fatal(err)
			}
		}
		e.clock.Advance(time.Second)
	}
	return e
}

// auditPage is the answer of GET /v1/audit, with whether next_before was
// there at all.
type auditPage struct {
	api.AuditLog
	hasNext bool
}

func (e *apiEnv) audit(t *testing.T, query string) auditPage {
	t.Helper()
	var raw map[string]json.RawMessage
	status, _ := e.do(adminToken, "GET", "/v1/audit?"+query, "", &raw)
	if status != 200 {
		t.Fatalf("GET /v1/audit?%s: %d %s", query, status, raw["error"])
	}
	var p auditPage
	if err := json.Unmarshal(raw["changes"], &p.Changes); err != nil || p.Changes == nil {
		t.Fatalf("GET /v1/audit?%s: changes %s: %v", query, raw["changes"], err)
	}
	if next, ok := raw["next_before"]; ok {
		p.hasNext = true
		if err := json.Unmarshal(next, &p.NextBefore); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

func TestAuditFilters(t *testing.T) {
	e := auditEnv(t)
	all := e.audit(t, "")
	// token.created, 12 allowed, 4 revoked.
	if len(all.Changes) != 17 || all.hasNext {
		t.Fatalf("GET /v1/audit: %d changes, next_before %v; want 17 and none (the page is not full)", len(all.Changes), all.hasNext)
	}
	for i := 1; i < len(all.Changes); i++ {
		if all.Changes[i].Seq >= all.Changes[i-1].Seq {
			t.Fatalf("GET /v1/audit is not newest first: seq %d after %d", all.Changes[i].Seq, all.Changes[i-1].Seq)
		}
	}
	// Each filter alone and combined: n changes, each matching.
	tests := []struct {
		query                string
		n                    int
		kind, channel, actor string
	}{
		{"kind=pairing.revoked", 4, "pairing.revoked", "", ""},
		{"kind=pairing.allowed", 12, "pairing.allowed", "", ""},
		{"kind=token.created", 1, "token.created", "", ""},
		{"kind=device.paired", 0, "", "", ""},
		{"kind=", 17, "", "", ""},
		{"channel=signal", 4, "", "signal", ""},
		{"channel=telegram", 12, "", "telegram", ""},
		{"channel=whatsapp", 0, "", "", ""},
		{"channel=", 17, "", "", ""},
		{"actor=cli:bob", 6, "", "", "cli:bob"},
		{"actor=cli%3Aalice", 10, "", "", "cli:alice"},
		{"actor=cli:nobody", 0, "", "", ""},
		{"kind=pairing.revoked&channel=telegram", 4, "pairing.revoked", "telegram", ""},
		{"kind=pairing.revoked&channel=signal", 0, "", "", ""},
		{"kind=pairing.allowed&channel=signal&actor=cli:bob", 2, "pairing.allowed", "signal", "cli:bob"},
		{"kind=pairing.allowed&actor=cli:alice&limit=2", 2, "pairing.allowed", "", "cli:alice"},
	}
	for _, tt := range tests {
		got := e.audit(t, tt.query)
		if len(got.Changes) != tt.n {
			t.Errorf("GET /v1/audit?%s: %d changes, want %d", tt.query, len(got.Changes), tt.n)
		}
		for _, c := range got.Changes {
			if (tt.kind != "" && c.Kind != tt.kind) || (tt.channel != "" && c.Channel != tt.channel) || (tt.actor != "" && c.Actor != tt.actor) {
				t.Errorf("GET /v1/audit?%s returned %+v", tt.query, c)
			}
		}
		// They are the newest matches: the same as the unfiltered list
		// filtered here.
		q, _ := url.ParseQuery(tt.query)
		var want []api.Change
		for _, c := range all.Changes {
			if (q.Get("kind") == "" || c.Kind == q.Get("kind")) && (q.Get("channel") == "" || c.Channel == q.Get("channel")) &&
				(q.Get("actor") == "" || c.Actor == q.Get("actor")) {
				want = append(want, c)
			}
		}
		if q.Has("limit") {
			want = want[:tt.n]
		}
		if diff := cmp.Diff(want, got.Changes, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("GET /v1/audit?%s (-want +got):\n%s", tt.query, diff)
		}
	}
}

func TestAuditPaging(t *testing.T) {
	e := auditEnv(t)
	all := e.audit(t, "")
	for _, tt := range []struct{ filter string }{{""}, {"kind=pairing.allowed&"}, {"channel=signal&"}, {"actor=cli:bob&"}} {
		want := e.audit(t, strings.TrimSuffix(tt.filter, "&")).Changes
		var got []api.Change
		query := tt.filter + "limit=3"
		for pages := 0; ; pages++ {
			if pages > len(all.Changes) {
				t.Fatalf("paging %q: no end", tt.filter)
			}
			p := e.audit(t, query)
			got = append(got, p.Changes...)
			full := len(p.Changes) == 3
			if full != p.hasNext || (full && p.NextBefore != p.Changes[2].Seq) {
				t.Fatalf("GET /v1/audit?%s: %d changes, next_before %v %d; want it (the last seq) exactly on a full page",
					query, len(p.Changes), p.hasNext, p.NextBefore)
			}
			if !p.hasNext {
				break
			}
			query = fmt.Sprintf("%slimit=3&before=%d", tt.filter, p.NextBefore)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("paging %q by 3 (-want +got):\n%s", tt.filter, diff)
		}
	}

	oldest := all.Changes[len(all.Changes)-1].Seq
	for _, before := range []int64{oldest, 1} {
		if p := e.audit(t, fmt.Sprintf("before=%d", before)); len(p.Changes) != 0 || p.hasNext {
			t.Errorf("GET /v1/audit?before=%d (the oldest is %d): %+v, want no changes", before, oldest, p)
		}
	}
	newest := all.Changes[0].Seq
	if p := e.audit(t, fmt.Sprintf("before=%d", newest+100)); len(p.Changes) != len(all.Changes) {
		t.Errorf("GET /v1/audit?before=%d (past the newest): %d changes, want all %d", newest+100, len(p.Changes), len(all.Changes))
	}
	if p := e.audit(t, fmt.Sprintf("before=%d&limit=2", newest)); len(p.Changes) != 2 || p.Changes[0].Seq != all.Changes[1].Seq || p.NextBefore != all.Changes[2].Seq {
		t.Errorf("GET /v1/audit?before=%d&limit=2: %+v, want the 2 after the newest", newest, p)
	}
}

func TestAuditBadParameters(t *testing.T) {
	e := newAPI(t)
	tests := []struct {
		query    string
		mentions []string
	}{
		{"limit=0", []string{`"limit"`, "1 to 1000"}},
		{"limit=1001", []string{`"limit"`}},
		{"limit=ten", []string{`"limit"`}},
		{"limit=", []string{`"limit"`}},
		{"before=0", []string{`"before"`}},
		{"before=-5", []string{`"before"`}},
		{"before=abc", []string{`"before"`}},
		{"before=", []string{`"before"`}},
		{"before=99999999999999999999", []string{`"before"`}},
		{"kind=pairing.aproved", []string{`"kind"`, `"pairing.aproved"`, "pairing.approved", "device.removed", "token.created"}},
		{"kind=PAIRING.APPROVED", []string{`"kind"`}},
		{"account=default", []string{`unknown query parameter "account"`, "before", "kind", "channel", "actor"}},
		{"kind=pairing.approved&kind=pairing.revoked", []string{`"kind" given 2 times`}},
		{"channel=signal;actor=x", []string{`";" is not a separator`}},
	}
	for _, tt := range tests {
		var got apiErr
		status, _ := e.do(adminToken, "GET", "/v1/audit?"+tt.query, "", &got)
		if status != 400 || got.Error.Code != api.CodeBadRequest {
			t.Errorf("GET /v1/audit?%s: %d %+v, want 400 %s", tt.query, status, got, api.CodeBadRequest)
			continue
		}
		for _, m := range tt.mentions {
			if !strings.Contains(got.Error.Message, m) {
				t.Errorf("GET /v1/audit?%s: %q does not mention %q", tt.query, got.Error.Message, m)
			}
		}
	}
	// The audit log is for admins only.
	if status, _ := e.do(e.gateway, "GET", "/v1/audit?kind=pairing.approved", "", nil); status != 403 {
		t.Errorf("GET /v1/audit with a gateway token: %d, want 403", status)
	}
}
