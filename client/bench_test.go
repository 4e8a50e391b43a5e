package client_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/pairgate/pairgate/api"
	"github.com/pairgate/pairgate/client"
)

// BenchmarkAdmit is one Admit over a kept-alive loopback connection: the
// client's share of what pairgate-load measures.
func BenchmarkAdmit(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"verdict":"admit","reason":"allowed"}`)
	}))
	defer srv.Close()
	c, err := client.New(srv.URL, "token")
	if err != nil {
		b.Fatal(err)
	}
	req := api.AdmitRequest{Channel: "telegram", Sender: "123456789"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Admit(b.Context(), req); err != nil {
			b.Fatal(err)
		}
	}
}
