package cli

import (
	"fmt"
	"net"
	"strconv"
)

// listenURLs describes where a daemon listening on addr can be reached: the
// URL to print first (never the unusable http://[::]:7420 of a wildcard
// address), any others, and whether the port is open beyond this machine.
func listenURLs(addr net.Addr, ifaceAddrs func() ([]net.Addr, error)) (primary string, others []string, exposed bool) {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return "http://" + addr.String(), nil, false
	}
	port := strconv.Itoa(tcp.Port)
	url := func(ip net.IP) string { return "http://" + net.JoinHostPort(ip.String(), port) }
	switch {
	case tcp.IP.IsLoopback():
		return url(tcp.IP), nil, false
	case !tcp.IP.IsUnspecified():
		return url(tcp.IP), nil, true
	}
	// A wildcard address: this machine's own addresses, loopback first.
	primary = "http://" + net.JoinHostPort("127.0.0.1", port)
	if as, err := ifaceAddrs(); err == nil {
		for _, a := range as {
			n, ok := a.(*net.IPNet)
			if !ok || n.IP.IsLoopback() || n.IP.IsLinkLocalUnicast() || (tcp.IP.To4() != nil && n.IP.To4() == nil) {
				continue
			}
			others = append(others, url(n.IP))
		}
	}
	return primary, others, true
}

// tlsWarning is what serve prints when it listens beyond this machine.
func tlsWarning(addr string) string {
	return fmt.Sprintf("Warning: listening on %s, reachable from other machines without TLS: admin tokens, "+
		"gateway tokens and device tokens would cross the network in the clear. Put a TLS proxy in front "+
		"(README: \"Behind a reverse proxy\") and listen on 127.0.0.1, or keep this port to a trusted network.", addr)
}
