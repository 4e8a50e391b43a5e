package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pairgate/pairgate/channel"
)

func FuzzParse(f *testing.F) {
	full, err := os.ReadFile(filepath.Join("testdata", "full.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(full)
	for _, s := range []string{
		"",
		"pairing:\n  storage: {path: /var/lib/pairgate/pairing.db}\n  public_url: wss://gateway.example.com/pair\n",
		"pairing:\n  limits: {code_ttl: 90, lockout: 1h30m}\n",
		"pairing:\n  channels:\n    telegram: &b {policy: open}\n    discord: {<<: *b, allow_from: [0123]}\n",
		"pairing:\n  polcy: x\n",
		"pairing:\n  channels:\n    telegram: {accounts: {Work: {policy: open}, \" bot \": {}}}\n",
		"pairing: {limits: {max_pending: 3.5}}\n",
		"a: [\n",
		"- x\n",
		"x: 1\n---\ny: 2\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const name = "f.yaml"
		c, err := Parse(data, name)
		if err != nil {
			if c != nil {
				t.Errorf("Parse returned a config and an error")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error does not wrap ErrInvalid: %v", err)
			}
			// Every line names the file: one problem per line.
			for line := range strings.SplitSeq(err.Error(), "\n") {
				if !strings.HasPrefix(line, name+":") {
					t.Errorf("error line %q does not start with %q", line, name+":")
				}
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Errorf("Parse succeeded but Validate fails: %v", err)
		}
		// Account names and allow_from entries come out in the form the
		// gate and the CLI use.
		reg := channel.NewRegistry()
		for ch, chn := range c.Pairing.Channels {
			ad, err := reg.Get(ch)
			if err != nil {
				t.Fatalf("Parse accepted channel %q: %v", ch, err)
			}
			lists := [][]string{chn.AllowFrom}
			for key, acc := range chn.Accounts {
				if canon, err := channel.NormalizeAccount(key); err != nil || canon != key {
					t.Errorf("pairing.channels.%s.accounts: key %q is not canonical (%q, %v)", ch, key, canon, err)
				}
				lists = append(lists, acc.AllowFrom)
			}
			for _, list := range lists {
				for _, s := range list {
					if canon, err := ad.Normalize(s); err != nil || canon != s {
						t.Errorf("pairing.channels.%s: allow_from entry %q is not canonical (%q, %v)", ch, s, canon, err)
					}
				}
			}
		}
	})
}
