package cli

import (
	"net"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestListenURLs(t *testing.T) {
	ifaces := func() ([]net.Addr, error) {
		return []net.Addr{
			&net.IPNet{IP: net.ParseIP("127.0.0.1"), Mask: net.CIDRMask(8, 32)},
			&net.IPNet{IP: net.ParseIP("192.168.1.5"), Mask: net.CIDRMask(24, 32)},
			&net.IPNet{IP: net.ParseIP("fe80::1"), Mask: net.CIDRMask(64, 128)},
			&net.IPNet{IP: net.ParseIP("2001:db8::5"), Mask: net.CIDRMask(64, 128)},
		}, nil
	}
	for _, c := range []struct {
		listen  string
		primary string
		others  []string
		warn    bool
	}{
		{"127.0.0.1:7420", "http://127.0.0.1:7420", nil, false},
		{"[::1]:7420", "http://[::1]:7420", nil, false},
		{"0.0.0.0:7420", "http://127.0.0.1:7420", []string{"http://192.168.1.5:7420"}, true},
		{"[::]:7420", "http://127.0.0.1:7420", []string{"http://192.168.1.5:7420", "http://[2001:db8::5]:7420"}, true},
		{"192.168.1.5:7420", "http://192.168.1.5:7420", nil, true},
	} {
		addr, err := net.ResolveTCPAddr("tcp", c.listen)
		if err != nil {
			t.Fatal(err)
		}
		primary, others, exposed := listenURLs(addr, ifaces)
		if diff := cmp.Diff([]string{c.primary, strings.Join(c.others, " ")}, []string{primary, strings.Join(others, " ")}); diff != "" {
			t.Errorf("%s: URLs (-want +got):\n%s", c.listen, diff)
		}
		if exposed != c.warn {
			t.Errorf("%s: exposed = %v, want %v", c.listen, exposed, c.warn)
		}
		if strings.Contains(primary, "[::]") || strings.Contains(primary, "0.0.0.0") {
			t.Errorf("%s: printed %s, which no browser or gateway can use", c.listen, primary)
		}
	}
}
