package server_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pairgate/pairgate/store"
)

// BenchmarkAdmitHandler is POST /v1/admit for an allowed sender through the
// whole handler (auth, decode, gate, metrics, encode) without the network.
func BenchmarkAdmitHandler(b *testing.B) {
	e := newAPI(b)
	if _, err := e.svc.Allow(context.Background(), "telegram", "", []string{"42"}, store.ViaManual, store.Actor{Name: "bench"}); err != nil {
		b.Fatal(err)
	}
	h := e.handler
	body := `{"channel":"telegram","sender":"42"}`
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest(http.MethodPost, "/v1/admit", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+e.gateway)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != 200 {
				b.Fatal(w.Code, w.Body.String())
			}
		}
	})
}
