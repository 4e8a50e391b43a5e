package command_test

import (
	"strings"
	"testing"

	"github.com/pairgate/pairgate/command"
)

// Parse reads any text without panicking, and what it returns is a
// command name a lookup can trust: a-z, 0-9, "_" and "-" only.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"/approve ABCD2345", "/APPROVE@mybot req_x", " /pair kitchen  tablet ", "/", "hello", "/@bot", "/\u00a0x", "/approve\tA\nB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		name, args, ok := command.Parse(text)
		if !ok {
			if name != "" || args != nil {
				t.Fatalf("Parse(%q) = %q, %q, false", text, name, args)
			}
			return
		}
		if name == "" || strings.TrimLeft(name, "abcdefghijklmnopqrstuvwxyz0123456789_-") != "" {
			t.Fatalf("Parse(%q): name %q", text, name)
		}
		for _, a := range args {
			if a == "" || strings.TrimSpace(a) != a {
				t.Fatalf("Parse(%q): arg %q", text, a)
			}
		}
	})
}
