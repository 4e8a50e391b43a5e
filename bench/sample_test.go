package main

import "testing"

func TestSample(t *testing.T) {
	s := sample{3, 1, 2}
	if s.median() != 2 || s.min() != 1 || s.max() != 3 {
		t.Errorf("%v: median %v, min %v, max %v", s, s.median(), s.min(), s.max())
	}
	if m := (sample{4, 1, 3, 2}).median(); m != 2.5 {
		t.Errorf("median of 1..4: %v, want 2.5", m)
	}
	if got := (sample{2952.4, 3138.2}).span(thousands); got != "2,952–3,138" {
		t.Errorf("span: %q", got)
	}
	if got := (sample{0.4, 0.2}).span(decimals(0)); got != "0" {
		t.Errorf("a span that reads as one figure: %q, want 0", got)
	}
}

func TestThousands(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 999.5: "1,000", 20280.4: "20,280", 1_000_000: "1,000,000", -1234: "-1,234"} {
		if got := thousands(v); got != want {
			t.Errorf("thousands(%v) = %q, want %q", v, got, want)
		}
	}
}
