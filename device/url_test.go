package device

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestNormalizeURL(t *testing.T) {
	for _, tc := range []struct {
		name  string
		in    string
		allow []string
		want  string // empty: refused
		err   string // part of the refusal
	}{
		// /pair is appended unless present.
		{name: "bare host", in: "wss://gateway.example.com", want: "wss://gateway.example.com/pair"},
		{name: "trailing slash", in: "wss://h.example/", want: "wss://h.example/pair"},
		{name: "several trailing slashes", in: "wss://h.example//", want: "wss://h.example/pair"},
		{name: "path", in: "wss://h.example/gw", want: "wss://h.example/gw/pair"},
		{name: "path with trailing slash", in: "wss://h.example/gw/", want: "wss://h.example/gw/pair"},
		{name: "already /pair", in: "wss://h.example/pair", want: "wss://h.example/pair"},
		{name: "already /pair, trailing slash", in: "wss://h.example/pair/", want: "wss://h.example/pair"},
		{name: "already ends in /pair", in: "wss://h.example/gw/pair", want: "wss://h.example/gw/pair"},
		{name: "ends in pair but not /pair", in: "wss://h.example/repair", want: "wss://h.example/repair/pair"},
		{name: "path is case-sensitive", in: "wss://h.example/PAIR", want: "wss://h.example/PAIR/pair"},
		{name: "escaped path kept", in: "wss://h.example/a%2Fb/c%20d", want: "wss://h.example/a%2Fb/c%20d/pair"},

		// Schemes: wss/https always, ws/http only to local hosts, others never.
		{name: "https is wss", in: "https://gateway.example.com/gw", want: "wss://gateway.example.com/gw/pair"},
		{name: "http is ws", in: "http://192.168.1.20:7420", want: "ws://192.168.1.20:7420/pair"},
		{name: "uppercase scheme", in: "WSS://gateway.example.com", want: "wss://gateway.example.com/pair"},
		{name: "mixed-case http", in: "HtTp://localhost:7420", want: "ws://localhost:7420/pair"},
		{name: "wss on a public host", in: "wss://203.0.113.9:8443/pair", want: "wss://203.0.113.9:8443/pair"},
		{name: "wss on a public IPv6 host", in: "wss://[2001:db8::1]:443", want: "wss://[2001:db8::1]:443/pair"},
		{name: "ws on a public host", in: "ws://gateway.example.com/pair", err: "use wss:// (a TLS tunnel gives you one) or, if the network to it is trusted, add gateway.example.com to pairing.ws_cleartext_allow"},
		{name: "http on a public host", in: "http://gateway.example.com", err: "(http:// is read as ws://)"},
		{name: "ws on a public IP", in: "ws://8.8.8.8:7420", err: "8.8.8.8 is not loopback"},
		{name: "ws on a public IPv6", in: "ws://[2001:db8::1]:7420", err: "2001:db8::1 is not loopback"},
		{name: "ftp", in: "ftp://gateway.example.com/pair", err: `scheme "ftp" is not supported`},
		{name: "file", in: "file:///etc/passwd", err: `scheme "file" is not supported`},
		{name: "javascript", in: "javascript:alert(1)", err: "no scheme and host"},
		{name: "no scheme", in: "gateway.example.com/pair", err: "no scheme and host (did you leave out wss://?)"},
		{name: "host:port without scheme", in: "localhost:7420", err: "no scheme and host"},
		{name: "scheme without slashes", in: "wss:gateway.example.com", err: "no scheme and host"},

		// Loopback.
		{name: "127.0.0.1", in: "ws://127.0.0.1:7420", want: "ws://127.0.0.1:7420/pair"},
		{name: "127.255.255.254", in: "ws://127.255.255.254", want: "ws://127.255.255.254/pair"},
		{name: "localhost", in: "ws://localhost:7420/pair", want: "ws://localhost:7420/pair"},
		{name: "LOCALHOST", in: "ws://LOCALHOST:7420", want: "ws://localhost:7420/pair"},
		{name: "localhost with trailing dot", in: "ws://localhost.:7420", want: "ws://localhost.:7420/pair"},
		{name: "not localhost", in: "ws://localhost.example.com", err: "not loopback"},
		{name: "bracketed ::1", in: "ws://[::1]:7420", want: "ws://[::1]:7420/pair"},
		{name: "bracketed ::1 without port", in: "ws://[::1]", want: "ws://[::1]/pair"},
		{name: "::1 written long", in: "ws://[0:0:0:0:0:0:0:1]:7420", want: "ws://[::1]:7420/pair"},
		{name: "IPv4-mapped loopback", in: "ws://[::ffff:127.0.0.1]:7420", want: "ws://[::ffff:127.0.0.1]:7420/pair"},
		{name: "IPv4-mapped private", in: "ws://[::FFFF:192.168.1.2]", want: "ws://[::ffff:192.168.1.2]/pair"},
		{name: "IPv4-mapped public", in: "ws://[::ffff:8.8.8.8]", err: "::ffff:8.8.8.8 is not loopback"},
		{name: "IPv4-compatible is not mapped", in: "ws://[::127.0.0.1]", err: "not loopback"},
		{name: "unbracketed IPv6", in: "ws://::1:7420", err: "must be in brackets, such as ws://[::1]:7420"},
		{name: "IPv4 in brackets", in: "ws://[127.0.0.1]:7420", err: "does not parse"},
		{name: "name in brackets", in: "ws://[localhost]:7420", err: "does not parse"},
		{name: "IPv6 zone", in: "ws://[fe80::1%25eth0]:7420", err: "zone %eth0 names a network interface of this machine"},
		{name: "IPv6 zone with wss", in: "wss://[fe80::1%25eth0]:7420", err: "zone"},
		{name: "short IPv4", in: "ws://127.1:7420", err: "host 127.1 looks like an IPv4 address but is not four decimal numbers"},
		{name: "hex IPv4", in: "ws://0x7f.0.0.1", err: "looks like an IPv4 address"},
		{name: "decimal IPv4", in: "ws://2130706433", err: "looks like an IPv4 address"},
		{name: "octal-looking IPv4", in: "ws://0127.0.0.1", err: "looks like an IPv4 address"},
		{name: "IPv4 with trailing dot", in: "ws://127.0.0.1.", err: "looks like an IPv4 address"},
		{name: "unspecified IPv4", in: "wss://0.0.0.0:7420", err: "0.0.0.0 is where a server listens"},
		{name: "unspecified IPv6", in: "wss://[::]:7420", err: ":: is where a server listens"},

		// RFC 1918, with the edges of 172.16.0.0/12 and its neighbours.
		{name: "10.0.0.0", in: "ws://10.0.0.0", want: "ws://10.0.0.0/pair"},
		{name: "10.255.255.255", in: "ws://10.255.255.255:7420", want: "ws://10.255.255.255:7420/pair"},
		{name: "11.0.0.1", in: "ws://11.0.0.1", err: "not loopback"},
		{name: "9.255.255.255", in: "ws://9.255.255.255", err: "not loopback"},
		{name: "172.15.255.255", in: "ws://172.15.255.255", err: "172.15.255.255 is not loopback"},
		{name: "172.16.0.0", in: "ws://172.16.0.0", want: "ws://172.16.0.0/pair"},
		{name: "172.16.5.4", in: "ws://172.16.5.4:7420", want: "ws://172.16.5.4:7420/pair"},
		{name: "172.31.255.255", in: "ws://172.31.255.255", want: "ws://172.31.255.255/pair"},
		{name: "172.32.0.0", in: "ws://172.32.0.0", err: "172.32.0.0 is not loopback"},
		{name: "192.168.0.0", in: "ws://192.168.0.0", want: "ws://192.168.0.0/pair"},
		{name: "192.168.255.255", in: "ws://192.168.255.255", want: "ws://192.168.255.255/pair"},
		{name: "192.167.255.255", in: "ws://192.167.255.255", err: "not loopback"},
		{name: "192.169.0.0", in: "ws://192.169.0.0", err: "not loopback"},
		{name: "Android emulator host", in: "ws://10.0.2.2:7420", want: "ws://10.0.2.2:7420/pair"},
		{name: "CGNAT is not private", in: "ws://100.64.0.1", err: "not loopback"},
		{name: "ULA is not RFC 1918", in: "ws://[fd00::1]", err: "fd00::1 is not loopback"},

		// Link-local.
		{name: "169.254.0.0", in: "ws://169.254.0.0", want: "ws://169.254.0.0/pair"},
		{name: "169.254.255.255", in: "ws://169.254.255.255", want: "ws://169.254.255.255/pair"},
		{name: "169.253.255.255", in: "ws://169.253.255.255", err: "not loopback"},
		{name: "169.255.0.0", in: "ws://169.255.0.0", err: "not loopback"},
		{name: "fe80::1", in: "ws://[fe80::1]:7420", want: "ws://[fe80::1]:7420/pair"},
		{name: "febf:: is still fe80::/10", in: "ws://[febf::1]", want: "ws://[febf::1]/pair"},
		{name: "fec0:: is not link-local", in: "ws://[fec0::1]", err: "not loopback"},

		// .local names.
		{name: "kitchen-pi.local", in: "ws://kitchen-pi.local:7420", want: "ws://kitchen-pi.local:7420/pair"},
		{name: "uppercase .LOCAL", in: "ws://Kitchen-PI.LOCAL:7420", want: "ws://kitchen-pi.local:7420/pair"},
		{name: ".local with trailing dot", in: "ws://kitchen-pi.local.", want: "ws://kitchen-pi.local./pair"},
		{name: "bare local", in: "ws://local", err: "not loopback"},
		{name: ".local inside a public name", in: "ws://kitchen-pi.local.example.com", err: "not loopback"},
		{name: "ends in local without a dot", in: "ws://notlocal", err: "not loopback"},

		// ws_cleartext_allow.
		{name: "allow-listed host", in: "ws://pi.lan:7420", allow: []string{"pi.lan"}, want: "ws://pi.lan:7420/pair"},
		{name: "allow-list is case-insensitive", in: "ws://PI.lan:7420", allow: []string{"Pi.LAN"}, want: "ws://pi.lan:7420/pair"},
		{name: "allow-list has no wildcards", in: "ws://a.lan", allow: []string{"*.lan"}, err: "add a.lan to pairing.ws_cleartext_allow"},
		{name: "allow-list has no suffix match", in: "ws://sub.example.com", allow: []string{"example.com"}, err: "not loopback"},
		{name: "allow-list has no prefix match", in: "ws://example.com", allow: []string{"sub.example.com"}, err: "not loopback"},
		{name: "allow-listed IPv4", in: "ws://203.0.113.5:7420", allow: []string{"203.0.113.5"}, want: "ws://203.0.113.5:7420/pair"},
		{name: "allow-listed IPv6, bracketed entry", in: "ws://[2001:DB8:0::1]", allow: []string{"[2001:db8::1]"}, want: "ws://[2001:db8::1]/pair"},
		{name: "allow-listed IPv6, bare entry", in: "ws://[2001:db8::1]", allow: []string{"2001:0db8::0001"}, want: "ws://[2001:db8::1]/pair"},
		{name: "allow-listed IPv4 matches its mapped form", in: "ws://[::ffff:203.0.113.5]", allow: []string{"203.0.113.5"}, want: "ws://[::ffff:203.0.113.5]/pair"},
		{name: "allow-list entry with a port does not match", in: "ws://pi.lan:7420", allow: []string{"pi.lan:7420"}, err: "not loopback"},
		{name: "allow-list irrelevant to wss", in: "wss://pi.lan", allow: nil, want: "wss://pi.lan/pair"},

		// Hosts.
		{name: "uppercase host", in: "wss://GATEWAY.Example.COM/GW", want: "wss://gateway.example.com/GW/pair"},
		{name: "uppercase IPv6", in: "wss://[2001:DB8::ABCD]", want: "wss://[2001:db8::abcd]/pair"},
		{name: "underscore in name", in: "wss://my_host.example", want: "wss://my_host.example/pair"},
		{name: "no host", in: "wss://", err: "no host"},
		{name: "no host, path", in: "wss:///pair", err: "no host"},
		{name: "no host, port", in: "wss://:7420", err: "no host"},
		{name: "empty label", in: "wss://a..example", err: "empty label"},
		{name: "unicode host", in: "wss://bücher.example", err: "xn-- form"},
		{name: "space in host", in: "wss://a b.example", err: "does not parse"},

		// Ports.
		{name: "port kept", in: "wss://h.example:8443/x", want: "wss://h.example:8443/x/pair"},
		{name: "port 1", in: "wss://h.example:1", want: "wss://h.example:1/pair"},
		{name: "port 65535", in: "wss://h.example:65535", want: "wss://h.example:65535/pair"},
		{name: "default port kept", in: "wss://h.example:443", want: "wss://h.example:443/pair"},
		{name: "leading zeros", in: "ws://localhost:07420", want: "ws://localhost:7420/pair"},
		{name: "empty port dropped", in: "wss://h.example:/x", want: "wss://h.example/x/pair"},
		{name: "port 0", in: "wss://h.example:0", err: "port 0 is not between 1 and 65535"},
		{name: "port 65536", in: "wss://h.example:65536", err: "port 65536 is not between 1 and 65535"},
		{name: "port 70000", in: "ws://[::1]:70000", err: "port 70000 is not between 1 and 65535"},
		{name: "huge port", in: "wss://h.example:99999999999999999999999", err: "is not between 1 and 65535"},
		{name: "non-numeric port", in: "wss://h.example:https", err: "does not parse"},
		{name: "negative port", in: "wss://h.example:-1", err: "does not parse"},

		// Things a setup code must not carry.
		{name: "userinfo", in: "wss://user:hunter2@h.example/pair", err: "must not carry credentials"},
		{name: "user only", in: "wss://user@h.example", err: "must not carry credentials"},
		{name: "empty userinfo", in: "wss://@h.example", err: "must not carry credentials"},
		{name: "query", in: "wss://h.example/pair?token=x", err: "query"},
		{name: "empty query", in: "wss://h.example/pair?", err: "query"},
		{name: "fragment", in: "wss://h.example/pair#x", err: "fragment"},
		{name: "empty fragment", in: "wss://h.example/pair#", err: "fragment"},

		// Input hygiene.
		{name: "surrounding whitespace", in: " \twss://h.example\n", want: "wss://h.example/pair"},
		{name: "empty", in: "", err: "empty"},
		{name: "blank", in: "   ", err: "empty"},
		{name: "control character", in: "wss://h.example/a\nb", err: "does not parse"},
		{name: "too long", in: "wss://h.example/" + strings.Repeat("a", 2100), err: "more than 2048"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := NormalizeURL(tc.in, tc.allow)
			if tc.err != "" {
				if err == nil {
					t.Fatalf("NormalizeURL(%q) = %q, want an error saying %q", tc.in, got, tc.err)
				}
				if !errors.Is(err, ErrBadURL) {
					t.Errorf("error %v does not wrap ErrBadURL", err)
				}
				if !strings.Contains(err.Error(), tc.err) {
					t.Errorf("NormalizeURL(%q) error\n%q\ndoes not say %q", tc.in, err, tc.err)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Errorf("error %q repeats the password", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("NormalizeURL(%q): %v", tc.in, err)
			}
			if got != tc.want {
				t.Errorf("NormalizeURL(%q) = %q, want %q", tc.in, got, tc.want)
			}
			again, err := NormalizeURL(got, tc.allow)
			if err != nil || again != got {
				t.Errorf("NormalizeURL(%q) = %q, %v; not a fixed point", got, again, err)
			}
		})
	}
}

// TestNormalizeURLCleartextMessage checks the whole refusal, since an
// operator acts on it.
func TestNormalizeURLCleartextMessage(t *testing.T) {
	_, err := NormalizeURL("ws://gateway.example.com:7420/pair", []string{"kitchen-pi.local"})
	want := "bad pairing URL: ws://gateway.example.com:7420 would carry the setup token in clear text, and gateway.example.com is not loopback, a private (RFC 1918) or link-local address, nor a .local name: use wss:// (a TLS tunnel gives you one) or, if the network to it is trusted, add gateway.example.com to pairing.ws_cleartext_allow in pairgate.yaml"
	if err == nil || err.Error() != want {
		t.Errorf("error\n%v\nwant\n%s", err, want)
	}
}

func TestResolveURL(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tunnel := write("tunnel.url", "  https://abc.trycloudflare.com \n\n")
	missing := filepath.Join(dir, "state", "tunnel.url")

	type result struct {
		URL    string
		Source URLSource
	}
	for _, tc := range []struct {
		name string
		in   URLInputs
		want result
	}{
		{"flag first", URLInputs{Flag: "wss://flag.example", Config: "wss://config.example", Env: "wss://env.example", TunnelFile: tunnel}, result{"wss://flag.example/pair", URLSourceFlag}},
		{"then config", URLInputs{Config: "wss://config.example", Env: "wss://env.example", TunnelFile: tunnel}, result{"wss://config.example/pair", URLSourceConfig}},
		{"then env", URLInputs{Env: "wss://env.example", TunnelFile: tunnel}, result{"wss://env.example/pair", URLSourceEnv}},
		{"then the tunnel file, trimmed", URLInputs{TunnelFile: tunnel}, result{"wss://abc.trycloudflare.com/pair", URLSourceTunnelFile}},
		{"blank values are not set", URLInputs{Flag: " ", Config: "\n", Env: "\t", TunnelFile: tunnel}, result{"wss://abc.trycloudflare.com/pair", URLSourceTunnelFile}},
		{"a missing file is not set", URLInputs{Env: "wss://env.example", TunnelFile: missing}, result{"wss://env.example/pair", URLSourceEnv}},
		{"the file is not read when a value is set", URLInputs{Flag: "wss://flag.example", TunnelFile: dir /* unreadable as a file */}, result{"wss://flag.example/pair", URLSourceFlag}},
		{"cleartext allow-list applies", URLInputs{Config: "ws://pi.lan:7420", CleartextAllow: []string{"pi.lan"}}, result{"ws://pi.lan:7420/pair", URLSourceConfig}},
		{"flag with whitespace", URLInputs{Flag: "  http://192.168.1.20:7420\n"}, result{"ws://192.168.1.20:7420/pair", URLSourceFlag}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, src, err := ResolveURL(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, result{u, src}); diff != "" {
				t.Errorf("ResolveURL (-want +got):\n%s", diff)
			}
		})
	}
}

func TestResolveURLRefuses(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	missing := filepath.Join(dir, "state", "tunnel.url")

	t.Run("nothing set", func(t *testing.T) {
		_, _, err := ResolveURL(URLInputs{TunnelFile: missing})
		if !errors.Is(err, ErrNoPublicURL) {
			t.Fatalf("error %v, want ErrNoPublicURL", err)
		}
		for _, want := range []string{"phone", "loopback", "--public-url", "public_url under pairing: in pairgate.yaml", "PAIRGATE_TUNNEL_URL", missing} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not mention %q", err, want)
			}
		}
	})
	t.Run("nothing set, no file path", func(t *testing.T) {
		_, _, err := ResolveURL(URLInputs{})
		if !errors.Is(err, ErrNoPublicURL) || !strings.Contains(err.Error(), "$PAIRGATE_HOME/state/tunnel.url") {
			t.Fatalf("error %v, want ErrNoPublicURL naming the default file", err)
		}
	})
	t.Run("empty tunnel file", func(t *testing.T) {
		_, _, err := ResolveURL(URLInputs{TunnelFile: write("empty.url", " \n")})
		if !errors.Is(err, ErrNoPublicURL) {
			t.Fatalf("error %v, want ErrNoPublicURL", err)
		}
	})
	t.Run("unreadable tunnel file", func(t *testing.T) {
		_, _, err := ResolveURL(URLInputs{TunnelFile: dir}) // a directory cannot be read as a file
		if err == nil || errors.Is(err, ErrNoPublicURL) || !strings.Contains(err.Error(), "tunnel URL file") {
			t.Fatalf("error %v, want a read error naming the tunnel URL file", err)
		}
	})
	t.Run("tunnel file without permission", func(t *testing.T) {
		p := write("locked.url", "wss://x.example")
		if err := os.Chmod(p, 0); err != nil {
			t.Fatal(err)
		}
		if f, err := os.Open(p); err == nil {
			f.Close()
			t.Skip("running with privileges that ignore file modes")
		}
		_, _, err := ResolveURL(URLInputs{TunnelFile: p})
		if err == nil || errors.Is(err, ErrNoPublicURL) || !strings.Contains(err.Error(), "permission") {
			t.Fatalf("error %v, want a permission error", err)
		}
	})
	t.Run("huge tunnel file", func(t *testing.T) {
		_, _, err := ResolveURL(URLInputs{TunnelFile: write("huge.url", "wss://x.example/"+strings.Repeat("a", maxTunnelFile))})
		if err == nil || !strings.Contains(err.Error(), "should hold one URL") {
			t.Fatalf("error %v, want a size error", err)
		}
	})
	for _, tc := range []struct {
		name   string
		in     URLInputs
		source URLSource
		want   string
	}{
		{"bad flag", URLInputs{Flag: "ftp://x.example", Config: "wss://ok.example"}, URLSourceFlag, "public URL from --public-url: bad pairing URL: scheme \"ftp\""},
		{"bad config", URLInputs{Config: "ws://gateway.example.com"}, URLSourceConfig, "public URL from pairing.public_url in pairgate.yaml: bad pairing URL: ws://gateway.example.com would carry"},
		{"bad env", URLInputs{Env: "wss://u:p@x.example"}, URLSourceEnv, "public URL from PAIRGATE_TUNNEL_URL: bad pairing URL:"},
		{"two URLs in the tunnel file", URLInputs{TunnelFile: write("two.url", "wss://a.example\nwss://b.example\n")}, URLSourceTunnelFile, "public URL from the tunnel URL file " + filepath.Join(dir, "two.url")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, src, err := ResolveURL(tc.in)
			if err == nil {
				t.Fatalf("ResolveURL = %q, want an error", u)
			}
			if !errors.Is(err, ErrBadURL) {
				t.Errorf("error %v does not wrap ErrBadURL", err)
			}
			if src != tc.source {
				t.Errorf("source %q, want %q", src, tc.source)
			}
			if !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("error\n%q\ndoes not start with\n%q", err, tc.want)
			}
		})
	}
}

func FuzzNormalizeURL(f *testing.F) {
	for _, s := range []string{
		"wss://gateway.example.com", "ws://[::1]:7420", "ws://[fe80::1%25eth0]:7420", "HTTP://Kitchen-Pi.Local:0080/gw/",
		"ws://[::ffff:127.0.0.1]/pair/", "wss://h/a%2Fb//", "ws://127.1", "ws://pi.lan", "https://u@h?x#y", "ws://::1:7420",
		"wss://h.example:/x", "wss://[2001:DB8::1]:443/pair", "ws://10.0.2.2:7420", "wss://a%62c.example/%7e",
	} {
		f.Add(s, "pi.lan")
	}
	f.Fuzz(func(t *testing.T, raw, allow string) {
		list := []string{allow}
		out, err := NormalizeURL(raw, list)
		if err != nil {
			if !errors.Is(err, ErrBadURL) {
				t.Fatalf("error %v does not wrap ErrBadURL", err)
			}
			return
		}
		if !strings.HasPrefix(out, "ws://") && !strings.HasPrefix(out, "wss://") || !strings.HasSuffix(out, "/pair") {
			t.Fatalf("NormalizeURL(%q) = %q: not a ws(s) URL ending in /pair", raw, out)
		}
		again, err := NormalizeURL(out, list)
		if err != nil {
			t.Fatalf("NormalizeURL(%q) = %q, which it then refuses: %v", raw, out, err)
		}
		if again != out {
			t.Fatalf("NormalizeURL(%q) = %q, then %q", raw, out, again)
		}
	})
}
