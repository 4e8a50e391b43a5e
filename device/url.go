package device

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ErrNoPublicURL is wrapped by the error [ResolveURL] returns when none of
// the four ways to set the gateway's public URL is used.
var ErrNoPublicURL = errors.New("no public URL for setup codes")

// ErrBadURL is wrapped by every error from [NormalizeURL]: the URL is
// malformed, of the wrong scheme, or cleartext to a host that is not local.
var ErrBadURL = errors.New("bad pairing URL")

// URLSource says where [ResolveURL] found the URL. Its values appear as
// url_source in `pairgate setup-code --json`.
type URLSource string

// The sources, in the order ResolveURL tries them.
const (
	URLSourceFlag       URLSource = "flag"        // --public-url
	URLSourceConfig     URLSource = "config"      // pairing.public_url in pairgate.yaml
	URLSourceEnv        URLSource = "env"         // PAIRGATE_TUNNEL_URL
	URLSourceTunnelFile URLSource = "tunnel_file" // $PAIRGATE_HOME/state/tunnel.url
)

// URLInputs are the places a public URL can come from. The caller reads the
// flag, the configuration and the environment; ResolveURL reads the file.
type URLInputs struct {
	Flag   string // --public-url
	Config string // pairing.public_url
	Env    string // $PAIRGATE_TUNNEL_URL
	// TunnelFile is the path of $PAIRGATE_HOME/state/tunnel.url, which a
	// tunnel (cloudflared, ngrok, tailscale funnel...) can keep current.
	TunnelFile string
	// CleartextAllow is pairing.ws_cleartext_allow: hosts that may be
	// reached with ws:// although they are not local by address or name.
	CleartextAllow []string
}

// maxTunnelFile bounds how much of the tunnel file is read: it holds one URL.
const maxTunnelFile = 64 << 10

// maxURLLen bounds a pairing URL. It travels in every setup code and QR.
const maxURLLen = 2048

// ResolveURL finds the gateway's public /pair URL: the first that is set of
// the flag, the configuration, the environment and the trimmed content of
// the tunnel file, normalised by [NormalizeURL]. A value that is only
// whitespace counts as not set, and so does a missing tunnel file; a tunnel
// file that exists but cannot be read is an error, because silently falling
// through would hide a broken tunnel. When nothing is set it fails closed
// (wrapping [ErrNoPublicURL]): pairgate never guesses a URL from its listen
// address, which is loopback by default and useless to a phone.
//
// When the chosen URL is refused, the error names where it came from and
// source is still returned.
func ResolveURL(in URLInputs) (string, URLSource, error) {
	raw, source, err := pickURL(in)
	if err != nil {
		return "", "", err
	}
	u, err := NormalizeURL(raw, in.CleartextAllow)
	if err != nil {
		return "", source, fmt.Errorf("public URL from %s: %w", describeSource(source, in), err)
	}
	return u, source, nil
}

func pickURL(in URLInputs) (string, URLSource, error) {
	for _, c := range []struct {
		val    string
		source URLSource
	}{
		{in.Flag, URLSourceFlag},
		{in.Config, URLSourceConfig},
		{in.Env, URLSourceEnv},
	} {
		if v := strings.TrimSpace(c.val); v != "" {
			return v, c.source, nil
		}
	}
	if in.TunnelFile != "" {
		v, err := readTunnelFile(in.TunnelFile)
		if err != nil {
			return "", "", err
		}
		if v != "" {
			return v, URLSourceTunnelFile, nil
		}
	}
	file := in.TunnelFile
	if file == "" {
		file = "$PAIRGATE_HOME/state/tunnel.url"
	}
	return "", "", fmt.Errorf("%w: a phone cannot reach the gateway's loopback address, so pairgate needs the URL a phone can use (for example wss://gateway.example.com). Set one of: the --public-url flag; public_url under pairing: in pairgate.yaml; the PAIRGATE_TUNNEL_URL environment variable; or the file %s (one URL, as a tunnel can write it)", ErrNoPublicURL, file)
}

func readTunnelFile(path string) (string, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading the tunnel URL file: %w: fix it, or remove it and set the URL another way", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxTunnelFile+1))
	if err != nil {
		return "", fmt.Errorf("reading the tunnel URL file %s: %w: it should be a file holding one URL", path, err)
	}
	if len(b) > maxTunnelFile {
		return "", fmt.Errorf("tunnel URL file %s is larger than %d bytes: it should hold one URL", path, maxTunnelFile)
	}
	return strings.TrimSpace(string(b)), nil
}

func describeSource(s URLSource, in URLInputs) string {
	switch s {
	case URLSourceFlag:
		return "--public-url"
	case URLSourceConfig:
		return "pairing.public_url in pairgate.yaml"
	case URLSourceEnv:
		return "PAIRGATE_TUNNEL_URL"
	default:
		return "the tunnel URL file " + in.TunnelFile
	}
}

var (
	// cleartextPrefixes are the networks a phone reaches without leaving the
	// local network (or the machine): loopback, RFC 1918, link-local.
	cleartextPrefixes = []netip.Prefix{
		netip.MustParsePrefix("127.0.0.0/8"),
		netip.MustParsePrefix("::1/128"),
		netip.MustParsePrefix("10.0.0.0/8"), // includes 10.0.2.2, the Android emulator's host
		netip.MustParsePrefix("172.16.0.0/12"),
		netip.MustParsePrefix("192.168.0.0/16"),
		netip.MustParsePrefix("169.254.0.0/16"),
		netip.MustParsePrefix("fe80::/10"),
	}
)

// NormalizeURL checks a gateway URL and returns it in the one form setup
// codes and stored setup tokens use:
//
//   - Surrounding whitespace is ignored; the scheme is case-insensitive.
//     http:// is read as ws:// and https:// as wss://, since an operator
//     often has the gateway's web address at hand and the WebSocket is on
//     the same host and port. Any other scheme is refused.
//   - The URL needs a host, and may not carry a user name or password (a
//     setup code must not carry credentials), a query or a fragment.
//   - The host is lower-cased. An IPv6 address must be in brackets and is
//     written in its canonical form ([::1]); one with a zone (fe80::1%eth0)
//     is refused, because a zone names an interface of this machine. An IPv4
//     address must be four decimal numbers: forms like 127.1 or 0x7f.0.0.1
//     are refused rather than guessed at. 0.0.0.0 and :: are refused: they
//     are where a server listens, not an address a phone can reach.
//   - A port is kept, without leading zeros; it must be 1 to 65535. A
//     trailing ":" with no port is dropped.
//   - "/pair" is appended to the path unless it already ends with "/pair"
//     (trailing slashes ignored): wss://h → wss://h/pair,
//     wss://h/gw/ → wss://h/gw/pair, wss://h/pair/ → wss://h/pair.
//
// wss:// is allowed for any host. ws:// sends the setup token in clear, so
// it is allowed only for a host that is loopback (127.0.0.0/8, ::1,
// localhost), private (10/8, 172.16/12, 192.168/16, so 10.0.2.2 too),
// link-local (169.254/16, fe80::/10), ends in ".local", or is listed in
// cleartextAllow. An IPv4-mapped IPv6 address ([::ffff:192.168.1.2]) counts
// as the IPv4 address it maps. cleartextAllow entries are compared exactly
// but case-insensitively, with no wildcards; an IP address entry matches the
// same address in any spelling, and IPv6 entries may be written with or
// without brackets.
//
// Errors wrap [ErrBadURL]. The result is a fixed point:
// NormalizeURL(NormalizeURL(u)) returns the same string.
func NormalizeURL(raw string, cleartextAllow []string) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", fmt.Errorf("%w: it is empty", ErrBadURL)
	}
	if len(raw) > maxURLLen {
		return "", fmt.Errorf("%w: it is %d bytes long, more than %d", ErrBadURL, len(raw), maxURLLen)
	}
	const shape = "write it as wss://host[:port][/path]"
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error repeats the whole URL, which may hold a password.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return "", fmt.Errorf("%w: it does not parse (%v): %s", ErrBadURL, err, shape)
	}
	if u.Scheme == "" || u.Opaque != "" {
		return "", fmt.Errorf("%w: it has no scheme and host (did you leave out wss://?): %s", ErrBadURL, shape)
	}

	var scheme string
	switch u.Scheme { // url.Parse lower-cases the scheme
	case "wss", "https":
		scheme = "wss"
	case "ws", "http":
		scheme = "ws"
	default:
		return "", fmt.Errorf("%w: scheme %q is not supported: use wss:// (or ws:// on a local network)", ErrBadURL, u.Scheme)
	}
	if u.User != nil {
		return "", fmt.Errorf("%w: it carries a user name or password, and a setup code must not carry credentials: remove the part before @", ErrBadURL)
	}
	if u.RawQuery != "" || u.ForceQuery {
		return "", fmt.Errorf("%w: it has a query (?…), which the /pair endpoint does not take: remove it", ErrBadURL)
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return "", fmt.Errorf("%w: it has a fragment (#…): remove it", ErrBadURL)
	}

	hostOut, addr, err := normalizeHost(u.Host, u.Hostname())
	if err != nil {
		return "", err
	}

	port := u.Port()
	if port != "" {
		p, err := strconv.Atoi(port)
		if err != nil || p < 1 || p > 65535 {
			return "", fmt.Errorf("%w: port %s is not between 1 and 65535", ErrBadURL, truncate(port, 12))
		}
		hostOut += ":" + strconv.Itoa(p)
	}

	path := strings.TrimRight(u.EscapedPath(), "/")
	if !strings.HasSuffix(path, "/pair") {
		path += "/pair"
	}

	if scheme == "ws" && !cleartextOK(u.Hostname(), addr, cleartextAllow) {
		via := ""
		if u.Scheme == "http" {
			via = " (http:// is read as ws://)"
		}
		name := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
		if addr.IsValid() {
			name = addr.String()
		}
		return "", fmt.Errorf("%w: ws://%s would carry the setup token in clear text%s, and %s is not loopback, a private (RFC 1918) or link-local address, nor a .local name: use wss:// (a TLS tunnel gives you one) or, if the network to it is trusted, add %s to pairing.ws_cleartext_allow in pairgate.yaml", ErrBadURL, hostOut, via, name, name)
	}
	return scheme + "://" + hostOut + path, nil
}

// normalizeHost checks the host part and returns it as the output writes it
// (without the port), and its address when it is an IP literal.
func normalizeHost(hostport, hostname string) (string, netip.Addr, error) {
	if hostname == "" {
		return "", netip.Addr{}, fmt.Errorf("%w: it has no host: write it as wss://host[:port][/path]", ErrBadURL)
	}
	if strings.HasPrefix(hostport, "[") {
		addr, err := netip.ParseAddr(hostname)
		if err != nil || !addr.Is6() {
			return "", netip.Addr{}, fmt.Errorf("%w: brackets in a URL hold an IPv6 address, and %s is not one", ErrBadURL, truncate(hostname, 64))
		}
		if addr.Zone() != "" {
			return "", netip.Addr{}, fmt.Errorf("%w: the IPv6 zone %%%s names a network interface of this machine, which a phone cannot use: give a routable address or a host name", ErrBadURL, truncate(addr.Zone(), 32))
		}
		if addr.Unmap().IsUnspecified() {
			return "", netip.Addr{}, errUnspecified(addr)
		}
		return "[" + addr.String() + "]", addr, nil
	}
	if strings.Contains(hostname, ":") {
		return "", netip.Addr{}, fmt.Errorf("%w: an IPv6 address in a URL must be in brackets, such as ws://[::1]:7420", ErrBadURL)
	}

	host := strings.ToLower(hostname)
	if len(host) > 253 {
		return "", netip.Addr{}, fmt.Errorf("%w: the host name is longer than 253 characters", ErrBadURL)
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_') {
			return "", netip.Addr{}, fmt.Errorf("%w: the host name may hold only letters, digits, '-', '_' and '.' (write an international name in its xn-- form)", ErrBadURL)
		}
	}
	labels := strings.Split(strings.TrimSuffix(host, "."), ".")
	for _, l := range labels {
		if l == "" {
			return "", netip.Addr{}, fmt.Errorf("%w: the host name has an empty label (two dots in a row, or a leading dot)", ErrBadURL)
		}
	}
	// As in the WHATWG URL standard, a name whose last label is numeric is an
	// IPv4 address; only the plain dotted-quad form is accepted, because the
	// others (127.1, 0x7f.1, 2130706433) are read differently by different
	// resolvers.
	if last := labels[len(labels)-1]; isNumericLabel(last) {
		addr, err := netip.ParseAddr(host)
		if err != nil || !addr.Is4() {
			return "", netip.Addr{}, fmt.Errorf("%w: host %s looks like an IPv4 address but is not four decimal numbers such as 192.168.1.20", ErrBadURL, truncate(host, 64))
		}
		if addr.IsUnspecified() {
			return "", netip.Addr{}, errUnspecified(addr)
		}
		return addr.String(), addr, nil
	}
	return host, netip.Addr{}, nil
}

func isNumericLabel(l string) bool {
	if strings.HasPrefix(l, "0x") {
		return true
	}
	for i := 0; i < len(l); i++ {
		if l[i] < '0' || l[i] > '9' {
			return false
		}
	}
	return true
}

func errUnspecified(addr netip.Addr) error {
	return fmt.Errorf("%w: %s is where a server listens, not an address a phone can reach: give the host's own address or name", ErrBadURL, addr)
}

// cleartextOK reports whether ws:// may be used to reach the host.
func cleartextOK(hostname string, addr netip.Addr, allow []string) bool {
	name := strings.TrimSuffix(strings.ToLower(hostname), ".")
	if addr.IsValid() {
		a := addr.Unmap()
		for _, p := range cleartextPrefixes {
			if p.Contains(a) {
				return true
			}
		}
	} else if name == "localhost" || strings.HasSuffix(name, ".local") {
		return true
	}
	for _, entry := range allow {
		e := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(entry)), ".")
		if strings.HasPrefix(e, "[") && strings.HasSuffix(e, "]") {
			e = e[1 : len(e)-1]
		}
		if e == "" {
			continue
		}
		if addr.IsValid() {
			if ea, err := netip.ParseAddr(e); err == nil && ea.Unmap() == addr.Unmap() {
				return true
			}
			continue
		}
		if e == name {
			return true
		}
	}
	return false
}

// truncate shortens s, which may come from an attacker's URL, for an error
// message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
