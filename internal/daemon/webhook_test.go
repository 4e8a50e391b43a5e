package daemon_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pairgate/pairgate/webhook"
)

// With notify.webhook_url set, serve posts a signed notice of a new DM
// request, made through its HTTP API, to the URL, from the holder of the
// webhook lease.
func TestServePostsWebhook(t *testing.T) {
	type post struct {
		header http.Header
		body   []byte
	}
	posts := make(chan post, 10)
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		posts <- post{r.Header.Clone(), b}
	}))
	t.Cleanup(rcv.Close)
	o, w, other := options(t)
	o.Config.Notify.WebhookURL = rcv.URL + "/hook"
	e := start(t.Context(), t, o, w, other, nil)

	// The first publisher of a store starts at the log's head: wait for it.
	for start := time.Now(); ; time.Sleep(5 * time.Millisecond) {
		if _, found, err := other.Cursor(t.Context(), webhook.CursorName); err == nil && found {
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatal("no webhook publisher took its position in the log within 5 s")
		}
	}
	if held, err := other.AcquireLease(t.Context(), webhook.LeaseName, "another replica", 9*time.Second, time.Now()); err != nil || held {
		t.Errorf("another replica got the webhook lease (%v, %v): the daemon does not hold it", held, err)
	}
	admit := func(sender string) (requestID, code string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, e.url+"/v1/admit", strings.NewReader(`{"channel":"telegram","sender":"`+sender+`","sender_name":"Alice"}`))
		req.Header.Set("Authorization", "Bearer "+e.admin)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var d struct {
			RequestID string `json:"request_id"`
			Code      string `json:"code"`
		}
		json.NewDecoder(resp.Body).Decode(&d)
		if d.RequestID == "" || d.Code == "" {
			t.Fatalf("admit: %+v, want a challenge", d)
		}
		return d.RequestID, d.Code
	}
	next := func() post {
		t.Helper()
		select {
		case p := <-posts:
			return p
		case <-time.After(10 * time.Second):
			t.Fatal("no webhook POST within 10 s of the request")
			return post{}
		}
	}
	id, code := admit("123456789")
	p := next()
	if err := webhook.Verify(webhook.Key(o.Secret), p.header.Get(webhook.SignatureHeader), p.body, time.Now(), time.Minute); err != nil {
		t.Errorf("the POST's signature under the pairing secret's webhook key: %v", err)
	}
	var n webhook.Notice
	if err := json.Unmarshal(p.body, &n); err != nil {
		t.Fatal(err)
	}
	if n.Kind != "pairing.requested" || n.RequestID != id || n.Sender != "123456789" || n.Name != "Alice" ||
		!strings.HasPrefix(n.Text, "Alice (telegram 123456789) asks to talk to your assistant.") || strings.Contains(string(p.body), code) {
		t.Errorf("the notice posted: %s", p.body)
	}
	// Notices come in order: the next POST is the next request's, not this
	// one again.
	id2, _ := admit("987654321")
	if err := json.Unmarshal(next().body, &n); err != nil || n.RequestID != id2 {
		t.Errorf("the second POST is of request %s (%v), want %s", n.RequestID, err, id2)
	}
}
