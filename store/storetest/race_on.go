//go:build race

package storetest

// raceEnabled: the race detector slows every statement many times over
// (SQLite's, in pure Go, most), so the volume cases shrink to sizes that
// still interleave the same code paths.
const raceEnabled = true
