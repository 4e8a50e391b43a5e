package cli

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pairgate/pairgate/api"
	"github.com/pairgate/pairgate/device"
	"github.com/pairgate/pairgate/qr"
	"github.com/pairgate/pairgate/web"
)

func (a *app) webLinkCmd() *cobra.Command {
	var base string
	c := &cobra.Command{
		Use:   "web-link [--url URL]",
		Short: "Print a single-use sign-in link for the web page, valid 5 minutes, with a QR code for a phone",
		Example: `  pairgate web-link
  pairgate web-link --url https://gateway.example.com`,
		Args: exactArgs(0),
		RunE: func(c *cobra.Command, _ []string) error {
			// A wrong --url is a usage error, told before anything is opened.
			page, source, err := flagPageURL(base)
			if err != nil {
				return err
			}
			if _, err := a.open(c.Context()); err != nil {
				return err
			}
			if page == "" {
				if page, source, err = a.pageURL(); err != nil {
					return err
				}
			}
			token, expires, err := web.NewLink(c.Context(), a.st, time.Now(), "cli")
			if err != nil {
				return err
			}
			link := api.WebLink{URL: web.LinkURL(page, token), URLSource: source, ExpiresAt: expires}
			return a.print(link, func(w io.Writer) {
				fmt.Fprintf(w, "Sign-in link for the web page at %s (from %s); it works once, until %s (in %s):\n\n%s\n\n",
					cell(page), source, expires.Local().Format(time.DateTime), time.Until(expires).Round(time.Second), link.URL)
				if err := qr.TerminalWithOptions(w, link.URL, qr.TerminalOptions{NoColor: !isTerminal(a.stdout)}); err != nil {
					fmt.Fprintf(w, "(no QR code: %v)\n", err)
				}
				if source == "listen" {
					fmt.Fprintf(w, "\nThat is the daemon's listen address: a phone reaches it only if it can reach this machine there. Behind a proxy, pass --url https://your-host (or set pairing.public_url).\n")
				}
			})
		},
	}
	c.Flags().StringVar(&base, "url", "", "the web page's address as the browser reaches it, http(s)://host[:port] (else from the public URL, else the listen address)")
	return c
}

// flagPageURL reads --url: http(s)://host[:port][/path], nothing else. It
// returns "" when the flag is not set.
func flagPageURL(flag string) (string, string, error) {
	if flag == "" {
		return "", "", nil
	}
	u, err := url.Parse(flag)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", "", usageError{fmt.Errorf("--url %q: want http(s)://host[:port] with no query, e.g. https://gateway.example.com", flag)}
	}
	return strings.TrimRight(u.Scheme+"://"+u.Host+u.Path, "/"), "flag", nil
}

// pageURL is where a browser finds the web page without --url: the public
// URL of setup codes with wss:// read as https:// (the same host serves
// /pair and the page), else the daemon's listen address.
func (a *app) pageURL() (string, string, error) {
	pub, source, err := device.ResolveURL(a.urlInputs(""))
	switch {
	case err == nil:
		u, err := url.Parse(pub)
		if err != nil {
			return "", "", err
		}
		scheme := "https"
		if u.Scheme == "ws" {
			scheme = "http"
		}
		return scheme + "://" + u.Host, string(source), nil
	case !errors.Is(err, device.ErrNoPublicURL):
		return "", "", err
	}
	host, port, err := net.SplitHostPort(a.cfg.Server.Listen)
	if err != nil {
		return "", "", fmt.Errorf("server.listen %q: %w", a.cfg.Server.Listen, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port), "listen", nil
}
