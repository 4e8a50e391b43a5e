package webhook_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pairgate/pairgate/webhook"
)

// The scheme as documented, pinned by a vector computed outside Go
// (Python's hmac), so that a change to it cannot go unnoticed.
func TestSignVector(t *testing.T) {
	key := bytes.Repeat([]byte{1}, 32)
	got := webhook.Sign(key, time.Unix(1700000000, 0), []byte(`{"seq":1}`))
	want := "t=1700000000,v1=9f9a6b3851e0f0f025b5602bcb388dcca3e35b7e455ee744e6a843b20db1ddac"
	if got != want {
		t.Errorf("Sign = %s\nwant %s", got, want)
	}
}

// The key is HKDF-SHA256 of the pairing secret (no salt, info
// "pairgate/v1/webhook"), as README's derivation computes it.
func TestKeyVector(t *testing.T) {
	if got, want := hex.EncodeToString(testKey(t)), "27c56143f1932bac5d929066dbd58d8eb618b1420c264a2b996d292cc9fbb1cf"; got != want {
		t.Errorf("Key = %s, want %s", got, want)
	}
}

func TestVerify(t *testing.T) {
	key := testKey(t)
	body := []byte(`{"seq":42,"kind":"pairing.requested"}`)
	now := time.Unix(1700000000, 0)
	good := webhook.Sign(key, now, body)
	v1 := good[strings.Index(good, "v1="):]
	other := webhook.Sign(bytes.Repeat([]byte{2}, 32), now, body)
	otherV1 := other[strings.Index(other, "v1="):]

	for _, tt := range []struct {
		name   string
		key    []byte
		header string
		body   []byte
		now    time.Time
		want   error // nil: valid
	}{
		{"valid", key, good, body, now, nil},
		{"valid, 4 minutes later", key, good, body, now.Add(4 * time.Minute), nil},
		{"valid, clock 4 minutes behind", key, good, body, now.Add(-4 * time.Minute), nil},
		{"valid with spaces and an unknown scheme", key, "t=1700000000, v0=abc, " + v1, body, now, nil},
		{"valid when one of two v1 matches (a key being changed)", key, "t=1700000000," + otherV1 + "," + v1, body, now, nil},
		{"wrong key", bytes.Repeat([]byte{3}, 32), good, body, now, webhook.ErrMismatch},
		{"changed body", key, good, []byte(`{"seq":43,"kind":"pairing.requested"}`), now, webhook.ErrMismatch},
		{"body with a byte added", key, good, append(append([]byte(nil), body...), '\n'), now, webhook.ErrMismatch},
		{"changed timestamp", key, "t=1700000001," + v1, body, now, webhook.ErrMismatch},
		{"timestamp written otherwise", key, "t=01700000000," + v1, body, now, webhook.ErrMismatch},
		{"stale: 6 minutes old", key, good, body, now.Add(6 * time.Minute), webhook.ErrStale},
		{"from the future: 6 minutes ahead", key, good, body, now.Add(-6 * time.Minute), webhook.ErrStale},
		{"empty", key, "", body, now, webhook.ErrMalformed},
		{"no timestamp", key, v1, body, now, webhook.ErrMalformed},
		{"no v1", key, "t=1700000000", body, now, webhook.ErrMalformed},
		{"only another scheme", key, "t=1700000000,v0=" + strings.TrimPrefix(v1, "v1="), body, now, webhook.ErrMalformed},
		{"two timestamps", key, "t=1700000000,t=1700000000," + v1, body, now, webhook.ErrMalformed},
		{"negative timestamp", key, "t=-1," + v1, body, now, webhook.ErrMalformed},
		{"timestamp with a sign", key, "t=+1700000000," + v1, body, now, webhook.ErrMalformed},
		{"timestamp in milliseconds with a dot", key, "t=1700000000.0," + v1, body, now, webhook.ErrMalformed},
		{"v1 not hex", key, "t=1700000000,v1=" + strings.Repeat("zz", 32), body, now, webhook.ErrMalformed},
		{"v1 too short", key, "t=1700000000,v1=abcd", body, now, webhook.ErrMalformed},
		{"not key=value", key, "t=1700000000;" + v1, body, now, webhook.ErrMalformed},
		{"garbage", key, "sha256=deadbeef", body, now, webhook.ErrMalformed},
	} {
		err := webhook.Verify(tt.key, tt.header, tt.body, tt.now, 5*time.Minute)
		if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
			t.Errorf("%s: Verify(%q) = %v, want %v", tt.name, tt.header, err, tt.want)
		}
	}
	if err := webhook.Verify(nil, good, body, now, 5*time.Minute); err == nil {
		t.Error("Verify with no key accepted a signature")
	}
}
