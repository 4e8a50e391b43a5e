package qr_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/makiuchi-d/gozxing"
	zxqr "github.com/makiuchi-d/gozxing/qrcode"

	"github.com/pairgate/pairgate/qr"
)

// setupURL is a gateway URL of 40 characters, the length SPEC section 7
// sizes the terminal QR code for.
const setupURL = "wss://gateway-home.example.com:7420/pair"

// setupCode builds a setup code the way SPEC section 3 shapes it:
// base64url of the JSON object, holding setupURL and a compact v2 token
// ("pg2_" and 33 bytes of base64url).
func setupCode(t *testing.T) string {
	t.Helper()
	raw := make([]byte, 33)
	for i := range raw {
		raw[i] = byte(i*37 + 11)
	}
	token := "pg2_" + base64.RawURLEncoding.EncodeToString(raw)
	js := `{"v":1,"url":"` + setupURL + `","token":"` + token + `","expires_at":"2026-11-24T09:10:00Z"}`
	code := base64.RawURLEncoding.EncodeToString([]byte(js))
	if len(setupURL) != 40 || len(token) != 48 || len(code) != 202 {
		t.Fatalf("URL %d, token %d, setup code %d characters; want 40, 48 and 202", len(setupURL), len(token), len(code))
	}
	return code
}

var shortText = "hello, pairgate"

// decode reads a QR code from img with gozxing, an implementation
// independent of the encoder.
func decode(t *testing.T, img image.Image) string {
	t.Helper()
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatalf("binary bitmap: %v", err)
	}
	// PURE_BARCODE: the image is a code we rendered, upright and unskewed.
	// gozxing's finder-pattern search (for photos) misses about 1.5% of
	// such codes, which phone scanners read; the pure path reads them all.
	res, err := zxqr.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_PURE_BARCODE: true})
	if err != nil {
		t.Fatalf("gozxing could not decode the code: %v", err)
	}
	return res.GetText()
}

func TestPNGRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name  string
		text  string
		scale int
	}{
		{"setup code", setupCode(t), 0},
		{"setup code scale 3", setupCode(t), 3},
		{"short", shortText, 8},
		{"short scale 1", shortText, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, err := qr.PNG(tc.text, tc.scale)
			if err != nil {
				t.Fatal(err)
			}
			img, err := png.Decode(bytes.NewReader(data))
			if err != nil {
				t.Fatalf("decode PNG: %v", err)
			}
			if got := decode(t, img); got != tc.text {
				t.Errorf("decoded %q, want %q", got, tc.text)
			}
		})
	}
}

func TestPNGFormat(t *testing.T) {
	code := setupCode(t)
	for _, tc := range []struct {
		text        string
		scale, want int
	}{
		{code, 0, qr.DefaultScale},
		{shortText, -5, qr.DefaultScale},
		{code, 1, 1},
		{code, 5, 5},
		{shortText, qr.MaxScale, qr.MaxScale},
		{shortText, 1000, qr.MaxScale},
	} {
		data, err := qr.PNG(tc.text, tc.scale)
		if err != nil {
			t.Fatal(err)
		}
		// IHDR: width, height, bit depth, colour type at fixed offsets.
		if len(data) < 26 || string(data[12:16]) != "IHDR" {
			t.Fatalf("scale %d: no IHDR chunk first", tc.scale)
		}
		if depth := data[24]; depth != 1 {
			t.Errorf("scale %d: bit depth %d, want 1", tc.scale, depth)
		}
		img, err := png.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		b := img.Bounds()
		if b.Dx() != b.Dy() || b.Dx()%tc.want != 0 {
			t.Fatalf("scale %d: image %v is not square or not a multiple of %d", tc.scale, b, tc.want)
		}
		modules := b.Dx() / tc.want
		if size := modules - 2*qr.QuietZone; size < 21 || (size-17)%4 != 0 {
			t.Fatalf("scale %d: %d modules across is not a QR size plus the quiet zone", tc.scale, modules)
		}
		pal, ok := img.(*image.Paletted)
		if !ok || len(pal.Palette) != 2 || !isWhite(pal.Palette[0]) || !isBlack(pal.Palette[1]) {
			t.Fatalf("scale %d: image is %T, want a white and black palette", tc.scale, img)
		}
		// The quiet zone is white all round; the finder pattern's corner
		// starts right after it, black.
		q := qr.QuietZone * tc.want
		for y := 0; y < b.Dy(); y++ {
			for x := 0; x < b.Dx(); x++ {
				inside := x >= q && x < b.Dx()-q && y >= q && y < b.Dy()-q
				if !inside && pal.ColorIndexAt(x, y) != 0 {
					t.Fatalf("scale %d: pixel (%d,%d) in the quiet zone is not white", tc.scale, x, y)
				}
			}
		}
		for _, p := range []image.Point{{q, q}, {b.Dx() - q - 1, q}, {q, b.Dy() - q - 1}} {
			if pal.ColorIndexAt(p.X, p.Y) != 1 {
				t.Errorf("scale %d: finder corner %v is not black", tc.scale, p)
			}
		}
		if tc.scale == 0 {
			t.Logf("%d-character setup code: PNG %d modules across, %dx%d pixels, %d bytes",
				len(tc.text), modules, b.Dx(), b.Dy(), len(data))
		}
	}
}

func isWhite(c color.Color) bool { return color.GrayModel.Convert(c).(color.Gray).Y == 0xff }
func isBlack(c color.Color) bool { return color.GrayModel.Convert(c).(color.Gray).Y == 0 }

// modules reverses the half-block mapping: a character's ink is dark, its
// background light; the top half is the even row, the bottom half the odd.
var modules = map[rune][2]bool{
	' ': {false, false},
	'▀': {true, false},
	'▄': {false, true},
	'█': {true, true},
}

// parseTerminal turns Terminal's output back into a module matrix (true is
// dark), checking the line structure on the way.
func parseTerminal(t *testing.T, out string, noColor bool) [][]bool {
	t.Helper()
	if !strings.HasSuffix(out, "\n") {
		t.Fatal("output does not end in a newline")
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	var grid [][]bool
	width := -1
	for i, line := range lines {
		if noColor {
			if strings.Contains(line, "\x1b") {
				t.Fatalf("line %d: escape sequence in no-colour output: %q", i, line)
			}
		} else {
			body, ok := strings.CutPrefix(line, "\x1b[30;47m")
			if !ok {
				t.Fatalf("line %d does not start with black on white: %q", i, line)
			}
			if line, ok = strings.CutSuffix(body, "\x1b[0m"); !ok {
				t.Fatalf("line %d does not end with a reset: %q", i, body)
			}
			if strings.Contains(line, "\x1b") {
				t.Fatalf("line %d: escape sequence inside the code: %q", i, line)
			}
		}
		runes := []rune(line)
		if width == -1 {
			width = len(runes)
		}
		if len(runes) != width {
			t.Fatalf("line %d is %d characters wide, line 0 is %d", i, len(runes), width)
		}
		top, bottom := make([]bool, width), make([]bool, width)
		for x, r := range runes {
			m, ok := modules[r]
			if !ok {
				t.Fatalf("line %d, column %d: unexpected character %q", i, x, r)
			}
			top[x], bottom[x] = m[0], m[1]
		}
		grid = append(grid, top, bottom)
	}
	// A QR code plus its quiet zone is an odd number of modules high, so
	// the last character row's bottom half is padding, light.
	if len(grid) != width+1 {
		t.Fatalf("%d module rows for %d columns; want %d", len(grid), width, width+1)
	}
	for x, d := range grid[width] {
		if d {
			t.Fatalf("padding half-row is dark at column %d", x)
		}
	}
	grid = grid[:width]
	q := qr.QuietZone
	for y := range grid {
		for x := range grid[y] {
			inside := x >= q && x < width-q && y >= q && y < width-q
			if !inside && grid[y][x] {
				t.Fatalf("module (%d,%d) in the quiet zone is dark", x, y)
			}
		}
	}
	for _, p := range []image.Point{{q, q}, {width - q - 1, q}, {q, width - q - 1}} {
		if !grid[p.Y][p.X] {
			t.Fatalf("finder corner %v is light: the quiet zone is not %d modules", p, q)
		}
	}
	return grid
}

// rasterise draws a module matrix at px pixels per module, black on white.
func rasterise(grid [][]bool, px int) image.Image {
	n := len(grid)
	img := image.NewGray(image.Rect(0, 0, n*px, n*px))
	for y := range img.Pix {
		img.Pix[y] = 0xff
	}
	for y := range n * px {
		for x := range n * px {
			if grid[y/px][x/px] {
				img.SetGray(x, y, color.Gray{})
			}
		}
	}
	return img
}

func TestTerminalRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name    string
		text    string
		noColor bool
	}{
		{"setup code colour", setupCode(t), false},
		{"setup code no colour", setupCode(t), true},
		{"short colour", shortText, false},
		{"short no colour", shortText, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			var err error
			if tc.noColor {
				err = qr.TerminalWithOptions(&b, tc.text, qr.TerminalOptions{NoColor: true})
			} else {
				err = qr.Terminal(&b, tc.text)
			}
			if err != nil {
				t.Fatal(err)
			}
			grid := parseTerminal(t, b.String(), tc.noColor)
			if got := decode(t, rasterise(grid, 4)); got != tc.text {
				t.Errorf("decoded %q, want %q", got, tc.text)
			}
		})
	}
}

// TestTerminalSize pins the size of a setup code on screen, which decides
// whether it fits a terminal window: for a 40-character URL at most 80
// columns, quiet zone included (SPEC section 7), in colour or not.
func TestTerminalSize(t *testing.T) {
	text := setupCode(t)
	for _, noColor := range []bool{false, true} {
		var b strings.Builder
		if err := qr.TerminalWithOptions(&b, text, qr.TerminalOptions{NoColor: noColor}); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
		cols := 0
		for _, l := range lines {
			l = strings.TrimSuffix(strings.TrimPrefix(l, "\x1b[30;47m"), "\x1b[0m") // escapes take no column
			cols = max(cols, utf8.RuneCountInString(l))
		}
		if cols > 80 {
			t.Errorf("no colour %v: %d-character setup code is %d columns wide; want at most 80", noColor, len(text), cols)
		}
		// Version 9 at level L, 53 modules, plus the quiet zone.
		if cols != 53+2*qr.QuietZone || len(lines) != (cols+1)/2 {
			t.Errorf("no colour %v: %d-character setup code is %d columns by %d lines; want 61 by 31", noColor, len(text), cols, len(lines))
		}
		t.Logf("no colour %v: %d-character setup code: %d columns by %d lines", noColor, len(text), cols, len(lines))
	}
}

func TestTooLong(t *testing.T) {
	for _, tc := range []struct {
		name   string
		text   string
		png    bool
		ok     bool
		inErr  string // in the error when !ok
		inErr2 string
	}{
		// The terminal uses level L, PNG level M.
		{"terminal bytes at limit", strings.Repeat("a", 2953), false, true, "", ""},
		{"terminal bytes over", strings.Repeat("a", 2954), false, false, "2954 bytes", "at most 2953"},
		{"terminal alnum over", strings.Repeat("A", 4297), false, false, "4297 characters", "at most 4296"},
		{"terminal digits at limit", strings.Repeat("7", 7089), false, true, "", ""},
		{"terminal digits over", strings.Repeat("7", 7090), false, false, "7090 digits", "at most 7089"},
		{"png bytes at limit", strings.Repeat("a", 2331), true, true, "", ""},
		{"png bytes over", strings.Repeat("a", 2332), true, false, "2332 bytes", "at most 2331"},
		{"png setup code twelve times", strings.Repeat(setupCode(t), 12), true, false, "too long for a QR code", "level M"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			var b bytes.Buffer
			if tc.png {
				_, err = qr.PNG(tc.text, 1)
			} else {
				err = qr.Terminal(&b, tc.text)
			}
			if tc.ok {
				if err != nil {
					t.Fatalf("%d characters: %v", len(tc.text), err)
				}
				return
			}
			if !errors.Is(err, qr.ErrTooLong) {
				t.Fatalf("error %v, want ErrTooLong", err)
			}
			for _, s := range []string{tc.inErr, tc.inErr2} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
			if b.Len() != 0 {
				t.Errorf("%d bytes written despite the error", b.Len())
			}
		})
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }

func TestTerminalWriteError(t *testing.T) {
	err := qr.Terminal(failWriter{}, shortText)
	if err == nil || !strings.Contains(err.Error(), "broken pipe") {
		t.Fatalf("error %v, want the writer's", err)
	}
}

func TestWritePNG(t *testing.T) {
	text := setupCode(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "setup.png")

	if err := qr.WritePNG(path, text, 4); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("mode %v, want 0600", perm)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if got := decode(t, img); got != text {
		t.Errorf("file decodes to %q, want %q", got, text)
	}

	t.Run("refuses to overwrite", func(t *testing.T) {
		err := qr.WritePNG(path, shortText, 4)
		if err == nil {
			t.Fatal("overwrote an existing file")
		}
		for _, s := range []string{path, "already exists", "remove it or choose another name"} {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("error %q does not say %q", err, s)
			}
		}
		after, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(after, data) {
			t.Error("the existing file was changed")
		}
	})

	t.Run("missing directory", func(t *testing.T) {
		p := filepath.Join(dir, "no", "such", "dir", "setup.png")
		if err := qr.WritePNG(p, text, 4); err == nil {
			t.Fatal("no error for a missing directory")
		}
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("stat after failure: %v, want not exist", err)
		}
	})

	t.Run("too long leaves no file", func(t *testing.T) {
		p := filepath.Join(dir, "long.png")
		err := qr.WritePNG(p, strings.Repeat("a", 5000), 4)
		if !errors.Is(err, qr.ErrTooLong) {
			t.Fatalf("error %v, want ErrTooLong", err)
		}
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("stat after failure: %v, want not exist", err)
		}
	})
}
