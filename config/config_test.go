package config

import (
	"testing"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/google/go-cmp/cmp"
)

func TestDefault(t *testing.T) {
	want := &Config{
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
	got := Default()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Default() mismatch (-want +got):\n%s", diff)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("Default().Validate() = %v", err)
	}
	// Each call returns its own value: callers may change it.
	got.Pairing.Limits.MaxPending = 9
	if Default().Pairing.Limits.MaxPending != 3 {
		t.Error("Default() shares state between calls")
	}
}

func inheritConfig() *Config {
	c := Default()
	c.Pairing.Policy = PolicyAllowlist
	c.Pairing.Channels = map[string]Channel{
		"telegram": {
			Policy:    PolicyOpen,
			AllowFrom: []string{"1", "2"},
			Accounts: map[string]Account{
				"work":    {Policy: PolicyDisabled, AllowFrom: []string{"3"}},
				"home":    {AllowFrom: []string{"4"}},
				"default": {AllowFrom: []string{"5"}},
			},
		},
		"discord": {
			Accounts: map[string]Account{"bot": {Policy: PolicyPairing}},
		},
		"slack": {AllowFrom: []string{"U1"}},
	}
	return c
}

func TestPolicyFor(t *testing.T) {
	c := inheritConfig()
	tests := []struct {
		channel, account string
		want             Policy
	}{
		{"telegram", "work", PolicyDisabled},    // account's own
		{"telegram", "home", PolicyOpen},        // channel's
		{"telegram", "other", PolicyOpen},       // unknown account: channel's
		{"telegram", "", PolicyOpen},            // "" is "default"
		{"discord", "bot", PolicyPairing},       // account's own over pairing.policy
		{"discord", "default", PolicyAllowlist}, // pairing.policy
		{"signal", "default", PolicyAllowlist},  // channel not configured
	}
	for _, tt := range tests {
		if got := c.PolicyFor(tt.channel, tt.account); got != tt.want {
			t.Errorf("PolicyFor(%q, %q) = %q, want %q", tt.channel, tt.account, got, tt.want)
		}
	}

	// With pairing.policy cleared as well, the answer is pairing.
	c.Pairing.Policy = ""
	if got := c.PolicyFor("signal", "x"); got != PolicyPairing {
		t.Errorf("PolicyFor with nothing set = %q, want %q", got, PolicyPairing)
	}
}

func TestDurationString(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{time.Hour, "1h"},
		{90 * time.Minute, "1h30m"},
		{10 * time.Minute, "10m"},
		{24 * time.Hour, "24h"},
		{90 * time.Second, "1m30s"},
		{time.Hour + time.Second, "1h0m1s"},
		{-5 * time.Minute, "-5m"},
		{0, "0s"},
		{1500 * time.Millisecond, "1.5s"},
	}
	for _, tt := range tests {
		if got := Duration(tt.d).String(); got != tt.want {
			t.Errorf("Duration(%v).String() = %q, want %q", tt.d, got, tt.want)
		}
		if got := Duration(tt.d).Std(); got != tt.d {
			t.Errorf("Duration(%v).Std() = %v", tt.d, got)
		}
	}
}

func TestDurationMarshalRoundTrip(t *testing.T) {
	in := Default().Pairing.Limits
	in.CodeTTL = Duration(90 * time.Minute)
	data, err := yaml.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	const want = `code_ttl: 1h30m
max_pending: 3
rate_window: 10m
max_failures: 5
failure_window: 1h
lockout: 1h
decline_window: 24h
`
	if diff := cmp.Diff(want, string(data)); diff != "" {
		t.Errorf("Marshal mismatch (-want +got):\n%s", diff)
	}
	var out Limits
	if err := yaml.UnmarshalWithOptions(data, &out, yaml.Strict()); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(in, out); diff != "" {
		t.Errorf("round trip mismatch (-want +got):\n%s", diff)
	}
}
