package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// mustParse parses data as "pairgate.yaml" and fails the test on error.
func mustParse(t *testing.T, data string) *Config {
	t.Helper()
	c, err := Parse([]byte(data), "pairgate.yaml")
	if err != nil {
		t.Fatalf("Parse:\n%v", err)
	}
	return c
}

func TestParseNexoShape(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want func(*Config)
	}{
		{
			name: "sqlite",
			yaml: `pairing:
  storage: {path: /var/lib/pairgate/pairing.db}
  setup_code: {secret_path: /var/lib/pairgate/pairing.key, default_ttl_secs: 600}
  public_url: wss://gateway.example.com/pair
  ws_cleartext_allow: [kitchen-pi.local]
`,
			want: func(c *Config) {
				c.Pairing.Storage.Path = "/var/lib/pairgate/pairing.db"
				c.Pairing.SetupCode.SecretPath = "/var/lib/pairgate/pairing.key"
				c.Pairing.PublicURL = "wss://gateway.example.com/pair"
				c.Pairing.WSCleartextAllow = []string{"kitchen-pi.local"}
			},
		},
		{
			name: "postgres",
			yaml: `pairing:
  storage: {driver: postgres, dsn: "postgres://nexo@db/nexo?sslmode=disable"}
  setup_code: {secret_path: /var/lib/pairgate/pairing.key, default_ttl_secs: 300}
`,
			want: func(c *Config) {
				c.Pairing.Storage = Storage{Driver: "postgres", DSN: "postgres://nexo@db/nexo?sslmode=disable", Notify: ptr(true), Retention: Duration(90 * 24 * time.Hour)}
				c.Pairing.SetupCode = SetupCode{SecretPath: "/var/lib/pairgate/pairing.key", DefaultTTLSecs: 300}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := Default()
			tt.want(want)
			if diff := cmp.Diff(want, mustParse(t, tt.yaml)); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadFull(t *testing.T) {
	got, err := Load(filepath.Join("testdata", "full.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Pairing: Pairing{
			Storage:          Storage{Driver: "sqlite", Path: "/var/lib/pairgate/pairing.db", Notify: ptr(true), Retention: Duration(90 * 24 * time.Hour)},
			SetupCode:        SetupCode{SecretPath: "/var/lib/pairgate/pairing.key", DefaultTTLSecs: 600},
			PublicURL:        "wss://gateway.example.com/pair",
			WSCleartextAllow: []string{"kitchen-pi.local"},
			Policy:           PolicyPairing,
			Limits: Limits{
				CodeTTL:       Duration(time.Hour),
				MaxPending:    3,
				RateWindow:    Duration(10 * time.Minute),
				MaxFailures:   5,
				FailureWindow: Duration(time.Hour),
				Lockout:       Duration(time.Hour),
				DeclineWindow: Duration(24 * time.Hour),
			},
			Channels: map[string]Channel{
				"telegram": {
					Policy:    PolicyPairing,
					AllowFrom: []string{"123456789"},
					Accounts: map[string]Account{
						"work": {Policy: PolicyAllowlist, AllowFrom: []string{"987654321"}},
					},
				},
				"whatsapp": {Policy: PolicyDisabled},
			},
		},
		Server: Server{Listen: "127.0.0.1:7420"},
		NATS:   NATS{URL: "nats://127.0.0.1:4222"},
		Notify: Notify{WebhookURL: "https://hooks.example.com/pairgate"},
		Owner:  Owner{Channel: "telegram", Account: "default", Sender: "123456789"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
}

func TestParseEveryKeyChanged(t *testing.T) {
	// Every key set away from its default, so that a key the decoder
	// ignored would show up as a default in the diff.
	got := mustParse(t, `
pairing:
  storage: {driver: postgres, dsn: "postgres://u@h/db", notify: false, retention: 720h}
  setup_code: {secret_path: /k, default_ttl_secs: 3600}
  public_url: ws://10.0.0.5:7420
  ws_cleartext_allow: [a.lan, "192.0.2.7"]
  policy: open
  limits:
    code_ttl: 2h
    max_pending: 7
    rate_window: 15m
    max_failures: 9
    failure_window: 2h
    lockout: 30m
    decline_window: 48h
  channels:
    matrix: {policy: allowlist, allow_from: ["@a:b"], accounts: {x: {policy: open, allow_from: ["@c:d"]}}}
server: {listen: ":8080"}
nats: {url: "nats://a:4222,nats://b:4222"}
notify: {webhook_url: "http://127.0.0.1:9000/hook"}
owner: {channel: matrix, account: x, sender: "@me:b"}
`)
	want := &Config{
		Pairing: Pairing{
			Storage:          Storage{Driver: "postgres", DSN: "postgres://u@h/db", Notify: ptr(false), Retention: Duration(30 * 24 * time.Hour)},
			SetupCode:        SetupCode{SecretPath: "/k", DefaultTTLSecs: 3600},
			PublicURL:        "ws://10.0.0.5:7420",
			WSCleartextAllow: []string{"a.lan", "192.0.2.7"},
			Policy:           PolicyOpen,
			Limits: Limits{
				CodeTTL:       Duration(2 * time.Hour),
				MaxPending:    7,
				RateWindow:    Duration(15 * time.Minute),
				MaxFailures:   9,
				FailureWindow: Duration(2 * time.Hour),
				Lockout:       Duration(30 * time.Minute),
				DeclineWindow: Duration(48 * time.Hour),
			},
			Channels: map[string]Channel{
				"matrix": {
					Policy:    PolicyAllowlist,
					AllowFrom: []string{"@a:b"},
					Accounts:  map[string]Account{"x": {Policy: PolicyOpen, AllowFrom: []string{"@c:d"}}},
				},
			},
		},
		Server: Server{Listen: ":8080"},
		NATS:   NATS{URL: "nats://a:4222,nats://b:4222"},
		Notify: Notify{WebhookURL: "http://127.0.0.1:9000/hook"},
		Owner:  Owner{Channel: "matrix", Account: "x", Sender: "@me:b"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
}

func TestParseEmpty(t *testing.T) {
	// goccy zeroes the target on an empty document; these must all give
	// the defaults instead.
	for _, data := range []string{"", "\n", "# nothing yet\n", "---\n", "~\n", "null\n", "---\n...\n"} {
		c, err := Parse([]byte(data), "pairgate.yaml")
		if err != nil {
			t.Errorf("Parse(%q): %v", data, err)
			continue
		}
		if diff := cmp.Diff(Default(), c); diff != "" {
			t.Errorf("Parse(%q) mismatch (-want +got):\n%s", data, diff)
		}
	}
}

func TestParseByteOrderMark(t *testing.T) {
	got := mustParse(t, "\ufeffpairing: {policy: open}\n")
	if got.Pairing.Policy != PolicyOpen {
		t.Errorf("policy = %q, want open", got.Pairing.Policy)
	}
}

func TestParseNullKeepsDefaults(t *testing.T) {
	got := mustParse(t, "pairing:\n  limits:\n    code_ttl:\n    max_pending:\nserver:\n")
	if diff := cmp.Diff(Default(), got); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		value string
		want  time.Duration
	}{
		{"90m", 90 * time.Minute},
		{"1h30m", 90 * time.Minute},
		{`"45s"`, 45 * time.Second},
		{"1.5h", 90 * time.Minute},
		{"3600", time.Hour},
		{"90", 90 * time.Second},
		{"0x10", 16 * time.Second},
		{"!!str 2h", 2 * time.Hour},
		{"300ms", 300 * time.Millisecond},
	}
	for _, tt := range tests {
		c, err := Parse([]byte("pairing:\n  limits:\n    code_ttl: "+tt.value+"\n"), "pairgate.yaml")
		if err != nil {
			t.Errorf("code_ttl: %s: %v", tt.value, err)
			continue
		}
		if got := c.Pairing.Limits.CodeTTL.Std(); got != tt.want {
			t.Errorf("code_ttl: %s = %v, want %v", tt.value, got, tt.want)
		}
	}
}

func TestParseKeepsScalarText(t *testing.T) {
	// YAML reads these as numbers or booleans; goccy would hand back their
	// value (0123 → "83"), which in allow_from would admit someone else.
	got := mustParse(t, `
pairing:
  ws_cleartext_allow: [10.0, 0123, 0x1F, 1_000, 12345, 1e3, true, .inf]
  channels:
    whatsapp:
      allow_from: [+5491155556666]
      accounts:
        0123: {allow_from: [+5491155556667]}
owner: {channel: telegram, sender: 123456789, senders: {telegram: [987654321]}}
`)
	want := Default()
	want.Pairing.WSCleartextAllow = []string{"10.0", "0123", "0x1F", "1_000", "12345", "1e3", "true", ".inf"}
	want.Pairing.Channels = map[string]Channel{
		"whatsapp": {
			AllowFrom: []string{"+5491155556666"},
			Accounts:  map[string]Account{"0123": {AllowFrom: []string{"+5491155556667"}}},
		},
	}
	want.Owner = Owner{Channel: "telegram", Sender: "123456789", Senders: map[string][]string{"telegram": {"987654321"}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
	// An entry the channel refuses is named as written, not as YAML's
	// number.
	_, err := Parse([]byte("pairing:\n  channels:\n    telegram:\n      allow_from: [0123]\n"), "pairgate.yaml")
	if err == nil || !strings.Contains(err.Error(), `pairgate.yaml:4:20: pairing.channels.telegram.allow_from[0]: telegram sender "0123"`) {
		t.Errorf("Parse of allow_from [0123] on telegram: %v", err)
	}
}

func TestParseStandardTags(t *testing.T) {
	got := mustParse(t, `
pairing: !!map
  ws_cleartext_allow: !!seq [!!str 10.0]
  channels: !!map {telegram: {allow_from: [!!str 123]}}
  limits: {code_ttl: !!str 2h}
`)
	want := Default()
	want.Pairing.WSCleartextAllow = []string{"10.0"}
	want.Pairing.Channels = map[string]Channel{"telegram": {AllowFrom: []string{"123"}}}
	want.Pairing.Limits.CodeTTL = Duration(2 * time.Hour)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
}

func TestParseAnchors(t *testing.T) {
	got := mustParse(t, `
pairing:
  limits:
    code_ttl: &ttl 2h
    lockout: *ttl
  channels:
    telegram: &base {policy: allowlist, allow_from: ["1"]}
    discord:
      <<: *base
      allow_from: ["2"]
`)
	want := Default()
	want.Pairing.Limits.CodeTTL = Duration(2 * time.Hour)
	want.Pairing.Limits.Lockout = Duration(2 * time.Hour)
	want.Pairing.Channels = map[string]Channel{
		"telegram": {Policy: PolicyAllowlist, AllowFrom: []string{"1"}},
		"discord":  {Policy: PolicyAllowlist, AllowFrom: []string{"2"}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want string // the whole error text
	}{
		{
			name: "unknown top-level key",
			yaml: "pairng:\n  policy: open\n",
			want: `pairgate.yaml:1:1: unknown key "pairng" (valid: pairing, server, nats, notify, owner)`,
		},
		{
			name: "unknown nested key",
			yaml: "pairing:\n  storage:\n    path: /x\n  polcy: open\n",
			want: `pairgate.yaml:4:3: unknown key "polcy" in pairing (valid: storage, setup_code, public_url, ws_cleartext_allow, policy, limits, channels)`,
		},
		{
			name: "unknown key deep in a flow mapping",
			yaml: "pairing:\n  channels:\n    telegram: {accounts: {work: {polcy: open}}}\n",
			want: `pairgate.yaml:3:34: unknown key "polcy" in pairing.channels.telegram.accounts.work (valid: policy, allow_from)`,
		},
		{
			name: "every unknown key, in order",
			yaml: "server:\n  listn: x\n  port: 1\nnat: {}\n",
			want: `pairgate.yaml:2:3: unknown key "listn" in server (valid: listen)
pairgate.yaml:3:3: unknown key "port" in server (valid: listen)
pairgate.yaml:4:1: unknown key "nat" (valid: pairing, server, nats, notify, owner)`,
		},
		{
			name: "string for an integer",
			yaml: "pairing:\n  limits:\n    max_pending: three\n",
			want: `pairgate.yaml:3:18: pairing.limits.max_pending: expected a whole number, got "three"`,
		},
		{
			name: "fraction for an integer",
			yaml: "pairing:\n  limits:\n    max_pending: 3.5\n",
			want: `pairgate.yaml:3:18: pairing.limits.max_pending: expected a whole number, got 3.5`,
		},
		{
			name: "integer overflow",
			yaml: "pairing:\n  limits:\n    max_failures: 99999999999999999999\n",
			want: `pairgate.yaml:3:19: pairing.limits.max_failures: 99999999999999999999 is out of range for a whole number`,
		},
		{
			name: "scalar for a list",
			yaml: "pairing:\n  ws_cleartext_allow: kitchen-pi.local\n",
			want: `pairgate.yaml:2:23: pairing.ws_cleartext_allow: expected a list, got "kitchen-pi.local"`,
		},
		{
			name: "list for a string",
			yaml: "server:\n  listen: [a, b]\n",
			want: `pairgate.yaml:2:11: server.listen: expected a string, got a list`,
		},
		{
			name: "scalar for a mapping",
			yaml: "pairing: yes please\n",
			want: `pairgate.yaml:1:10: pairing: expected a mapping, got "yes please"`,
		},
		{
			name: "bad duration",
			yaml: "pairing:\n  limits:\n    code_ttl: 1 hour\n",
			want: `pairgate.yaml:3:15: pairing.limits.code_ttl: invalid duration "1 hour": use a duration such as 90m or 1h30m, or a whole number of seconds`,
		},
		{
			name: "duration out of range",
			yaml: "pairing:\n  limits:\n    lockout: 99999999999\n",
			want: `pairgate.yaml:3:14: pairing.limits.lockout: duration of 99999999999 seconds is out of range`,
		},
		{
			name: "duplicate key",
			yaml: "server:\n  listen: a:1\n  listen: b:2\n",
			want: `pairgate.yaml:3:3: mapping key "listen" already defined at [2:3]`,
		},
		{
			name: "duplicate key in a flow mapping",
			yaml: "server: {listen: a:1, listen: b:2}\n",
			want: `pairgate.yaml:1:23: mapping key "listen" already defined at [1:10]`,
		},
		{
			name: "two documents",
			yaml: "server: {listen: a:1}\n---\nserver: {listen: b:2}\n",
			want: `pairgate.yaml:3:7: more than one YAML document (---); put everything in one`,
		},
		{
			name: "tab indent",
			yaml: "pairing:\n\tpolicy: open\n",
			want: `pairgate.yaml:2:1: found character '\t' that cannot start any token`,
		},
		{
			name: "not YAML: unclosed flow",
			yaml: "pairing: {policy: open\n",
			want: `pairgate.yaml:1:10: could not find flow mapping end token '}'`,
		},
		{
			name: "not YAML: plain text",
			yaml: "this is not a config\n",
			want: `pairgate.yaml:1:1: top level: expected a mapping, got "this is not a config"`,
		},
		{
			name: "not YAML: a list",
			yaml: "- pairing\n",
			want: `pairgate.yaml:1:1: top level: expected a mapping, got a list`,
		},
		{
			name: "not YAML: binary",
			yaml: "\x7fELF\x02\x01\x01\x00",
			want: `pairgate.yaml:1:1: top level: expected a mapping, got "\x7fELF\x02\x01\x01\x00"`,
		},
		{
			name: "tag over a scalar where a list is expected",
			yaml: "pairing:\n  ws_cleartext_allow: !00\n",
			want: `pairgate.yaml:2:23: pairing.ws_cleartext_allow: expected a list, got !00`,
		},
		{
			name: "custom tag on a mapping",
			yaml: "pairing: !custom {policy: open}\n",
			want: `pairgate.yaml:1:10: pairing: tag !custom is not supported; remove it`,
		},
		{
			name: "deep nesting",
			yaml: strings.Repeat("[", 100000),
			want: `pairgate.yaml:1: nested more than 64 levels deep`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.yaml), "pairgate.yaml")
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", c)
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

func TestParseValidationErrorsHavePositions(t *testing.T) {
	_, err := Parse([]byte(`
server:
  listen: "7420"
pairing:
  storage: {driver: postgres}
  limits:
    code_ttl: -5m
    max_pending: 0
  channels:
    telegarm: {}
    telegram:
      accounts:
        work: {policy: pairng}
`), "/etc/pairgate.yaml")
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("Parse error %v does not wrap ErrInvalid", err)
	}
	// In file order; a missing key (dsn) is placed at its parent.
	want := `/etc/pairgate.yaml:3:3: server.listen: want host:port such as 127.0.0.1:7420 (or :7420 for every interface), got "7420"
/etc/pairgate.yaml:5:3: pairing.storage.dsn: required with driver postgres (for example postgres://pairgate@db.example.com/pairgate)
/etc/pairgate.yaml:7:5: pairing.limits.code_ttl: must be positive, got -5m
/etc/pairgate.yaml:8:5: pairing.limits.max_pending: must be at least 1, got 0
/etc/pairgate.yaml:10:5: pairing.channels.telegarm: unknown channel (valid: telegram, whatsapp, signal, discord, slack, imessage, feishu, matrix, email)
/etc/pairgate.yaml:13:16: pairing.channels.telegram.accounts.work.policy: unknown policy "pairng" (valid: pairing, allowlist, open, disabled)`
	if diff := cmp.Diff(want, err.Error()); diff != "" {
		t.Errorf("error mismatch (-want +got):\n%s", diff)
	}
}

// TestParseFoldsAccountNames: an account written Work in the file is the
// account work everywhere else (the CLI's --account work, the gate), so
// Parse hands it on as work.
func TestParseFoldsAccountNames(t *testing.T) {
	got, err := Parse([]byte(`
pairing:
  channels:
    telegram:
      accounts:
        Work: {policy: open, allow_from: ["42"]}
        home: {policy: disabled}
owner: {channel: telegram, account: WORK, sender: "42"}
`), "pairgate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Account{"work": {Policy: PolicyOpen, AllowFrom: []string{"42"}}, "home": {Policy: PolicyDisabled}}
	if diff := cmp.Diff(want, got.Pairing.Channels["telegram"].Accounts); diff != "" {
		t.Errorf("accounts (-want +got):\n%s", diff)
	}
	if got.Owner.Account != "work" {
		t.Errorf("owner.account = %q, want work", got.Owner.Account)
	}
	for _, acct := range []string{"work", "Work", "WORK"} {
		if p := got.PolicyFor("telegram", acct); p != PolicyOpen {
			t.Errorf("PolicyFor(telegram, %q) = %q, want open", acct, p)
		}
	}
}

func TestParseRefusesAccountNamesWithPositions(t *testing.T) {
	_, err := Parse([]byte(`
pairing:
  channels:
    telegram:
      accounts:
        Work: {policy: open}
        work: {policy: disabled}
        "a.b": {}
owner: {channel: telegram, account: "*", sender: "42"}
`), "pairgate.yaml")
	want := `pairgate.yaml:7:9: pairing.channels.telegram.accounts.work: the same account as Work (names are case-folded); keep one
pairgate.yaml:8:9: pairing.channels.telegram.accounts."a.b": account "a.b": '.' is not allowed; want 1–64 characters of a-z, 0-9, _ and -: invalid account
pairgate.yaml:9:28: owner.account: account "*": '*' is not allowed; want 1–64 characters of a-z, 0-9, _ and -: invalid account`
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("Parse: %v, want ErrInvalid", err)
	}
	if diff := cmp.Diff(want, err.Error()); diff != "" {
		t.Errorf("error mismatch (-want +got):\n%s", diff)
	}
}

func TestLoadMissing(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "pairgate.yaml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load of a missing file: %v, want fs.ErrNotExist", err)
	}
	if errors.Is(err, ErrInvalid) {
		t.Errorf("a missing file is not an invalid configuration: %v", err)
	}
}

func TestLoadNamesFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pairgate.yaml")
	if err := os.WriteFile(path, []byte("server:\n  lsten: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	want := path + `:2:3: unknown key "lsten" in server (valid: listen)`
	if err == nil || err.Error() != want {
		t.Errorf("Load error = %v, want %s", err, want)
	}
}

func TestLoadEmptyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pairgate.yaml")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Default(), c); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
}

func TestParseTooLarge(t *testing.T) {
	data := []byte("# " + strings.Repeat("x", maxSize) + "\n")
	_, err := Parse(data, "big.yaml")
	if !errors.Is(err, ErrInvalid) || !strings.HasPrefix(err.Error(), "big.yaml: file is larger than") {
		t.Errorf("Parse of a huge file: %v", err)
	}
}
