package channel

import (
	"net/netip"
	"strings"
)

// matrix is the Matrix adapter. The sender is the full user id,
// "@localpart:server".
type matrix struct{}

const matrixWant = "a Matrix user id such as @alice:example.org"

// maxMatrixIDLen is the Matrix specification's limit on a user id.
const maxMatrixIDLen = 255

// Name returns "matrix".
func (matrix) Name() string { return "matrix" }

// Normalize accepts, after an optional "matrix:" or "user:", a user id
// "@localpart:server" and returns it lower-cased. The localpart may hold any
// printable ASCII but ':' (the spec's historical grammar, which older
// accounts still use). The server is a DNS name, an IPv4 address or a
// bracketed IPv6 address, with an optional port that is kept; it is
// lower-cased too, since hostnames are case-insensitive and one server must
// not give a user two ids.
func (matrix) Normalize(raw string) (string, error) {
	s, err := clean("matrix", matrixWant, raw, "matrix:", "user:")
	if err != nil {
		return "", err
	}
	if len(s) > maxMatrixIDLen || s[0] != '@' {
		return "", invalid("matrix", raw, "", matrixWant)
	}
	local, server, ok := strings.Cut(s[1:], ":")
	if !ok || local == "" || !isMatrixServer(server) {
		return "", invalid("matrix", raw, "", matrixWant)
	}
	for i := 0; i < len(local); i++ {
		if c := local[i]; c < 0x21 || c > 0x7e {
			return "", invalid("matrix", raw, "", matrixWant)
		}
	}
	return strings.ToLower(s), nil
}

// isMatrixServer reports whether s is a Matrix server name: host[:port],
// where host is a DNS name, IPv4 address or bracketed IPv6 address.
func isMatrixServer(s string) bool {
	host, port := s, ""
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return false
		}
		host, port = s[:end+1], s[end+1:]
		if port != "" {
			var ok bool
			if port, ok = strings.CutPrefix(port, ":"); !ok {
				return false
			}
			if !isPort(port) {
				return false
			}
		}
		// Zones name an interface on the reader's machine, which means
		// nothing in an id.
		addr, err := netip.ParseAddr(host[1 : len(host)-1])
		return err == nil && addr.Is6() && addr.Zone() == ""
	}
	if i := strings.IndexByte(s, ':'); i >= 0 {
		host, port = s[:i], s[i+1:]
		if !isPort(port) {
			return false
		}
	}
	return isHostname(host)
}

// isPort reports whether s is a decimal TCP port, 1 to 65535.
func isPort(s string) bool {
	return len(s) <= 5 && isDecimalID(s, 16)
}

// ChallengeText is plain: the body of an m.text message without
// formatted_body.
func (matrix) ChallengeText(c Challenge) string { return challengeText("matrix", c, plainText) }

// TooManyText is the shared "try later" text.
func (matrix) TooManyText() string { return tooManyText }

// ApprovedText is the shared approval text.
func (matrix) ApprovedText() string { return approvedText }

// CanSendImage is true: Matrix carries m.image events.
func (matrix) CanSendImage() bool { return true }
