package cli

import (
	"bytes"
	"log/slog"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// A duration logged from anywhere comes out as <key>_ms, in milliseconds.
func TestDurationsInMS(t *testing.T) {
	tests := []struct {
		attrs []any
		want  string
	}{
		{[]any{"took", 1500 * time.Microsecond}, `{"msg":"m","took_ms":1.5}`},
		{[]any{"retry", 2 * time.Second, "n", 3}, `{"msg":"m","retry_ms":2000,"n":3}`},
		{[]any{slog.Group("g", "wait", time.Minute)}, `{"msg":"m","g":{"wait_ms":60000}}`},
		{[]any{"duration_ms", 1.25}, `{"msg":"m","duration_ms":1.25}`},
	}
	for _, tt := range tests {
		var b bytes.Buffer
		log := slog.New(slog.NewJSONHandler(&b, &slog.HandlerOptions{ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && (a.Key == slog.TimeKey || a.Key == slog.LevelKey) {
				return slog.Attr{}
			}
			return durationsInMS(groups, a)
		}}))
		log.Info("m", tt.attrs...)
		if diff := cmp.Diff(tt.want+"\n", b.String()); diff != "" {
			t.Errorf("%v (-want +got):\n%s", tt.attrs, diff)
		}
	}
}
