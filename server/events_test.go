package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pairgate/pairgate/api"
	"github.com/pairgate/pairgate/pairing"
	"github.com/pairgate/pairgate/store"
)

// TestEventsOverHTTP reads GET /v1/events as an SSE client does: admin
// tokens only; a reconnect with Last-Event-ID gets every change after it,
// each as the audit trail shows it, then new ones as they happen.
func TestEventsOverHTTP(t *testing.T) {
	e := newAPI(t)
	ctx := context.Background()
	if st, _ := e.do(e.gateway, "GET", "/v1/events", "", nil); st != http.StatusForbidden {
		t.Errorf("GET /v1/events with a gateway token: %d, want 403", st)
	}
	head, err := e.st.RecentChanges(ctx, store.ChangeQuery{Limit: 1})
	if err != nil || len(head) != 1 {
		t.Fatalf("the log's head: %v %v", head, err)
	}
	base := head[0].Seq
	seq := func(n int64) string { return strconv.FormatInt(base+n, 10) }
	e.svc.Admit(ctx, pairing.Inbound{Channel: "telegram", Sender: "1"})
	e.svc.Admit(ctx, pairing.Inbound{Channel: "telegram", Sender: "2"})

	get := func(lastID string) *http.Response {
		t.Helper()
		reqCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		t.Cleanup(cancel)
		req, _ := http.NewRequestWithContext(reqCtx, "GET", e.url+"/v1/events", nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		req.Header.Set("Last-Event-ID", lastID)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { res.Body.Close() })
		return res
	}
	if res := get("x"); res.StatusCode != http.StatusBadRequest {
		t.Errorf("Last-Event-ID x: %d, want 400", res.StatusCode)
	}
	res := get(seq(1))
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET /v1/events: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	lines := bufio.NewScanner(res.Body)
	next := func() (string, api.Change) {
		t.Helper()
		var id string
		for lines.Scan() {
			line := lines.Text()
			if v, ok := strings.CutPrefix(line, "id: "); ok {
				id = v
			}
			if v, ok := strings.CutPrefix(line, "data: "); ok && id != "" {
				var c api.Change
				if err := json.Unmarshal([]byte(v), &c); err != nil {
					t.Fatalf("event data %q: %v", v, err)
				}
				return id, c
			}
		}
		t.Fatalf("the stream ended: %v", lines.Err())
		return "", api.Change{}
	}
	if id, c := next(); id != seq(2) || c.Seq != base+2 || c.Kind != "pairing.requested" || c.Sender != "2" {
		t.Errorf("first event after Last-Event-ID %s: id %s %+v, want seq %s, pairing.requested of sender 2", seq(1), id, c, seq(2))
	}
	e.svc.Admit(ctx, pairing.Inbound{Channel: "telegram", Sender: "3"})
	if id, c := next(); id != seq(3) || c.Sender != "3" {
		t.Errorf("the next change arrived as id %s %+v, want %s of sender 3", id, c, seq(3))
	}
}
