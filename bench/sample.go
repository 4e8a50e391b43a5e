package main

import (
	"math"
	"slices"
	"strconv"
	"strings"
)

// sample is one figure as measured by each run (-count), in run order.
type sample []float64

func (s sample) min() float64 { return slices.Min(s) }
func (s sample) max() float64 { return slices.Max(s) }

// median is what met? compares with a target: one noisy run neither
// meets nor misses it on its own.
func (s sample) median() float64 {
	c := slices.Clone(s)
	slices.Sort(c)
	n := len(c)
	if n%2 == 1 {
		return c[n/2]
	}
	return (c[n/2-1] + c[n/2]) / 2
}

// span writes the sample as min–max in the format f, or as one figure when
// both read the same.
func (s sample) span(f func(float64) string) string {
	lo, hi := f(s.min()), f(s.max())
	if lo == hi {
		return lo
	}
	return lo + "–" + hi
}

// thousands writes v rounded to a whole number with thousands separators:
// 20280.4 → "20,280".
func thousands(v float64) string {
	n := int64(math.Round(v))
	neg := n < 0
	if neg {
		n = -n
	}
	digits := strconv.FormatInt(n, 10)
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, d := range digits {
		if i > 0 && (len(digits)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(d)
	}
	return b.String()
}

// decimals returns a formatter with n digits after the point.
func decimals(n int) func(float64) string {
	return func(v float64) string { return strconv.FormatFloat(v, 'f', n, 64) }
}
