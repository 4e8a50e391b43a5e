// Package config loads and validates pairgate.yaml.
//
// A configuration is decoded strictly (an unknown key is an error naming its
// line and column) on top of [Default], so every key may be omitted, and is
// then checked by [Config.Validate]. [Parse] reports every problem of a file
// at once, each with its line; [Config.Canonical] is the form the gate uses
// (allow_from normalised by the channel adapters, account names folded).
package config

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/token"

	"github.com/pairgate/pairgate/channel"
)

// Config is the whole of pairgate.yaml.
type Config struct {
	Pairing Pairing `yaml:"pairing"`
	Server  Server  `yaml:"server"`
	NATS    NATS    `yaml:"nats"`
	Notify  Notify  `yaml:"notify"`
	Owner   Owner   `yaml:"owner"`
}

// Pairing configures DM pairing and device pairing. Its first four keys
// (storage, setup_code, public_url, ws_cleartext_allow) have the shape nexo
// uses, so a nexo configuration loads unchanged.
type Pairing struct {
	Storage          Storage   `yaml:"storage"`
	SetupCode        SetupCode `yaml:"setup_code"`
	PublicURL        string    `yaml:"public_url"`
	WSCleartextAllow []string  `yaml:"ws_cleartext_allow"`
	// Policy is the DM policy of every channel and account that does not
	// set its own.
	Policy   Policy             `yaml:"policy"`
	Limits   Limits             `yaml:"limits"`
	Channels map[string]Channel `yaml:"channels"`
}

// Storage says where pairing state is kept.
type Storage struct {
	// Driver is "sqlite" (the default) or "postgres".
	Driver string `yaml:"driver"`
	// Path is the SQLite database file. Empty means the caller's default
	// (under $PAIRGATE_HOME).
	Path string `yaml:"path"`
	// DSN is the PostgreSQL connection string; required for postgres.
	DSN string `yaml:"dsn"`
	// Notify: PostgreSQL replicas learn of each other's changes through
	// LISTEN/NOTIFY (within milliseconds), with a poll every 500ms in case
	// a notification is lost. false polls only, every 100ms: for a
	// PgBouncer in transaction pooling, where LISTEN does not work.
	// Default true; SQLite ignores it.
	Notify *bool `yaml:"notify"`
	// Retention is how long the change log (the audit log) keeps a
	// change; the daemon's garbage collection prunes older ones, but
	// never one a consumer of the log has not handled yet. 0 keeps every
	// change. Default 90 days.
	Retention Duration `yaml:"retention"`
}

// SetupCode configures the secret that signs setup tokens and their lifetime.
type SetupCode struct {
	// SecretPath is the 32-byte pairing secret. Empty means the caller's
	// default ($PAIRGATE_HOME/pairing.key).
	SecretPath string `yaml:"secret_path"`
	// DefaultTTLSecs is the lifetime of a setup token when the operator does
	// not ask for one: 600 by default, at most 3600.
	DefaultTTLSecs int `yaml:"default_ttl_secs"`
}

// Channel holds the settings of one channel (telegram, whatsapp, ...).
type Channel struct {
	// Policy overrides pairing.policy for this channel; empty inherits it.
	Policy Policy `yaml:"policy"`
	// AllowFrom lists senders admitted on every account of this channel.
	AllowFrom []string `yaml:"allow_from"`
	// Accounts holds per-account settings, keyed by account name. Parse
	// folds the keys to their canonical form (channel.NormalizeAccount), so
	// a key written Work is the account work.
	Accounts map[string]Account `yaml:"accounts"`
}

// Account holds the settings of one bot identity on a channel.
type Account struct {
	// Policy overrides the channel's policy for this account; empty inherits.
	Policy Policy `yaml:"policy"`
	// AllowFrom lists senders admitted on this account, in addition to the
	// channel's list.
	AllowFrom []string `yaml:"allow_from"`
}

// Limits are the limits of DM pairing (SPEC section 2).
type Limits struct {
	// CodeTTL is how long a pairing code lives, counted from its creation.
	CodeTTL Duration `yaml:"code_ttl"`
	// MaxPending caps pending requests per (channel, account).
	MaxPending int `yaml:"max_pending"`
	// RateWindow is how often one sender is sent a code (or told to wait).
	RateWindow Duration `yaml:"rate_window"`
	// MaxFailures wrong codes within FailureWindow lock approvals on a
	// (channel, account) for Lockout.
	MaxFailures   int      `yaml:"max_failures"`
	FailureWindow Duration `yaml:"failure_window"`
	Lockout       Duration `yaml:"lockout"`
	// DeclineWindow is how long a rejected sender is not asked again.
	DeclineWindow Duration `yaml:"decline_window"`
}

// Server configures the HTTP listener of pairgate serve.
type Server struct {
	// Listen is a host:port; the default is 127.0.0.1:7420.
	Listen string `yaml:"listen"`
}

// NATS configures the optional NATS connection; an empty URL disables it.
type NATS struct {
	// URL is a NATS server URL, or several separated by commas.
	URL string `yaml:"url"`
}

// Notify configures how the operator hears about new pending requests.
type Notify struct {
	// WebhookURL receives an HMAC-signed POST per new pending request.
	WebhookURL string `yaml:"webhook_url"`
}

// Owner says who the owner is in chat: who may run owner commands
// (/pair, /approve, ...) and where notices of new requests go.
type Owner struct {
	// Senders lists, per channel, the senders whose "/" messages are owner
	// commands. pairgate owner add|remove edits it.
	Senders map[string][]string `yaml:"senders"`
	// Channel, Account and Sender name the one chat notices of new
	// requests go to. Unset, notices go to every sender in Senders on its
	// channel's default account. A sender named here is an owner too.
	Channel string `yaml:"channel"`
	// Account is the bot account to send from; empty means "default".
	// Parse folds it like the keys of Channel.Accounts.
	Account string `yaml:"account"`
	Sender  string `yaml:"sender"`
}

// Chat is one owner's chat: a sender on a channel's account.
type Chat struct {
	Channel, Account, Sender string
}

// Owners returns who may run owner commands: every entry of Senders and
// the notice chat, each once, sorted by channel and sender. Call it on a
// canonical configuration, whose senders are normalised.
func (o Owner) Owners() []Chat {
	var out []Chat
	for _, ch := range sortedKeys(o.Senders) {
		for _, s := range o.Senders[ch] {
			out = append(out, Chat{Channel: ch, Account: DefaultAccount, Sender: s})
		}
	}
	if o.Channel != "" && o.Sender != "" {
		acct := o.Account
		if acct == "" {
			acct = DefaultAccount
		}
		out = append(out, Chat{Channel: o.Channel, Account: acct, Sender: o.Sender})
	}
	slices.SortFunc(out, func(a, b Chat) int {
		if c := strings.Compare(a.Channel, b.Channel); c != 0 {
			return c
		}
		return strings.Compare(a.Sender, b.Sender)
	})
	return slices.CompactFunc(out, func(a, b Chat) bool { return a.Channel == b.Channel && a.Sender == b.Sender })
}

// IsOwner reports whether sender on channel may run owner commands.
func (o Owner) IsOwner(channel, sender string) bool {
	if o.Channel == channel && o.Sender == sender && sender != "" {
		return true
	}
	return slices.Contains(o.Senders[channel], sender)
}

// NoticeChats returns where notices of new requests go: the notice chat
// when one is named, else every owner on its channel's default account.
func (o Owner) NoticeChats() []Chat {
	if o.Channel != "" && o.Sender != "" {
		acct := o.Account
		if acct == "" {
			acct = DefaultAccount
		}
		return []Chat{{Channel: o.Channel, Account: acct, Sender: o.Sender}}
	}
	return o.Owners()
}

// Policy is a DM policy. The empty Policy means "inherit from the enclosing
// level".
type Policy string

// The DM policies.
const (
	PolicyPairing   Policy = "pairing"
	PolicyAllowlist Policy = "allowlist"
	PolicyOpen      Policy = "open"
	PolicyDisabled  Policy = "disabled"
)

var policies = []Policy{PolicyPairing, PolicyAllowlist, PolicyOpen, PolicyDisabled}

// Channels are the valid keys of pairing.channels and values of
// owner.channel. The channel package has the same list; it is repeated here
// so that loading a configuration does not depend on the adapters.
var channels = []string{"telegram", "whatsapp", "signal", "discord", "slack", "imessage", "feishu", "matrix", "email"}

// DefaultAccount is the account used when none is named.
const DefaultAccount = channel.DefaultAccount

// Default returns a configuration with every default filled in.
func Default() *Config {
	return &Config{
		Pairing: Pairing{
			Storage:   Storage{Driver: "sqlite", Notify: ptr(true), Retention: Duration(90 * 24 * time.Hour)},
			SetupCode: SetupCode{DefaultTTLSecs: 600},
			Policy:    PolicyPairing,
			Limits: Limits{
				CodeTTL:       Duration(time.Hour),
				MaxPending:    3,
				RateWindow:    Duration(10 * time.Minute),
				MaxFailures:   5,
				FailureWindow: Duration(time.Hour),
				Lockout:       Duration(time.Hour),
				DeclineWindow: Duration(24 * time.Hour),
			},
		},
		Server: Server{Listen: "127.0.0.1:7420"},
	}
}

// PolicyFor returns the DM policy of an account on a channel: the account's
// own policy, else the channel's, else pairing.policy, else pairing. An
// empty account means "default"; an account is found as written or, failing
// that, case-folded.
func (c *Config) PolicyFor(ch, account string) Policy {
	if account == "" {
		account = DefaultAccount
	}
	chn := c.Pairing.Channels[ch]
	acc, ok := chn.Accounts[account]
	if !ok {
		if name, err := channel.NormalizeAccount(account); err == nil {
			acc = chn.Accounts[name]
		}
	}
	if acc.Policy != "" {
		return acc.Policy
	}
	if chn.Policy != "" {
		return chn.Policy
	}
	if c.Pairing.Policy != "" {
		return c.Pairing.Policy
	}
	return PolicyPairing
}

// Duration is a time.Duration written in YAML as a Go duration string
// ("90m", "1h30m") or as an integer number of seconds.
type Duration time.Duration

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// String returns d in its shortest Go form: "1h" rather than "1h0m0s".
func (d Duration) String() string {
	s := time.Duration(d).String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// MarshalYAML writes d as a duration string.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// UnmarshalYAML reads a duration string or an integer number of seconds.
// It takes the node rather than the decoded value so that its errors can
// carry the line and column (the decoder passes other errors on bare).
func (d *Duration) UnmarshalYAML(node ast.Node) error {
	if tag, ok := node.(*ast.TagNode); ok {
		node = tag.Value
	}
	const hint = "use a duration such as 90m or 1h30m, or a whole number of seconds"
	switch n := node.(type) {
	case *ast.NullNode:
		// "key:" with no value leaves the default, as it does for every other key.
		return nil
	case *ast.StringNode:
		v, err := time.ParseDuration(n.Value)
		if err != nil {
			return &nodeError{n.GetToken(), fmt.Sprintf("invalid duration %q: %s", n.Value, hint)}
		}
		*d = Duration(v)
		return nil
	case *ast.IntegerNode:
		const maxSecs = math.MaxInt64 / int64(time.Second)
		var secs int64
		switch v := n.Value.(type) {
		case int64:
			secs = v
		case uint64:
			if v > uint64(maxSecs) {
				secs = maxSecs + 1
			} else {
				secs = int64(v)
			}
		default:
			return &nodeError{n.GetToken(), fmt.Sprintf("invalid duration %q: %s", n.GetToken().Value, hint)}
		}
		if secs > maxSecs || secs < -maxSecs {
			return &nodeError{n.GetToken(), fmt.Sprintf("duration of %s seconds is out of range", n.GetToken().Value)}
		}
		*d = Duration(time.Duration(secs) * time.Second)
		return nil
	case *ast.AliasNode:
		return &nodeError{n.GetToken(), "an alias cannot be used for a duration; write the value"}
	case nil:
		return nil
	default:
		return &nodeError{node.GetToken(), fmt.Sprintf("expected a duration, got %s: %s", describeNode(node), hint)}
	}
}

// nodeError is a decoding error at a place in the YAML source.
type nodeError struct {
	tok *token.Token
	msg string
}

func (e *nodeError) Error() string {
	if e.tok == nil {
		return e.msg
	}
	return fmt.Sprintf("%d:%d: %s", e.tok.Position.Line, e.tok.Position.Column, e.msg)
}

func ptr[T any](v T) *T { return &v }
