package config

import (
	"slices"

	"github.com/pairgate/pairgate/channel"
)

// Canonical validates c and returns a copy in the form the gate and the
// CLI use: account names case-folded and allow_from entries normalised by
// their channel's adapter (tg:42 is 42, 5491155556666@s.whatsapp.net is
// +5491155556666). c itself is not changed. Parse returns a canonical
// configuration; pairing.New takes any other through Canonical, so a
// configuration built in Go meets the same rules as a file, in one place.
//
// Names are folded rather than refused because an operator who writes
// Work: means the account --account Work and the gateway call work (SPEC
// section 1). Validate has refused names that do not fold and two keys that
// fold to one, and reported problems under the keys as written, where they
// have a line.
func (c *Config) Canonical() (*Config, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	out := *c
	out.Pairing.WSCleartextAllow = slices.Clone(c.Pairing.WSCleartextAllow)
	if c.Pairing.Channels != nil {
		out.Pairing.Channels = make(map[string]Channel, len(c.Pairing.Channels))
	}
	reg := channel.NewRegistry()
	for name, ch := range c.Pairing.Channels {
		ad := adapter(reg, name)
		ch.AllowFrom = canonicalSenders(ad, ch.AllowFrom)
		if ch.Accounts != nil {
			folded := make(map[string]Account, len(ch.Accounts))
			for key, acc := range ch.Accounts {
				canon, _ := channel.NormalizeAccount(key)
				acc.AllowFrom = canonicalSenders(ad, acc.AllowFrom)
				folded[canon] = acc
			}
			ch.Accounts = folded
		}
		out.Pairing.Channels[name] = ch
	}
	if c.Owner.Account != "" {
		out.Owner.Account, _ = channel.NormalizeAccount(c.Owner.Account)
	}
	if c.Owner.Sender != "" {
		out.Owner.Sender = canonicalSenders(adapter(reg, c.Owner.Channel), []string{c.Owner.Sender})[0]
	}
	if c.Owner.Senders != nil {
		out.Owner.Senders = make(map[string][]string, len(c.Owner.Senders))
		for ch, list := range c.Owner.Senders {
			out.Owner.Senders[ch] = slices.Compact(slices.Sorted(slices.Values(canonicalSenders(adapter(reg, ch), list))))
		}
	}
	return &out, nil
}

// adapter returns the adapter of a channel from reg (channel.NewRegistry:
// the adapters the gate uses), or nil for an unknown channel, which
// Validate reports.
func adapter(reg *channel.Registry, name string) channel.Adapter {
	ad, err := reg.Get(name)
	if err != nil {
		return nil
	}
	return ad
}

// canonicalSenders normalises a valid allow_from list.
func canonicalSenders(ad channel.Adapter, list []string) []string {
	if list == nil || ad == nil {
		return slices.Clone(list)
	}
	out := make([]string, len(list))
	for i, raw := range list {
		out[i], _ = ad.Normalize(raw)
	}
	return out
}
