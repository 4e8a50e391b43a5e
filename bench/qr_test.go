package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func readFixture(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// The recorded output of `pairgate setup-code --public-url
// wss://gateway-home.example.com:7420`: a 40-character URL.
func TestQRWidth(t *testing.T) {
	q, err := qrOf(readFixture(t, "setup-code.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if *q != (qrSize{cols: 61, lines: 31, codeLen: 202, urlLen: 40}) {
		t.Errorf("QR %+v, want 61 columns × 31 lines of a 202-character code for a 40-character URL", *q)
	}
}

func TestQRErrors(t *testing.T) {
	out := readFixture(t, "setup-code.txt")
	var noQR []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Trim(l, " ▀▄█") != "" {
			noQR = append(noQR, l)
		}
	}
	for _, c := range []struct{ name, out, want string }{
		{"a URL of another length", readFixture(t, "setup-code-short-url.txt"), "a URL of 25 characters; the target is for 40"},
		{"no code", "Setup code for nothing\n\n", "setup-code printed no setup code"},
		{"no QR code", strings.Join(noQR, "\n"), "setup-code printed no QR code"},
	} {
		if _, err := qrOf(c.out); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error saying %q", c.name, err, c.want)
		}
	}
}
