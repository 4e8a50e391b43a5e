package pairing

import (
	"crypto/rand"
	"strings"
	"testing"
)

// TestCodesAreUniform draws many codes and checks that every symbol appears
// about equally often in every position: a modulo bias, or a slip in how
// bits map to symbols, would skew the counts.
func TestCodesAreUniform(t *testing.T) {
	c := codec{codeKey: []byte(rand.Text()), hashKey: []byte(rand.Text())}
	const n = 32 * 1000
	var counts [CodeLength][32]int
	for i := 0; i < n; i++ {
		code := c.code(newRequestID())
		if len(code) != CodeLength {
			t.Fatalf("code %q has %d characters", code, len(code))
		}
		for p := 0; p < CodeLength; p++ {
			k := strings.IndexByte(Alphabet, code[p])
			if k < 0 {
				t.Fatalf("code %q has a character outside the alphabet", code)
			}
			counts[p][k]++
		}
	}
	// Chi-square with 31 degrees of freedom: 70 is beyond p = 0.0001.
	exp := float64(n) / 32
	for p := range counts {
		chi := 0.0
		for _, got := range counts[p] {
			d := float64(got) - exp
			chi += d * d / exp
		}
		if chi > 70 {
			t.Errorf("position %d: chi-square %.1f, codes look biased: %v", p, chi, counts[p])
		}
	}
}

// TestCodeIsAFunctionOfTheRequest: the same request id always gives the
// same code (so a reminder repeats it), another key gives another code, and
// the stored hash differs from the code.
func TestCodeIsAFunctionOfTheRequest(t *testing.T) {
	c := codec{codeKey: []byte("k1"), hashKey: []byte("h1")}
	id := newRequestID()
	first, again := c.code(id), c.code(id)
	if first != again {
		t.Fatal("a request's code changed")
	}
	other := codec{codeKey: []byte("k2"), hashKey: []byte("h1")}
	if c.code(id) == other.code(id) {
		t.Fatal("a different secret gave the same code")
	}
	if h := c.hash(c.code(id)); strings.Contains(string(h), c.code(id)) || len(h) != 32 {
		t.Fatalf("hash %x", h)
	}
	if !strings.HasPrefix(id, RequestIDPrefix) || len(id) != len(RequestIDPrefix)+26 {
		t.Fatalf("request id %q", id)
	}
}
