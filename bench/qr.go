package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/pairgate/pairgate/device"
)

// setupURL is the gateway address given to setup-code: with the /pair
// path the daemon adds, the code carries a URL of 40 characters, the size
// of the SPEC §7 target.
const setupURL = "wss://gateway-home.example.com:7420"

// qrSize is the terminal QR code `pairgate setup-code` printed.
type qrSize struct {
	cols, lines int // in terminal columns and lines, quiet zone included
	codeLen     int // characters of the setup code
	urlLen      int // characters of the URL in it
}

// measureQR runs `pairgate setup-code` in a home of its own under dir.
func measureQR(ctx context.Context, bin, dir string) (*qrSize, error) {
	out, err := runCmd(ctx, pairgateEnv(), filepath.Join(bin, "pairgate"), "--home", filepath.Join(dir, "home-qr"), "setup-code", "--public-url", setupURL)
	if err != nil {
		return nil, err
	}
	return qrOf(string(out))
}

// qrOf measures the QR code in setup-code's output as
// TestSetupCodeFitsTerminal does: the lines drawn only with half blocks
// and spaces (stdout is no terminal, so no colour escapes), in columns (one
// per rune: these glyphs are one column wide).
func qrOf(out string) (*qrSize, error) {
	q := &qrSize{}
	for _, l := range strings.Split(out, "\n") {
		if q.codeLen == 0 && l != "" && !strings.ContainsAny(l, " ▀▄█") {
			if sc, err := device.DecodeSetupCode(l); err == nil {
				q.codeLen, q.urlLen = len(l), len(sc.URL)
			}
		}
		if l != "" && strings.Trim(l, " ▀▄█") == "" {
			q.lines++
			q.cols = max(q.cols, utf8.RuneCountInString(l))
		}
	}
	switch {
	case q.codeLen == 0:
		return nil, errors.New("setup-code printed no setup code")
	case q.urlLen != 40:
		return nil, fmt.Errorf("the setup code carries a URL of %d characters; the target is for 40", q.urlLen)
	case q.lines == 0:
		return nil, errors.New("setup-code printed no QR code")
	}
	return q, nil
}
