package config

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/pairgate/pairgate/channel"
)

// Limits on entries. They are far above any real value and keep a pasted
// blob out of the store and the logs. Account names have their own, tighter
// rule (channel.NormalizeAccount).
const (
	maxSenderLen = 256
	maxSetupTTL  = 3600
)

// problem is one thing wrong with a configuration, at a key path.
type problem struct {
	path []string
	msg  string
}

func (p *problem) Error() string { return joinPath(p.path) + ": " + p.msg }
func (p *problem) Unwrap() error { return ErrInvalid }

type problems []error

func (ps *problems) add(path []string, format string, args ...any) {
	*ps = append(*ps, &problem{path: slices.Clone(path), msg: fmt.Sprintf(format, args...)})
}

// Validate reports every problem with c, one per line, each naming the key
// and what to do about it, in a stable order. The error wraps ErrInvalid.
func (c *Config) Validate() error {
	var ps problems
	c.Pairing.validate(&ps)
	c.Server.validate(&ps)
	c.NATS.validate(&ps)
	c.Notify.validate(&ps)
	c.Owner.validate(&ps)
	return errors.Join(ps...)
}

func (p *Pairing) validate(ps *problems) {
	path := []string{"pairing", "storage"}
	s := p.Storage
	switch s.Driver {
	case "sqlite":
		if s.DSN != "" {
			ps.add(append(path, "dsn"), "only used with driver postgres; set driver: postgres or remove dsn")
		}
	case "postgres":
		if s.DSN == "" {
			ps.add(append(path, "dsn"), "required with driver postgres (for example postgres://pairgate@db.example.com/pairgate)")
		}
		if s.Path != "" {
			ps.add(append(path, "path"), "only used with driver sqlite; remove it or set driver: sqlite")
		}
	default:
		ps.add(append(path, "driver"), "unknown driver %q (valid: sqlite, postgres)", s.Driver)
	}

	if s.Retention < 0 {
		ps.add(append(path, "retention"), "must be 0 (keep every change) or positive, got %s", s.Retention)
	}

	if ttl := p.SetupCode.DefaultTTLSecs; ttl < 1 || ttl > maxSetupTTL {
		ps.add([]string{"pairing", "setup_code", "default_ttl_secs"}, "must be from 1 to %d seconds, got %d", maxSetupTTL, ttl)
	}

	if p.PublicURL != "" {
		checkURL(ps, []string{"pairing", "public_url"}, p.PublicURL, "ws", "wss", "http", "https")
	}
	for i, h := range p.WSCleartextAllow {
		if h == "" || strings.ContainsFunc(h, func(r rune) bool { return r == '/' || unicode.IsSpace(r) || unicode.IsControl(r) }) {
			ps.add([]string{"pairing", "ws_cleartext_allow", index(i)}, "want a host name or IP address (such as kitchen-pi.local), got %q", h)
		}
	}

	checkPolicy(ps, []string{"pairing", "policy"}, p.Policy)
	p.Limits.validate(ps)

	reg := channel.NewRegistry()
	for _, name := range sortedKeys(p.Channels) {
		path := []string{"pairing", "channels", name}
		if !slices.Contains(channels, name) {
			ps.add(path, "unknown channel (valid: %s)", strings.Join(channels, ", "))
		}
		ch := p.Channels[name]
		ad := adapter(reg, name)
		checkPolicy(ps, append(path, "policy"), ch.Policy)
		checkAllowFrom(ps, append(path, "allow_from"), ad, ch.AllowFrom)
		spelled := map[string]string{} // canonical name → the key as written
		for _, acc := range sortedKeys(ch.Accounts) {
			path := append(slices.Clip(path), "accounts", acc)
			if name, ok := checkAccount(ps, path, acc); ok {
				if other, dup := spelled[name]; dup {
					ps.add(path, "the same account as %s (names are case-folded); keep one", other)
				}
				spelled[name] = acc
			}
			checkPolicy(ps, append(path, "policy"), ch.Accounts[acc].Policy)
			checkAllowFrom(ps, append(path, "allow_from"), ad, ch.Accounts[acc].AllowFrom)
		}
	}
}

func (l *Limits) validate(ps *problems) {
	path := []string{"pairing", "limits"}
	for _, d := range []struct {
		key string
		val Duration
	}{
		{"code_ttl", l.CodeTTL},
		{"rate_window", l.RateWindow},
		{"failure_window", l.FailureWindow},
		{"lockout", l.Lockout},
		{"decline_window", l.DeclineWindow},
	} {
		if d.val <= 0 {
			ps.add(append(path, d.key), "must be positive, got %s", d.val)
		}
	}
	if l.MaxPending < 1 {
		ps.add(append(path, "max_pending"), "must be at least 1, got %d", l.MaxPending)
	}
	if l.MaxFailures < 1 {
		ps.add(append(path, "max_failures"), "must be at least 1, got %d", l.MaxFailures)
	}
}

func (s *Server) validate(ps *problems) {
	path := []string{"server", "listen"}
	_, port, err := net.SplitHostPort(s.Listen)
	if err != nil {
		ps.add(path, "want host:port such as 127.0.0.1:7420 (or :7420 for every interface), got %q", s.Listen)
		return
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		ps.add(path, "port %q is not a number from 0 to 65535", port)
	}
}

func (n *NATS) validate(ps *problems) {
	if n.URL == "" {
		return
	}
	// nats.go takes a comma-separated list and supplies nats:// when the
	// scheme is missing, so only what it would refuse is refused here.
	for u := range strings.SplitSeq(n.URL, ",") {
		u = strings.TrimSpace(u)
		if !strings.Contains(u, "://") {
			if u == "" {
				ps.add([]string{"nats", "url"}, "empty server in %q", n.URL)
			}
			continue
		}
		checkURL(ps, []string{"nats", "url"}, u, "nats", "tls", "ws", "wss")
	}
}

func (n *Notify) validate(ps *problems) {
	if n.WebhookURL != "" {
		checkURL(ps, []string{"notify", "webhook_url"}, n.WebhookURL, "https", "http")
	}
}

func (o *Owner) validate(ps *problems) {
	reg := channel.NewRegistry()
	for _, ch := range sortedKeys(o.Senders) {
		path := []string{"owner", "senders", ch}
		if !slices.Contains(channels, ch) {
			ps.add(path, "unknown channel %q (valid: %s)", ch, strings.Join(channels, ", "))
			continue
		}
		checkAllowFrom(ps, path, adapter(reg, ch), o.Senders[ch])
	}
	if o.Channel == "" && o.Account == "" && o.Sender == "" {
		return
	}
	switch {
	case o.Channel == "":
		ps.add([]string{"owner", "channel"}, "required when owner.sender or owner.account is set (valid: %s)", strings.Join(channels, ", "))
	case !slices.Contains(channels, o.Channel):
		ps.add([]string{"owner", "channel"}, "unknown channel %q (valid: %s)", o.Channel, strings.Join(channels, ", "))
	}
	if o.Account != "" {
		checkAccount(ps, []string{"owner", "account"}, o.Account)
	}
	if o.Sender == "" {
		ps.add([]string{"owner", "sender"}, "required when owner.channel is set: the operator's own id on owner.channel")
	} else if len(o.Sender) > maxSenderLen {
		ps.add([]string{"owner", "sender"}, "longer than %d bytes", maxSenderLen)
	} else if ad := adapter(reg, o.Channel); ad != nil {
		if _, err := ad.Normalize(o.Sender); err != nil {
			ps.add([]string{"owner", "sender"}, "%v", err)
		}
	}
}

func checkPolicy(ps *problems, path []string, p Policy) {
	if p != "" && !slices.Contains(policies, p) {
		ps.add(path, "unknown policy %q (valid: pairing, allowlist, open, disabled)", p)
	}
}

// checkAccount reports an account name channel.NormalizeAccount refuses, and
// returns the canonical name of one it accepts.
func checkAccount(ps *problems, path []string, raw string) (string, bool) {
	name, err := channel.NormalizeAccount(raw)
	if err != nil {
		ps.add(path, "%v", err)
		return "", false
	}
	return name, true
}

// checkAllowFrom reports allow_from entries that the channel's adapter
// (ad; nil for an unknown channel, reported already) does not accept as a
// sender: the gate would never match them.
func checkAllowFrom(ps *problems, path []string, ad channel.Adapter, list []string) {
	for i, s := range list {
		switch {
		case s == "":
			ps.add(append(path, index(i)), "empty sender; remove the entry")
		case len(s) > maxSenderLen:
			ps.add(append(path, index(i)), "sender longer than %d bytes", maxSenderLen)
		case ad != nil:
			if _, err := ad.Normalize(s); err != nil {
				ps.add(append(path, index(i)), "%v", err)
			}
		}
	}
}

func checkURL(ps *problems, path []string, raw string, schemes ...string) {
	u, err := url.Parse(raw)
	if err != nil || !slices.Contains(schemes, u.Scheme) || u.Host == "" {
		ps.add(path, "want a %s URL with a host, got %q", orList(schemes), raw)
	}
}

// orList writes schemes as "a://, b:// or c://".
func orList(schemes []string) string {
	s := make([]string, len(schemes))
	for i, v := range schemes {
		s[i] = v + "://"
	}
	if len(s) == 1 {
		return s[0]
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
