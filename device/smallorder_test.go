package device

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"math/big"
	"slices"
	"testing"

	"filippo.io/edwards25519"
)

// torsionPoints returns the canonical encodings of the 8 points of
// Curve25519's torsion subgroup (the points P with [8]P = identity),
// computed rather than copied: a random point Q is the sum of a point of
// prime order L and a torsion point T; [8⁻¹ mod L][8]Q is the former, so
// T = Q - [8⁻¹ mod L][8]Q. A T of order 8 generates the subgroup.
func torsionPoints(t *testing.T) [][]byte {
	t.Helper()
	l, _ := new(big.Int).SetString("7237005577332262213973186563042994240857116359379907606001950938285454250989", 10) // 2^252 + 27742317777372353535851937790883648493
	inv := new(big.Int).ModInverse(big.NewInt(8), l).FillBytes(make([]byte, 32))
	slices.Reverse(inv) // little-endian
	s, err := edwards25519.NewScalar().SetCanonicalBytes(inv)
	if err != nil {
		t.Fatal(err)
	}
	id := edwards25519.NewIdentityPoint()
	for {
		b := make([]byte, 32)
		rand.Read(b)
		q, err := new(edwards25519.Point).SetBytes(b)
		if err != nil {
			continue
		}
		p := new(edwards25519.Point).ScalarMult(s, new(edwards25519.Point).MultByCofactor(q))
		tp := new(edwards25519.Point).Subtract(q, p)
		t4 := new(edwards25519.Point).Add(tp, tp)
		t4.Add(t4, t4)
		if t4.Equal(id) == 1 {
			continue // order 1, 2 or 4: try another Q
		}
		var out [][]byte
		for i, cur := 0, edwards25519.NewIdentityPoint(); i < 8; i, cur = i+1, cur.Add(cur, tp) {
			out = append(out, cur.Bytes())
		}
		return out
	}
}

// smallOrderEncodings are the 8 canonical encodings of the small-order
// points and every non-canonical one that decodes to such a point: y + p
// where that still fits in 255 bits (y = 0 and y = 1), and x = 0 with the
// sign bit set ("negative zero").
func smallOrderEncodings(t *testing.T) (canonical, nonCanonical [][]byte) {
	t.Helper()
	canonical = torsionPoints(t)
	p := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))
	limit := new(big.Int).Lsh(big.NewInt(1), 255)
	seen := map[string]bool{}
	for _, c := range canonical {
		seen[string(c)] = true
	}
	add := func(b []byte) {
		if !seen[string(b)] {
			seen[string(b)] = true
			nonCanonical = append(nonCanonical, b)
		}
	}
	for _, c := range canonical {
		for _, sign := range []byte{0, 0x80} {
			flipped := bytes.Clone(c)
			flipped[31] = flipped[31]&0x7f | sign
			if _, err := new(edwards25519.Point).SetBytes(flipped); err == nil {
				add(flipped) // x = 0: -0 is not canonical; otherwise -P, already in the set
			}
			le := bytes.Clone(c)
			le[31] &= 0x7f
			slices.Reverse(le)
			y := new(big.Int).SetBytes(le)
			if y.Add(y, p).Cmp(limit) < 0 {
				b := y.FillBytes(make([]byte, 32))
				slices.Reverse(b)
				b[31] |= sign
				add(b)
			}
		}
	}
	for _, b := range nonCanonical {
		q, err := new(edwards25519.Point).SetBytes(b)
		if err != nil || new(edwards25519.Point).MultByCofactor(q).Equal(edwards25519.NewIdentityPoint()) != 1 {
			t.Fatalf("%x: not an encoding of a small-order point (%v)", b, err)
		}
	}
	return canonical, nonCanonical
}

func TestSmallOrderEncodings(t *testing.T) {
	canonical, nonCanonical := smallOrderEncodings(t)
	var got []string
	for _, b := range canonical {
		got = append(got, hex.EncodeToString(b))
	}
	slices.Sort(got)
	if len(slices.Compact(got)) != 8 {
		t.Fatalf("%d distinct torsion points, want 8: %v", len(got), got)
	}
	// The two whose x is 0 follow from the curve equation: the identity
	// (0, 1) and the point of order 2, (0, -1).
	for _, want := range []string{
		"0100000000000000000000000000000000000000000000000000000000000000",
		"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	} {
		if !slices.Contains(got, want) {
			t.Errorf("the torsion points %v lack %s", got, want)
		}
	}
	if len(nonCanonical) != 6 {
		t.Errorf("%d non-canonical encodings, want 6 (y = p and y = p + 1 with either sign, -0 of the identity and of the order-2 point)", len(nonCanonical))
	}
}

// The trivial signature: R = the identity, S = 0. Under the identity as
// the public key it verifies for every message.
var trivialSignature = b64url.EncodeToString(append(edwards25519.NewIdentityPoint().Bytes(), make([]byte, 32)...))

func TestSmallOrderKeysRefused(t *testing.T) {
	e := newPairEnv(t, func(o *Options) { o.AttemptsPerMinute = 100 })
	canonical, nonCanonical := smallOrderEncodings(t)
	for _, pub := range append(canonical, nonCanonical...) {
		t.Run(hex.EncodeToString(pub), func(t *testing.T) {
			cl := e.dial(deviceKey("unused"))
			cl.t = t
			now := e.now().UnixMilli()
			cl.send(map[string]any{"type": "pair", "token": e.setupToken(0),
				"device":    map[string]string{"public_key": b64url.EncodeToString(pub), "name": "identity", "platform": "x"},
				"signed_at": now, "signature": trivialSignature})
			cl.expectError(CodeBadRequest)
		})
	}
	// The trivial signature really does verify under the identity: the
	// refusal is what stops it, not the signature check.
	if !ed25519.Verify(canonical[0], []byte("anything"), must(b64url.DecodeString(trivialSignature))) {
		t.Error("the trivial signature does not verify under the identity; the test proves less than it claims")
	}
	// An ordinary key still pairs.
	cl := e.dial(deviceKey("ordinary"))
	cl.pair(e.setupToken(0), e.now().UnixMilli())
	if m := cl.recv(); m["type"] != "pending" {
		t.Fatalf("an ordinary key: %v, want pending", m)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
