package device

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// ErrBadSetupCode is wrapped by every error from [EncodeSetupCode] and
// [DecodeSetupCode]. The message after it says what is wrong and what to do;
// it never repeats the token, which is a secret.
var ErrBadSetupCode = errors.New("bad setup code")

// SetupCodeVersion is the version of the setup code format this package
// writes and the newest it reads.
const SetupCodeVersion = 1

// MaxSetupCodeLen is the longest setup code text, in bytes, that
// [DecodeSetupCode] reads and [EncodeSetupCode] writes. Real codes are a few
// hundred characters; the limit keeps a stray paste of a whole file from
// being parsed.
const MaxSetupCodeLen = 8 << 10

// expiresAtLayout is RFC 3339 in UTC with second precision, the one form
// pairgate writes: 2026-11-24T09:10:00Z.
const expiresAtLayout = "2006-01-02T15:04:05Z"

// maxExpiresAtMs is 9999-12-31T23:59:59.999Z: the last instant RFC 3339
// (four-digit years) can write.
const maxExpiresAtMs = 253402300799999

// askAgain ends the messages where the code itself is broken.
const askAgain = "ask for a new code (pairgate setup-code)"

// SetupCode is what the operator hands to a device: where to connect and the
// setup token to present there.
//
// On the wire a setup code is
//
//	base64url-nopad({"v":1,"url":"wss://host/pair","token":"pg2_…","expires_at":"2026-11-24T09:10:00Z"})
//
// (RFC 4648 section 5 alphabet, no "=" padding) with exactly those four keys
// in that order and no whitespace. Strings are escaped as JavaScript's
// JSON.stringify escapes them: only '"', '\\' and control characters, the
// control characters as \b \t \n \f \r or \u00xx; everything else, non-ASCII
// included, is written as UTF-8. expires_at is UTC with second precision.
type SetupCode struct {
	// Version is the format version. DecodeSetupCode always sets it to 1 (a
	// code without "v", from nexo or OpenClaw, is version 1);
	// EncodeSetupCode takes 0 to mean 1.
	Version int
	// URL is the gateway's /pair WebSocket URL, as written in the code.
	// Neither function checks it beyond being non-empty: run it through
	// [NormalizeURL] before connecting, so the cleartext rule applies.
	URL string
	// Token is the setup token: opaque text to a device, pairgate's compact
	// "pg2_…" token or another system's.
	Token string
	// ExpiresAt is when the code stops working, in UTC, to the second
	// (rounded down). pairgate always writes it; OpenClaw codes may not carry
	// one, and then it is the zero time: the token's own expiry still holds
	// on the gateway.
	ExpiresAt time.Time
}

// EncodeSetupCode returns the text form of c. It refuses an empty URL or
// token, a missing expiry, and anything DecodeSetupCode could not read back.
// ExpiresAt is converted to UTC and rounded down to the second, so a code
// never claims to outlive its token.
func EncodeSetupCode(c SetupCode) (string, error) {
	if c.Version != 0 && c.Version != SetupCodeVersion {
		return "", fmt.Errorf("%w: cannot write version %d, only version %d", ErrBadSetupCode, c.Version, SetupCodeVersion)
	}
	if c.URL == "" {
		return "", fmt.Errorf("%w: the URL is empty: resolve the gateway's public URL first", ErrBadSetupCode)
	}
	if c.Token == "" {
		return "", fmt.Errorf("%w: the token is empty: issue a setup token first", ErrBadSetupCode)
	}
	if !utf8.ValidString(c.URL) || !utf8.ValidString(c.Token) {
		return "", fmt.Errorf("%w: the URL or token is not valid UTF-8", ErrBadSetupCode)
	}
	if c.ExpiresAt.IsZero() {
		return "", fmt.Errorf("%w: no expiry: set ExpiresAt to the token's expiry", ErrBadSetupCode)
	}
	exp := c.ExpiresAt.UTC().Truncate(time.Second)
	if err := checkExpiryRange(exp); err != nil {
		return "", err
	}
	s := base64.RawURLEncoding.EncodeToString(canonicalJSON(c.URL, c.Token, exp))
	if len(s) > MaxSetupCodeLen {
		return "", fmt.Errorf("%w: URL and token make a code of %d characters, more than the %d a setup code may have", ErrBadSetupCode, len(s), MaxSetupCodeLen)
	}
	return s, nil
}

// canonicalJSON writes the one JSON form pairgate emits.
func canonicalJSON(url, token string, exp time.Time) []byte {
	b := make([]byte, 0, 64+len(url)+len(token))
	b = append(b, `{"v":1,"url":`...)
	b = appendJSONString(b, url)
	b = append(b, `,"token":`...)
	b = appendJSONString(b, token)
	b = append(b, `,"expires_at":"`...)
	b = exp.AppendFormat(b, expiresAtLayout)
	b = append(b, `"}`...)
	return b
}

// appendJSONString quotes s the way JSON.stringify does, so an
// implementation in another language produces the same bytes. (encoding/json
// would also escape <, >, & and U+2028/U+2029.) s must be valid UTF-8.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\b':
			b = append(b, '\\', 'b')
		case c == '\t':
			b = append(b, '\\', 't')
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\f':
			b = append(b, '\\', 'f')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

func checkExpiryRange(t time.Time) error {
	if y := t.Year(); y < 1970 || y > 9999 {
		return fmt.Errorf("%w: expiry %d is outside the years 1970 to 9999: %s", ErrBadSetupCode, y, askAgain)
	}
	return nil
}

// Field names: pairgate's first, then the other systems' spellings of the
// same thing.
var (
	urlKeys   = []string{"url", "gatewayUrl"}                          // OpenClaw writes either
	tokenKeys = []string{"token", "bootstrap_token", "bootstrapToken"} // pairgate, nexo, OpenClaw
)

// knownKeys are the fields DecodeSetupCode reads; all others are skipped.
var knownKeys = map[string]bool{
	"v":   true,
	"url": true, "gatewayUrl": true,
	"token": true, "bootstrap_token": true, "bootstrapToken": true,
	"expires_at": true, "expiresAtMs": true,
}

// DecodeSetupCode reads a setup code written by pairgate, nexo or OpenClaw.
//
// It is lenient about how the text arrived: whitespace anywhere is ignored
// (codes get wrapped in e-mails and chats), "=" padding is optional, and the
// standard base64 alphabet ("+/") is read as well as base64url ("-_"). It is
// strict about what the text says: the JSON must be one object, and a field
// pairgate reads must have the right type and appear once. Field names are
// matched exactly (case-sensitively):
//
//   - v: a whole number; absent means 1; above 1 is refused (upgrade).
//   - url, or OpenClaw's gatewayUrl: a non-empty string.
//   - token, or nexo's bootstrap_token, or OpenClaw's bootstrapToken: a
//     non-empty string.
//   - expires_at (RFC 3339 string), or OpenClaw's expiresAtMs (unix
//     milliseconds, a whole number): optional; absent leaves ExpiresAt zero.
//
// When a code carries two spellings of the same field they must agree.
// A JSON null counts as absent. Other fields are ignored. It does not check
// whether the code has expired: compare ExpiresAt with the clock.
func DecodeSetupCode(s string) (SetupCode, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return SetupCode{}, fmt.Errorf("%w: it is empty: paste the code that pairgate setup-code printed", ErrBadSetupCode)
	}
	if len(s) > MaxSetupCodeLen {
		return SetupCode{}, fmt.Errorf("%w: it is %d characters long, more than the %d a setup code may have: paste only the code", ErrBadSetupCode, len(s), MaxSetupCodeLen)
	}
	payload, err := decodeBase64(s)
	if err != nil {
		return SetupCode{}, err
	}
	if !utf8.Valid(payload) {
		return SetupCode{}, fmt.Errorf("%w: it does not decode to text: copy the whole code again, or %s", ErrBadSetupCode, askAgain)
	}
	fields, err := parseObject(payload)
	if err != nil {
		return SetupCode{}, err
	}

	// The version first: a newer format may name its fields differently, and
	// "upgrade" is more useful than "missing token".
	if raw, ok := fields["v"]; ok {
		if err := checkVersion(raw); err != nil {
			return SetupCode{}, err
		}
	}
	url, err := stringField(fields, urlKeys)
	if err != nil {
		return SetupCode{}, err
	}
	token, err := stringField(fields, tokenKeys)
	if err != nil {
		return SetupCode{}, err
	}
	exp, err := expiryField(fields)
	if err != nil {
		return SetupCode{}, err
	}
	c := SetupCode{Version: SetupCodeVersion, URL: url, Token: token, ExpiresAt: exp}

	// Accept only what EncodeSetupCode could write back, so a decoded code
	// can always be shown again (as text or QR). Only the length can differ:
	// the JSON above is at most a few bytes per field longer than the input.
	probe := exp
	if probe.IsZero() {
		probe = time.Unix(0, 0).UTC()
	}
	if n := base64.RawURLEncoding.EncodedLen(len(canonicalJSON(url, token, probe))); n > MaxSetupCodeLen {
		return SetupCode{}, fmt.Errorf("%w: its URL and token are longer than a setup code may hold (%d characters): %s", ErrBadSetupCode, MaxSetupCodeLen, askAgain)
	}
	return c, nil
}

// decodeBase64 reads base64url or standard base64, padded or not, ignoring
// whitespace.
func decodeBase64(s string) ([]byte, error) {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case ' ', '\t', '\n', '\r', '\v', '\f':
		case '+':
			b = append(b, '-')
		case '/':
			b = append(b, '_')
		default:
			b = append(b, c)
		}
	}
	unpadded := bytes.TrimRight(b, "=")
	if pad := len(b) - len(unpadded); pad > 2 || (pad > 0 && len(b)%4 != 0) {
		return nil, fmt.Errorf("%w: its \"=\" padding is wrong: copy the whole code again, or %s", ErrBadSetupCode, askAgain)
	}
	out := make([]byte, base64.RawURLEncoding.DecodedLen(len(unpadded)))
	n, err := base64.RawURLEncoding.Decode(out, unpadded)
	if err != nil {
		var ce base64.CorruptInputError
		if errors.As(err, &ce) && (int(ce) >= len(unpadded) || strings.IndexByte(base64URLAlphabet, unpadded[ce]) >= 0) {
			// Every character is valid, so the length is not: the tail is
			// missing or has extra characters.
			return nil, fmt.Errorf("%w: it is not a whole base64url text (wrong length): was it cut off? Copy the whole code again", ErrBadSetupCode)
		}
		return nil, fmt.Errorf("%w: it contains characters that are not base64url (A-Z a-z 0-9 - _): copy the code again, or %s", ErrBadSetupCode, askAgain)
	}
	return out[:n], nil
}

const base64URLAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// parseObject reads one JSON object and returns its members' raw values.
// Unlike json.Unmarshal into a map, it refuses a field pairgate reads that
// appears twice (whichever copy a reader took, two readers could disagree),
// and trailing data.
func parseObject(payload []byte) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(payload))
	tok, err := dec.Token()
	if err != nil {
		return nil, jsonError(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("%w: it holds %s, not a JSON object, so it is not a setup code: %s", ErrBadSetupCode, kindOfToken(tok), askAgain)
	}
	fields := make(map[string]json.RawMessage)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, jsonError(err)
		}
		key, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("%w: its JSON is malformed: %s", ErrBadSetupCode, askAgain)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, jsonError(err)
		}
		if !knownKeys[key] {
			continue // other systems add fields; they are not ours to judge
		}
		if _, dup := fields[key]; dup {
			return nil, fmt.Errorf("%w: field %s appears twice: %s", ErrBadSetupCode, key, askAgain)
		}
		fields[key] = raw
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: there is more after its JSON object: copy only the code, or %s", ErrBadSetupCode, askAgain)
	}
	return fields, nil
}

func jsonError(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: it ends too early, as if cut off: copy the whole code again", ErrBadSetupCode)
	}
	return fmt.Errorf("%w: it does not hold valid JSON: copy the whole code again, or %s", ErrBadSetupCode, askAgain)
}

func kindOfToken(tok json.Token) string {
	switch tok.(type) {
	case json.Delim:
		return "a JSON array"
	case string:
		return "a JSON string"
	case json.Number, float64:
		return "a JSON number"
	case bool:
		return "a JSON boolean"
	default:
		return "JSON null"
	}
}

// kind names the JSON type of a raw value, for error messages.
func kind(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	default:
		return "a number"
	}
}

func isNull(raw json.RawMessage) bool { return kind(raw) == "null" }

func checkVersion(raw json.RawMessage) error {
	if isNull(raw) {
		return nil
	}
	if k := kind(raw); k != "a number" {
		return fmt.Errorf("%w: field v must be a number, not %s: %s", ErrBadSetupCode, k, askAgain)
	}
	lit := string(bytes.TrimSpace(raw))
	n, err := strconv.ParseInt(lit, 10, 64)
	switch {
	case errors.Is(err, strconv.ErrRange) && lit[0] != '-':
		if len(lit) > 20 {
			lit = lit[:20] + "…"
		}
		return fmt.Errorf("%w: setup code version %s is newer than this pairgate understands: upgrade", ErrBadSetupCode, lit)
	case err != nil:
		return fmt.Errorf("%w: field v must be a whole number: %s", ErrBadSetupCode, askAgain)
	case n > SetupCodeVersion:
		return fmt.Errorf("%w: setup code version %d is newer than this pairgate understands: upgrade", ErrBadSetupCode, n)
	case n < SetupCodeVersion:
		return fmt.Errorf("%w: setup code version %d does not exist (the first is 1): %s", ErrBadSetupCode, n, askAgain)
	}
	return nil
}

// stringField returns the one value that the spellings in keys agree on.
func stringField(fields map[string]json.RawMessage, keys []string) (string, error) {
	var val, from string
	for _, k := range keys {
		raw, ok := fields[k]
		if !ok || isNull(raw) {
			continue
		}
		var s string
		if kind(raw) != "a string" || json.Unmarshal(raw, &s) != nil {
			return "", fmt.Errorf("%w: field %s must be a string, not %s: %s", ErrBadSetupCode, k, kind(raw), askAgain)
		}
		if s == "" {
			return "", fmt.Errorf("%w: field %s is empty: %s", ErrBadSetupCode, k, askAgain)
		}
		if from != "" && s != val {
			return "", fmt.Errorf("%w: fields %s and %s disagree, so it is unclear which to use: %s", ErrBadSetupCode, from, k, askAgain)
		}
		if from == "" {
			val, from = s, k
		}
	}
	if from == "" {
		names := keys[0]
		if len(keys) > 1 {
			names += " (or " + strings.Join(keys[1:], ", or ") + ")"
		}
		return "", fmt.Errorf("%w: it has no %s field: %s", ErrBadSetupCode, names, askAgain)
	}
	return val, nil
}

// expiryField reads expires_at and expiresAtMs; when both are present they
// must name the same second.
func expiryField(fields map[string]json.RawMessage) (time.Time, error) {
	var exp time.Time
	if raw, ok := fields["expires_at"]; ok && !isNull(raw) {
		var s string
		if kind(raw) != "a string" || json.Unmarshal(raw, &s) != nil {
			return time.Time{}, fmt.Errorf("%w: field expires_at must be an RFC 3339 string, not %s: %s", ErrBadSetupCode, kind(raw), askAgain)
		}
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return time.Time{}, fmt.Errorf("%w: field expires_at is not an RFC 3339 time such as 2026-11-24T09:10:00Z: %s", ErrBadSetupCode, askAgain)
		}
		exp = t.UTC().Truncate(time.Second)
		if err := checkExpiryRange(exp); err != nil {
			return time.Time{}, err
		}
	}
	if raw, ok := fields["expiresAtMs"]; ok && !isNull(raw) {
		if k := kind(raw); k != "a number" {
			return time.Time{}, fmt.Errorf("%w: field expiresAtMs must be a number of milliseconds, not %s: %s", ErrBadSetupCode, k, askAgain)
		}
		ms, err := strconv.ParseInt(string(bytes.TrimSpace(raw)), 10, 64)
		if err != nil || ms <= 0 || ms > maxExpiresAtMs {
			return time.Time{}, fmt.Errorf("%w: field expiresAtMs must be a whole, positive number of unix milliseconds: %s", ErrBadSetupCode, askAgain)
		}
		t := time.UnixMilli(ms).UTC().Truncate(time.Second)
		if !exp.IsZero() && !t.Equal(exp) {
			return time.Time{}, fmt.Errorf("%w: fields expires_at and expiresAtMs disagree: %s", ErrBadSetupCode, askAgain)
		}
		exp = t
	}
	return exp, nil
}
