package main

import (
	"strconv"
	"strings"
	"time"
)

// maxAllowed bounds -allowed so allowed senders (1..N) never meet the
// unknown ones (unknownBase and up).
const maxAllowed = 1_000_000_000_000

// senderID returns synthetic sender number i (i >= 1) of channel ch, written
// the way the channel's adapter writes it, so that sender i is the same
// allowlist entry whether -seed created it or the gate normalised it.
func senderID(ch string, i uint64) string {
	n := strconv.FormatUint(i, 10)
	switch ch {
	case "whatsapp", "signal", "imessage":
		// E.164 allows 15 digits: "+1" and 14 more.
		n = strconv.FormatUint(i%100_000_000_000_000, 10)
		return "+1" + strings.Repeat("0", 14-len(n)) + n
	case "slack":
		return "U" + strings.ToUpper(strconv.FormatUint(i, 36))
	case "feishu":
		return "ou_load" + n
	case "matrix":
		return "@load" + n + ":loadtest.invalid"
	case "email":
		return "load" + n + "@loadtest.invalid"
	default: // telegram, discord: decimal ids
		return n
	}
}

// unknownBase is where this run's unknown senders start numbering. It moves
// with the clock (a million a second) so a second run does not meet the
// first run's senders, which would be pending or declined by then.
func unknownBase(now time.Time) uint64 {
	return 10_000_000_000_000 + uint64(now.UnixMicro())%80_000_000_000_000
}
