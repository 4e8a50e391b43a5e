// Package qr renders setup codes as QR codes for a terminal and as PNG.
//
// The encoding itself is rsc.io/qr; what this package adds is the drawing:
// Unicode half blocks for a terminal, a 1-bit PNG, and a file writer that
// never leaves a readable or partial file behind.
package qr

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"io/fs"
	"os"
	"strings"

	rscqr "rsc.io/qr"
)

// QuietZone is the width, in modules, of the light border around every code.
// The QR standard asks for 4; scanners struggle to find the finder patterns
// without it, so it is drawn explicitly rather than left to the background.
const QuietZone = 4

const (
	// DefaultScale is the number of PNG pixels per module when PNG is given
	// a scale of zero or less.
	DefaultScale = 8
	// MaxScale caps the PNG scale: a version 40 code at this scale is already
	// 5920 pixels on a side.
	MaxScale = 32
)

// ErrTooLong is wrapped by the error returned for text that does not fit in
// a QR code at the level used.
var ErrTooLong = errors.New("qr: text too long for a QR code")

// Error-correction levels. A terminal shows the code on a clean, lit screen,
// so it gets the lowest level and with it the smallest code: the 202
// characters of a setup code for a 40-character URL are version 9 (53
// modules, 61 columns with the quiet zone) at L against version 10 (57, 65)
// at M, and every module saved makes the blocks larger on a phone's camera.
// At L a setup code fits 80 columns up to a URL of about 200 characters
// (version 13, 77 columns). A PNG may be printed, resized or recompressed,
// so it pays for M.
const (
	terminalLevel = rscqr.L
	pngLevel      = rscqr.M
)

// capacity is how many characters fit in a version 40 code, by level and by
// the mode rsc.io/qr picks for the text (ISO/IEC 18004 table 7).
var capacity = map[rscqr.Level]struct{ numeric, alnum, bytes int }{
	rscqr.L: {7089, 4296, 2953},
	rscqr.M: {5596, 3391, 2331},
}

var levelName = map[rscqr.Level]string{rscqr.L: "L", rscqr.M: "M"}

// encode returns the code for text, or an error wrapping ErrTooLong that
// gives the length and the limit.
func encode(text string, level rscqr.Level) (*rscqr.Code, error) {
	code, err := rscqr.Encode(text, level)
	if err == nil {
		return code, nil
	}
	// rsc.io/qr picks numeric, then alphanumeric, then byte mode; so do we,
	// to state the limit that applied.
	c, unit, limit := capacity[level], "bytes", 0
	switch {
	case isNumeric(text):
		unit, limit = "digits", c.numeric
	case isAlnum(text):
		unit, limit = "characters", c.alnum
	default:
		limit = c.bytes
	}
	if len(text) > limit {
		return nil, fmt.Errorf("%w: %d %s, at most %d fit at error-correction level %s",
			ErrTooLong, len(text), unit, limit, levelName[level])
	}
	return nil, fmt.Errorf("qr: encode %d bytes: %w", len(text), err)
}

func isNumeric(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func isAlnum(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || strings.IndexByte(" $%*+-./:", c) >= 0) {
			return false
		}
	}
	return true
}

// dark reports whether module (x, y) of the code with its quiet zone is dark;
// coordinates outside the code, the quiet zone included, are light.
func dark(code *rscqr.Code, x, y int) bool {
	return code.Black(x-QuietZone, y-QuietZone)
}

// TerminalOptions says how Terminal draws.
type TerminalOptions struct {
	// NoColor leaves out the ANSI colour escapes and prints dark modules as
	// ink on whatever the background is, so it scans only where that
	// background is light (or with a scanner that reads inverted codes).
	// Use it when the output is not a terminal (a pipe, a file, a log, text
	// to paste into a document or a message) or when the user has asked for
	// no colour (NO_COLOR). On a terminal, leave it false: the escapes make
	// the code black on white whatever the terminal's theme.
	NoColor bool
}

// ANSI escapes around every line: black foreground on a white background,
// reset at the end of the line so the colours never leak into what follows
// (nor into a line the terminal wraps or a ^C interrupts).
const (
	colorOn  = "\x1b[30;47m"
	colorOff = "\x1b[0m"
)

// Terminal draws text as a QR code for a terminal, in colour: black modules
// on a white background set with ANSI escapes, so it scans on dark and light
// themes alike. Use it when w is a terminal; see TerminalOptions otherwise.
func Terminal(w io.Writer, text string) error {
	return TerminalWithOptions(w, text, TerminalOptions{})
}

// TerminalWithOptions draws text as a QR code for a terminal with Unicode
// half blocks, two modules to a character row, inside a quiet zone of
// QuietZone modules. Every line has the same width, size+2*QuietZone
// characters, and ends in a newline. Nothing is written if the text does not
// encode.
func TerminalWithOptions(w io.Writer, text string, opts TerminalOptions) error {
	code, err := encode(text, terminalLevel)
	if err != nil {
		return err
	}
	// The full height, size+8, is odd (size is 4*version+17); the last
	// character row's lower half is light, adding half a module of quiet zone.
	n := code.Size + 2*QuietZone
	var b bytes.Buffer
	b.Grow((n + 1) / 2 * (n*len("█") + len(colorOn) + len(colorOff) + 1))
	for y := 0; y < n; y += 2 {
		if !opts.NoColor {
			b.WriteString(colorOn)
		}
		for x := 0; x < n; x++ {
			b.WriteString(halfBlock(dark(code, x, y), dark(code, x, y+1)))
		}
		if !opts.NoColor {
			b.WriteString(colorOff)
		}
		b.WriteByte('\n')
	}
	if _, err := w.Write(b.Bytes()); err != nil {
		return fmt.Errorf("qr: write terminal code: %w", err)
	}
	return nil
}

// halfBlock is the character for a top and a bottom module: the glyph's ink
// (the foreground colour) is the dark module, the background the light one.
func halfBlock(top, bottom bool) string {
	switch {
	case top && bottom:
		return "█"
	case top:
		return "▀"
	case bottom:
		return "▄"
	default:
		return " "
	}
}

// PNG returns text as a QR code in a 1-bit PNG, black on white, with a quiet
// zone of QuietZone modules and scale pixels per module (DefaultScale when
// scale <= 0, at most MaxScale).
func PNG(text string, scale int) ([]byte, error) {
	code, err := encode(text, pngLevel)
	if err != nil {
		return nil, err
	}
	if scale <= 0 {
		scale = DefaultScale
	}
	scale = min(scale, MaxScale)
	n := (code.Size + 2*QuietZone) * scale
	// A two-colour palette makes image/png write 1 bit per pixel.
	img := image.NewPaletted(image.Rect(0, 0, n, n), color.Palette{color.Gray{Y: 0xff}, color.Gray{Y: 0}})
	for y := 0; y < n; y++ {
		row := img.Pix[y*img.Stride : y*img.Stride+n]
		for x := range row {
			if dark(code, x/scale, y/scale) {
				row[x] = 1
			}
		}
	}
	var b bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(&b, img); err != nil {
		return nil, fmt.Errorf("qr: encode PNG: %w", err)
	}
	return b.Bytes(), nil
}

// WritePNG writes text as a QR code PNG (see PNG) to a new file at path,
// created with mode 0600: a setup code is a credential until it is used or
// expires. It refuses to overwrite an existing file, and removes the file it
// created if writing fails.
func WritePNG(path string, text string, scale int) (err error) {
	data, err := PNG(text, scale)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("qr: %s already exists; remove it or choose another name", path)
	}
	if err != nil {
		return fmt.Errorf("qr: create PNG: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(path)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("qr: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("qr: sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("qr: close %s: %w", path, err)
	}
	return nil
}
