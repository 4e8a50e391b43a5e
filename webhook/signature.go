package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/pairgate/pairgate/secret"
)

// The headers of a notice's POST.
const (
	// SignatureHeader carries the signature (see Sign).
	SignatureHeader = "X-Pairgate-Signature"
	// IdempotencyHeader carries the change's seq: a receiver that has seen
	// it before has the notice already (a POST is repeated when pairgate
	// did not learn that the first one arrived).
	IdempotencyHeader = "Idempotency-Key"
)

// KeyPurpose is what the webhook key is derived from the pairing secret
// for (secret.Secret.Derive).
const KeyPurpose = "pairgate/v1/webhook"

// Key is the webhook's signing key: HKDF-SHA256 of the pairing secret with
// no salt and the info "pairgate/v1/webhook", 32 bytes. The receiver needs
// this key, never the pairing secret itself.
func Key(s secret.Secret) []byte { return s.Derive(KeyPurpose) }

// Errors of Verify; the errors it returns wrap one of them.
var (
	ErrMalformed = errors.New("malformed signature header")
	ErrMismatch  = errors.New("signature does not match")
	ErrStale     = errors.New("signature timestamp out of tolerance")
)

// Sign returns the X-Pairgate-Signature header value for body sent at t:
//
//	t=<unix seconds>,v1=<lowercase hex HMAC-SHA256(key, "<t>." + body)>
//
// where "<t>" is the decimal timestamp exactly as written in the header,
// "." a literal dot and body the raw bytes of the request body, as sent.
// The key is Key (32 bytes). The timestamp is signed with the body so that
// a captured request cannot be replayed outside the receiver's tolerance;
// each retry is signed anew. A receiver accepts the request when one v1
// value equals the HMAC it computes (compared in constant time) and t is
// within its tolerance of its own clock (Verify; README: five minutes).
// Other key=value pairs in the header are for later versions and ignored.
func Sign(key []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(key, ts, body))
}

func mac(key []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks a signature header made by Sign: that one of its v1
// values is the HMAC of its timestamp and body under key, and that the
// timestamp is within tolerance of now (either way). The error wraps
// ErrMalformed, ErrMismatch or ErrStale.
func Verify(key []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	if len(key) == 0 {
		return errors.New("webhook: no key to verify with")
	}
	var ts string
	var sigs [][]byte
	for part := range strings.SplitSeq(header, ",") {
		name, value, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return fmt.Errorf("%w: %q is no key=value pair", ErrMalformed, part)
		}
		switch name {
		case "t":
			if ts != "" {
				return fmt.Errorf("%w: two timestamps", ErrMalformed)
			}
			if !digits(value) {
				return fmt.Errorf("%w: timestamp %q is not unix seconds", ErrMalformed, value)
			}
			ts = value
		case "v1":
			sig, err := hex.DecodeString(value)
			if err != nil || len(sig) != sha256.Size {
				return fmt.Errorf("%w: v1 is not %d bytes of hex", ErrMalformed, sha256.Size)
			}
			sigs = append(sigs, sig)
		}
	}
	if ts == "" || len(sigs) == 0 {
		return fmt.Errorf("%w: want t=<unix seconds>,v1=<hex>", ErrMalformed)
	}
	want := mac(key, ts, body)
	matched := false
	for _, sig := range sigs {
		if hmac.Equal(sig, want) {
			matched = true
		}
	}
	if !matched {
		return ErrMismatch
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: timestamp %q: %w", ErrMalformed, ts, err)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: signed at %s, %v from now (tolerance %v)", ErrStale, time.Unix(sec, 0).UTC().Format(time.RFC3339), d.Round(time.Second), tolerance)
	}
	return nil
}

// digits reports whether s is a non-empty run of ASCII digits (no sign).
func digits(s string) bool {
	if s == "" || len(s) > 19 {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
