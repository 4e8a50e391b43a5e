package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pairgate/pairgate/api"
)

// approval is the body of a successful POST /v1/pairing/approve, decoded
// strictly.
type approval struct {
	Allowed   api.AllowedSender `json:"allowed"`
	RequestID string            `json:"request_id"`
	Already   bool              `json:"already"`
	Notify    string            `json:"notify,omitempty"`
}

func decodeApproval(t *testing.T, data []byte) approval {
	t.Helper()
	var a approval
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		t.Fatalf("not an approval: %v: %s", err, data)
	}
	return a
}

// Eight operators (or one impatient button) approve one code at once over
// the real HTTP API: one approves it, seven are told it was approved
// already with HTTP 200, and approvals stay unlocked. Then a double click
// on each of five more codes: five wrong codes would lock the scope, five
// double clicks do not.
func TestRacingApprovalsOverHTTP(t *testing.T) {
	e := newRobustEnv(t, robustOptions{})
	_, d := e.admit("100")
	if d.Verdict != api.Challenge {
		t.Fatalf("admit: %+v", d)
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		statuses []int
		bodies   [][]byte
	)
	start := make(chan struct{})
	for i := range 8 {
		body := fmt.Sprintf(`{"channel":"telegram","code":%q}`, d.Code)
		if i%2 == 1 {
			body = fmt.Sprintf(`{"channel":"telegram","request_id":%q}`, d.RequestID)
		}
		wg.Go(func() {
			<-start
			status, _, data := e.call("POST", "/v1/pairing/approve", robustAdmin, []byte(body))
			mu.Lock()
			statuses, bodies = append(statuses, status), append(bodies, data)
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	approved, already := 0, 0
	for i, status := range statuses {
		if status != http.StatusOK {
			t.Errorf("approval %d: %d %s, want 200", i, status, bodies[i])
			continue
		}
		a := decodeApproval(t, bodies[i])
		if a.Allowed.Sender != "100" || a.RequestID != d.RequestID {
			t.Errorf("approval %d: %+v", i, a)
		}
		if a.Already {
			already++
		} else {
			approved++
		}
	}
	if approved != 1 || already != 7 {
		t.Errorf("8 racing approvals: %d approved, %d already; want 1 and 7", approved, already)
	}
	if !strings.Contains(string(bodies[0]), `"already":`) {
		t.Errorf("the approval object does not carry \"already\": %s", bodies[0])
	}

	for i := range 5 {
		_, d := e.admit(fmt.Sprint(200 + i))
		body := []byte(fmt.Sprintf(`{"channel":"telegram","code":%q}`, strings.ToLower(d.Code)))
		for click := range 2 {
			status, _, data := e.call("POST", "/v1/pairing/approve", robustAdmin, body)
			if status != http.StatusOK {
				t.Fatalf("code %d, click %d: %d %s", i+1, click+1, status, data)
			}
			if a := decodeApproval(t, data); a.Already != (click == 1) {
				t.Errorf("code %d, click %d: already = %v", i+1, click+1, a.Already)
			}
		}
	}
	if _, d := e.admit("300"); d.Verdict != api.Challenge {
		t.Errorf("a new sender after 5 double clicks and a race: %+v, want a challenge, not locked_out", d)
	}

	// Rejecting an approved request is refused with 409, not counted.
	status, hdr, data := e.call("POST", "/v1/pairing/reject", robustAdmin, []byte(fmt.Sprintf(`{"channel":"telegram","code":%q}`, d.Code)))
	wantError(t, "reject of an approved code", status, hdr, data, http.StatusConflict, "already_approved", "approved already", "revoke")

	// Approvals are counted from the change log, which the server
	// follows: give it a moment.
	want := []string{
		`pairing_approvals_total{channel="telegram",result="approved"} 6`,
		`pairing_approvals_total{channel="telegram",result="already_approved"} 12`,
	}
	var metrics []byte
	for start := time.Now(); ; time.Sleep(10 * time.Millisecond) {
		_, _, metrics = e.call("GET", "/metrics", "", nil)
		missing := slices.DeleteFunc(slices.Clone(want), func(w string) bool { return strings.Contains(string(metrics), w+"\n") })
		if len(missing) == 0 {
			break
		}
		if time.Since(start) > 2*time.Second {
			t.Errorf("metrics lack %q:\n%s", missing, robustGrep(metrics, "pairing_approvals_total"))
			break
		}
	}
	if strings.Contains(string(metrics), `result="not_found"`) {
		t.Errorf("an approval of an approved code was counted as not_found:\n%s", robustGrep(metrics, "pairing_approvals_total"))
	}
}
