package channel

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestNormalizeAccount(t *testing.T) {
	type result struct {
		Account string
		Err     string // the whole message; "" when accepted
	}
	ok := func(account string) result { return result{Account: account} }
	refused := func(quoted, problem string) result {
		return result{Err: "account " + quoted + ": " + problem + "; want 1–64 characters of a-z, 0-9, _ and -: invalid account"}
	}
	long := strings.Repeat("a", 65)
	tests := []struct {
		raw  string
		want result
	}{
		{"default", ok("default")},
		{"work", ok("work")},
		{"bot_2-eu", ok("bot_2-eu")},
		{"0", ok("0")},
		{strings.Repeat("a", 64), ok(strings.Repeat("a", 64))},
		// Case-folded on input: one account whatever the spelling.
		{"DEFAULT", ok("default")},
		{"Work", ok("work")},
		{"wOrK_1", ok("work_1")},
		{" work\t", ok("work")},

		// NATS wildcards and separators, paths, spaces: refused.
		{"*", refused(`"*"`, "'*' is not allowed")},
		{">", refused(`">"`, "'>' is not allowed")},
		{"a.b", refused(`"a.b"`, "'.' is not allowed")},
		{"../x", refused(`"../x"`, "'.' is not allowed")},
		{"a/b", refused(`"a/b"`, "'/' is not allowed")},
		{"a b", refused(`"a b"`, "' ' is not allowed")},
		{"", refused(`""`, "empty")},
		{"  \t", refused(`"  \t"`, "empty")},
		{long, refused(`"`+long[:64]+`"... (65 bytes)`, "65 characters")},
		{"wörk", refused(`"wörk"`, "'ö' is not allowed")},
		// The Kelvin sign folds to k under Unicode rules; here it is refused.
		{"\u212aelvin", refused("\"\u212aelvin\"", "'\u212a' is not allowed")},
		{"a\x00b", refused(`"a\x00b"`, `'\x00' is not allowed`)},
		{"a\xffb", refused(`"a\xffb"`, "invalid UTF-8")},
	}
	for _, tt := range tests {
		var got result
		var err error
		got.Account, err = NormalizeAccount(tt.raw)
		if err != nil {
			got.Err = err.Error()
			if !errors.Is(err, ErrInvalidAccount) {
				t.Errorf("NormalizeAccount(%q): %v does not wrap ErrInvalidAccount", tt.raw, err)
			}
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("NormalizeAccount(%q) (-want +got):\n%s", tt.raw, diff)
		}
	}
}

// TestNormalizeAccountCanonicalZeroAlloc: the gate folds the account of
// every message, so a canonical name must come back as is, for free.
func TestNormalizeAccountCanonicalZeroAlloc(t *testing.T) {
	for _, in := range []string{"default", "work", "bot_2-eu"} {
		allocs := testing.AllocsPerRun(100, func() {
			if got, err := NormalizeAccount(in); err != nil || got != in {
				t.Fatalf("NormalizeAccount(%q) = %q, %v", in, got, err)
			}
		})
		if allocs != 0 {
			t.Errorf("NormalizeAccount(%q) allocates %v times, want 0", in, allocs)
		}
	}
}
