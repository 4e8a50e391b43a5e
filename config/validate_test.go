package config

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Config)
		want   string // "" for valid
	}{
		{"defaults", func(*Config) {}, ""},
		{
			"negative code_ttl",
			func(c *Config) { c.Pairing.Limits.CodeTTL = Duration(-5 * time.Minute) },
			"pairing.limits.code_ttl: must be positive, got -5m",
		},
		{
			"zero rate_window",
			func(c *Config) { c.Pairing.Limits.RateWindow = 0 },
			"pairing.limits.rate_window: must be positive, got 0s",
		},
		{
			"zero failure_window",
			func(c *Config) { c.Pairing.Limits.FailureWindow = 0 },
			"pairing.limits.failure_window: must be positive, got 0s",
		},
		{
			"zero lockout",
			func(c *Config) { c.Pairing.Limits.Lockout = 0 },
			"pairing.limits.lockout: must be positive, got 0s",
		},
		{
			"negative decline_window",
			func(c *Config) { c.Pairing.Limits.DeclineWindow = Duration(-time.Hour) },
			"pairing.limits.decline_window: must be positive, got -1h",
		},
		{
			"zero max_pending",
			func(c *Config) { c.Pairing.Limits.MaxPending = 0 },
			"pairing.limits.max_pending: must be at least 1, got 0",
		},
		{
			"negative max_failures",
			func(c *Config) { c.Pairing.Limits.MaxFailures = -1 },
			"pairing.limits.max_failures: must be at least 1, got -1",
		},
		{
			"unknown pairing policy",
			func(c *Config) { c.Pairing.Policy = "pairng" },
			`pairing.policy: unknown policy "pairng" (valid: pairing, allowlist, open, disabled)`,
		},
		{
			"empty pairing policy inherits",
			func(c *Config) { c.Pairing.Policy = "" },
			"",
		},
		{
			"unknown channel",
			func(c *Config) { c.Pairing.Channels = map[string]Channel{"telegarm": {}} },
			"pairing.channels.telegarm: unknown channel (valid: telegram, whatsapp, signal, discord, slack, imessage, feishu, matrix, email)",
		},
		{
			"channel names are case-sensitive",
			func(c *Config) { c.Pairing.Channels = map[string]Channel{"Telegram": {}} },
			"pairing.channels.Telegram: unknown channel (valid: telegram, whatsapp, signal, discord, slack, imessage, feishu, matrix, email)",
		},
		{
			"every channel is known",
			func(c *Config) {
				c.Pairing.Channels = map[string]Channel{}
				for _, ch := range channels {
					c.Pairing.Channels[ch] = Channel{Policy: PolicyOpen}
				}
			},
			"",
		},
		{
			"unknown channel policy",
			func(c *Config) { c.Pairing.Channels = map[string]Channel{"slack": {Policy: "closed"}} },
			`pairing.channels.slack.policy: unknown policy "closed" (valid: pairing, allowlist, open, disabled)`,
		},
		{
			"unknown account policy",
			func(c *Config) {
				c.Pairing.Channels = map[string]Channel{"telegram": {Accounts: map[string]Account{"work": {Policy: "pairng"}}}}
			},
			`pairing.channels.telegram.accounts.work.policy: unknown policy "pairng" (valid: pairing, allowlist, open, disabled)`,
		},
		{
			"empty account name",
			func(c *Config) {
				c.Pairing.Channels = map[string]Channel{"telegram": {Accounts: map[string]Account{"": {}}}}
			},
			`pairing.channels.telegram.accounts."": account "": empty; want 1–64 characters of a-z, 0-9, _ and -: invalid account`,
		},
		{
			"account name of 65 characters",
			func(c *Config) {
				c.Pairing.Channels = map[string]Channel{"telegram": {Accounts: map[string]Account{strings.Repeat("a", 65): {}}}}
			},
			"pairing.channels.telegram.accounts." + strings.Repeat("a", 65) + `: account "` + strings.Repeat("a", 64) + `"... (65 bytes): 65 characters; want 1–64 characters of a-z, 0-9, _ and -: invalid account`,
		},
		{
			"account name of 64 characters",
			func(c *Config) {
				c.Pairing.Channels = map[string]Channel{"telegram": {Accounts: map[string]Account{strings.Repeat("a", 64): {}}}}
			},
			"",
		},
		{
			"account name with a space",
			func(c *Config) {
				c.Pairing.Channels = map[string]Channel{"telegram": {Accounts: map[string]Account{"my bot": {}}}}
			},
			`pairing.channels.telegram.accounts."my bot": account "my bot": ' ' is not allowed; want 1–64 characters of a-z, 0-9, _ and -: invalid account`,
		},
		{
			"account names that are NATS wildcards, subjects or paths",
			func(c *Config) {
				c.Pairing.Channels = map[string]Channel{"telegram": {Accounts: map[string]Account{"*": {}, ">": {}, "a.b": {}, "../x": {}}}}
			},
			`pairing.channels.telegram.accounts.*: account "*": '*' is not allowed; want 1–64 characters of a-z, 0-9, _ and -: invalid account
pairing.channels.telegram.accounts."../x": account "../x": '.' is not allowed; want 1–64 characters of a-z, 0-9, _ and -: invalid account
pairing.channels.telegram.accounts.>: account ">": '>' is not allowed; want 1–64 characters of a-z, 0-9, _ and -: invalid account
pairing.channels.telegram.accounts."a.b": account "a.b": '.' is not allowed; want 1–64 characters of a-z, 0-9, _ and -: invalid account`,
		},
		{
			"upper-case account name: folded, so valid",
			func(c *Config) {
				c.Pairing.Channels = map[string]Channel{"telegram": {Accounts: map[string]Account{"Work": {}, "DEFAULT": {}}}}
			},
			"",
		},
		{
			"two spellings of one account",
			func(c *Config) {
				c.Pairing.Channels = map[string]Channel{"telegram": {Accounts: map[string]Account{"Work": {}, "work": {Policy: PolicyOpen}}}}
			},
			"pairing.channels.telegram.accounts.work: the same account as Work (names are case-folded); keep one",
		},
		{
			"empty allow_from entry",
			func(c *Config) {
				c.Pairing.Channels = map[string]Channel{"telegram": {AllowFrom: []string{"1", ""}}}
			},
			"pairing.channels.telegram.allow_from[1]: empty sender; remove the entry",
		},
		{
			"long allow_from entry on an account",
			func(c *Config) {
				c.Pairing.Channels = map[string]Channel{"email": {Accounts: map[string]Account{"a": {AllowFrom: []string{strings.Repeat("x", 257)}}}}}
			},
			"pairing.channels.email.accounts.a.allow_from[0]: sender longer than 256 bytes",
		},
		{
			"postgres without dsn",
			func(c *Config) { c.Pairing.Storage.Driver = "postgres" },
			"pairing.storage.dsn: required with driver postgres (for example postgres://pairgate@db.example.com/pairgate)",
		},
		{
			"postgres with a path",
			func(c *Config) {
				c.Pairing.Storage = Storage{Driver: "postgres", DSN: "postgres://h/db", Path: "/x.db"}
			},
			"pairing.storage.path: only used with driver sqlite; remove it or set driver: sqlite",
		},
		{
			"sqlite with a dsn",
			func(c *Config) { c.Pairing.Storage.DSN = "postgres://h/db" },
			"pairing.storage.dsn: only used with driver postgres; set driver: postgres or remove dsn",
		},
		{
			"unknown driver",
			func(c *Config) { c.Pairing.Storage.Driver = "mysql" },
			`pairing.storage.driver: unknown driver "mysql" (valid: sqlite, postgres)`,
		},
		{
			"setup ttl zero",
			func(c *Config) { c.Pairing.SetupCode.DefaultTTLSecs = 0 },
			"pairing.setup_code.default_ttl_secs: must be from 1 to 3600 seconds, got 0",
		},
		{
			"setup ttl above an hour",
			func(c *Config) { c.Pairing.SetupCode.DefaultTTLSecs = 3601 },
			"pairing.setup_code.default_ttl_secs: must be from 1 to 3600 seconds, got 3601",
		},
		{
			"setup ttl of an hour",
			func(c *Config) { c.Pairing.SetupCode.DefaultTTLSecs = 3600 },
			"",
		},
		{
			"public_url scheme",
			func(c *Config) { c.Pairing.PublicURL = "ftp://gateway.example.com/pair" },
			`pairing.public_url: want a ws://, wss://, http:// or https:// URL with a host, got "ftp://gateway.example.com/pair"`,
		},
		{
			"public_url without host",
			func(c *Config) { c.Pairing.PublicURL = "gateway.example.com" },
			`pairing.public_url: want a ws://, wss://, http:// or https:// URL with a host, got "gateway.example.com"`,
		},
		{
			"public_url with bracketed IPv6",
			func(c *Config) { c.Pairing.PublicURL = "ws://[::1]:7420/pair" },
			"",
		},
		{
			"ws_cleartext_allow URL",
			func(c *Config) { c.Pairing.WSCleartextAllow = []string{"ok.local", "ws://pi.local/pair"} },
			`pairing.ws_cleartext_allow[1]: want a host name or IP address (such as kitchen-pi.local), got "ws://pi.local/pair"`,
		},
		{
			"listen without port",
			func(c *Config) { c.Server.Listen = "127.0.0.1" },
			`server.listen: want host:port such as 127.0.0.1:7420 (or :7420 for every interface), got "127.0.0.1"`,
		},
		{
			"listen with a named port",
			func(c *Config) { c.Server.Listen = "localhost:http" },
			`server.listen: port "http" is not a number from 0 to 65535`,
		},
		{
			"listen IPv6",
			func(c *Config) { c.Server.Listen = "[::1]:7420" },
			"",
		},
		{
			"nats scheme",
			func(c *Config) { c.NATS.URL = "nats://a:4222, http://b:4222" },
			`nats.url: want a nats://, tls://, ws:// or wss:// URL with a host, got "http://b:4222"`,
		},
		{
			"nats without scheme",
			func(c *Config) { c.NATS.URL = "localhost:4222" },
			"",
		},
		{
			"nats empty server",
			func(c *Config) { c.NATS.URL = "nats://a:4222," },
			`nats.url: empty server in "nats://a:4222,"`,
		},
		{
			"webhook scheme",
			func(c *Config) { c.Notify.WebhookURL = "hooks.example.com/x" },
			`notify.webhook_url: want a https:// or http:// URL with a host, got "hooks.example.com/x"`,
		},
		{
			"owner without channel",
			func(c *Config) { c.Owner.Sender = "123" },
			"owner.channel: required when owner.sender or owner.account is set (valid: telegram, whatsapp, signal, discord, slack, imessage, feishu, matrix, email)",
		},
		{
			"owner unknown channel and no sender",
			func(c *Config) { c.Owner.Channel = "irc" },
			`owner.channel: unknown channel "irc" (valid: telegram, whatsapp, signal, discord, slack, imessage, feishu, matrix, email)
owner.sender: required when owner.channel is set: the operator's own id on owner.channel`,
		},
		{
			"owner account that is not an account name",
			func(c *Config) { c.Owner = Owner{Channel: "signal", Account: "main.bot", Sender: "+15555550100"} },
			`owner.account: account "main.bot": '.' is not allowed; want 1–64 characters of a-z, 0-9, _ and -: invalid account`,
		},
		{
			"owner account in upper case",
			func(c *Config) { c.Owner = Owner{Channel: "signal", Account: "Main", Sender: "+15555550100"} },
			"",
		},
		{
			"owner senders on an unknown channel and a sender the channel refuses",
			func(c *Config) {
				c.Owner.Senders = map[string][]string{"irc": {"me"}, "telegram": {"123", "@name"}}
			},
			`owner.senders.irc: unknown channel "irc" (valid: telegram, whatsapp, signal, discord, slack, imessage, feishu, matrix, email)
owner.senders.telegram[1]: telegram sender "@name": a username, which can change hands; want a numeric Telegram user id such as 123456789: invalid sender`,
		},
		{
			"owner senders only",
			func(c *Config) {
				c.Owner.Senders = map[string][]string{"telegram": {"123"}, "signal": {"+15555550100"}}
			},
			"",
		},
		{
			"owner complete",
			func(c *Config) { c.Owner = Owner{Channel: "signal", Account: "main", Sender: "+15555550100"} },
			"",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.change(c)
			err := c.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want %s", tt.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error does not wrap ErrInvalid: %v", err)
			}
			if diff := cmp.Diff(tt.want, err.Error()); diff != "" {
				t.Errorf("error mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidateReportsEverything(t *testing.T) {
	c := Default()
	c.Pairing.Storage.Driver = "postgres"
	c.Pairing.Limits.CodeTTL = Duration(-5 * time.Minute)
	c.Pairing.Limits.MaxPending = 0
	c.Pairing.Channels = map[string]Channel{
		"telegarm": {},
		"telegram": {Accounts: map[string]Account{"work": {Policy: "pairng"}}},
	}
	c.Server.Listen = "7420"
	err := c.Validate()
	want := []string{
		"pairing.storage.dsn: required with driver postgres (for example postgres://pairgate@db.example.com/pairgate)",
		"pairing.limits.code_ttl: must be positive, got -5m",
		"pairing.limits.max_pending: must be at least 1, got 0",
		"pairing.channels.telegarm: unknown channel (valid: telegram, whatsapp, signal, discord, slack, imessage, feishu, matrix, email)",
		`pairing.channels.telegram.accounts.work.policy: unknown policy "pairng" (valid: pairing, allowlist, open, disabled)`,
		`server.listen: want host:port such as 127.0.0.1:7420 (or :7420 for every interface), got "7420"`,
	}
	if err == nil {
		t.Fatal("Validate() = nil")
	}
	if diff := cmp.Diff(want, strings.Split(err.Error(), "\n")); diff != "" {
		t.Errorf("problems mismatch (-want +got):\n%s", diff)
	}
	// Each problem on its own wraps ErrInvalid too.
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		if !errors.Is(e, ErrInvalid) {
			t.Errorf("problem %q does not wrap ErrInvalid", e)
		}
	}
}
