package webhook

import (
	"testing"
	"time"
)

// Verify reads any header without panicking, and accepts one only if it
// carries the body's signature under the key: a header made by mangling
// a valid one either still holds that v1 (and passes) or is refused.
func FuzzVerify(f *testing.F) {
	key := []byte("0123456789abcdef0123456789abcdef")
	now := time.Unix(1796186056, 0)
	body := []byte(`{"seq":1}`)
	valid := Sign(key, now, body)
	for _, h := range []string{valid, "", "t=,v1=", "v1=00,t=1796186056", valid + ",v1=zz", "t=1796186056", "t=-1,v1=" + valid[len("t=1796186056,v1="):], " t = 1 , v1 = 2 "} {
		f.Add(h, body)
	}
	f.Fuzz(func(t *testing.T, header string, b []byte) {
		err := Verify(key, header, b, now, 5*time.Minute)
		if err == nil && Verify(key, Sign(key, now, b), b, now, 5*time.Minute) != nil {
			t.Fatalf("Verify(%q) accepted what a fresh signature of the same body is refused for", header)
		}
		if err == nil && string(b) != string(body) {
			// Only the seeds' body is signed by any header the fuzzer can
			// make without the key.
			t.Fatalf("Verify accepted header %q for a body never signed: %q", header, b)
		}
	})
}
