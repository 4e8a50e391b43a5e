package importer

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/pairgate/pairgate/channel"
)

// OpenClaw reads OpenClaw's pairing files of the JSON era under dir: dir
// itself or its credentials/ directory. <channel>-allowFrom.json and
// <channel>-<account>-allowFrom.json ({version: 1, allowFrom: [ids]})
// give the senders; <channel>-pairing.json ({version: 1, requests: [{id,
// code, createdAt, lastSeenAt, meta}]}) the pending requests, which cannot
// come over (see Pending). A file that cannot be read or parsed, or of a
// version other than 1, is an error naming it.
func OpenClaw(dir string, reg *channel.Registry) (Plan, error) {
	p := Plan{Source: "openclaw"}
	for _, d := range []string{dir, filepath.Join(dir, "credentials")} {
		allow, err := filepath.Glob(filepath.Join(d, "*-allowFrom.json"))
		if err != nil {
			return Plan{}, err
		}
		pending, _ := filepath.Glob(filepath.Join(d, "*-pairing.json"))
		files := append(allow, pending...)
		sort.Strings(files)
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				return Plan{}, fmt.Errorf("read %s: %w", f, err)
			}
			if err := p.openClawData(data, f, reg); err != nil {
				return Plan{}, err
			}
		}
	}
	if len(p.Files) == 0 {
		return Plan{}, fmt.Errorf("%s: %w (want OpenClaw's <channel>-allowFrom.json, in it or under credentials/)", dir, ErrNoSource)
	}
	p.sort()
	return p, nil
}

// openClawFile is the shape of both kinds of file.
type openClawFile struct {
	Version   int               `json:"version"`
	AllowFrom []json.RawMessage `json:"allowFrom"`
	Requests  []struct {
		ID   string          `json:"id"`
		Meta json.RawMessage `json:"meta"`
	} `json:"requests"`
}

func (p *Plan) openClawData(data []byte, path string, reg *channel.Registry) error {
	base := filepath.Base(path)
	isPending := strings.HasSuffix(base, "-pairing.json")
	stem := strings.TrimSuffix(strings.TrimSuffix(base, "-allowFrom.json"), "-pairing.json")
	var f openClawFile
	if err := json.Unmarshal(data, &f); err != nil {
		return fmt.Errorf("%s is not an OpenClaw pairing file (want {\"version\": 1, …}): %w", path, err)
	}
	if f.Version != 1 {
		return fmt.Errorf("%s: version %d; this import reads version 1", path, f.Version)
	}
	p.Files = append(p.Files, path)
	// Channel names hold no "-"; an account name may.
	ch, account, _ := strings.Cut(stem, "-")
	if account == "" {
		account = channel.DefaultAccount
	}
	ad, err := reg.Get(ch)
	if err != nil {
		p.Refused = append(p.Refused, Refused{From: path, Key: stem, Reason: fmt.Sprintf("channel %q is not a pairgate channel", ch)})
		return nil
	}
	if account, err = channel.NormalizeAccount(account); err != nil {
		p.Refused = append(p.Refused, Refused{From: path, Key: stem, Reason: fmt.Sprintf("account is no pairgate account: %v", err)})
		return nil
	}
	if isPending {
		for _, r := range f.Requests {
			p.Pending = append(p.Pending, Pending{Channel: ch, Account: account, Sender: r.ID, From: path})
		}
		return nil
	}
	for _, raw := range f.AllowFrom {
		// Ids are strings, or numbers in files written by hand.
		var key string
		if json.Unmarshal(raw, &key) != nil {
			var n json.Number
			if err := json.Unmarshal(raw, &n); err != nil {
				p.Refused = append(p.Refused, Refused{From: path, Key: string(raw), Reason: "an allowFrom entry is neither a string nor a number"})
				continue
			}
			key = n.String()
		}
		if key == "*" {
			p.Refused = append(p.Refused, Refused{From: path, Key: key, Reason: `"*" (everyone) is a policy, not a sender: set the channel's policy to open instead`})
			continue
		}
		sender, err := ad.Normalize(key)
		if err != nil {
			p.Refused = append(p.Refused, Refused{From: path, Key: key, Reason: err.Error()})
			continue
		}
		s := Sender{Channel: ch, Account: account, Sender: sender, From: path}
		if sender != key {
			s.Raw = key
		}
		p.Senders = append(p.Senders, s)
	}
	return nil
}
