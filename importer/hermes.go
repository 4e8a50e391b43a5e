package importer

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/pairgate/pairgate/channel"
)

// hermesPlatforms maps hermes-agent's platform names to pairgate's
// channels where they differ; the others are the same word.
var hermesPlatforms = map[string]string{
	"bluebubbles": "imessage",
	"lark":        "feishu",
}

// Hermes reads hermes-agent's pairing files under dir: dir itself, or a
// hermes home holding platforms/pairing/ (or the legacy pairing/), and the
// same under each profiles/<name>/, whose senders go to the account
// <name>. {platform}-approved.json ({user_id: {user_name, approved_at}})
// gives the senders; {platform}-pending.json the pending requests (see
// Pending). A file that cannot be read or parsed
// is an error naming it: nothing of the source is imported then.
func Hermes(dir string, reg *channel.Registry) (Plan, error) {
	p := Plan{Source: "hermes"}
	type place struct{ dir, account string }
	places := []place{{dir, channel.DefaultAccount}, {filepath.Join(dir, "platforms", "pairing"), channel.DefaultAccount},
		{filepath.Join(dir, "pairing"), channel.DefaultAccount}}
	profiles, _ := filepath.Glob(filepath.Join(dir, "profiles", "*"))
	sort.Strings(profiles)
	for _, prof := range profiles {
		name := filepath.Base(prof)
		account, err := channel.NormalizeAccount(name)
		if err != nil {
			p.Refused = append(p.Refused, Refused{From: prof, Key: name, Reason: fmt.Sprintf("profile name is no pairgate account: %v", err)})
			continue
		}
		places = append(places, place{filepath.Join(prof, "platforms", "pairing"), account}, place{filepath.Join(prof, "pairing"), account})
	}
	for _, pl := range places {
		files, err := filepath.Glob(filepath.Join(pl.dir, "*-approved.json"))
		if err != nil {
			return Plan{}, err
		}
		pending, _ := filepath.Glob(filepath.Join(pl.dir, "*-pending.json"))
		files = append(files, pending...)
		sort.Strings(files)
		for _, f := range files {
			if err := p.hermesFile(f, pl.account, reg); err != nil {
				return Plan{}, err
			}
		}
	}
	if len(p.Files) == 0 {
		return Plan{}, fmt.Errorf("%s: %w (want hermes-agent's {platform}-approved.json, in it or under platforms/pairing/, pairing/ or profiles/*/)", dir, ErrNoSource)
	}
	p.sort()
	return p, nil
}

// hermesEntry is one value of an approved or pending file.
type hermesEntry struct {
	UserID     string          `json:"user_id"`
	UserName   string          `json:"user_name"`
	ApprovedAt json.RawMessage `json:"approved_at"`
	CreatedAt  json.RawMessage `json:"created_at"`
	// Newer pending files keep a salted hash of the code, not the code.
	CodeHash json.RawMessage `json:"code_hash"`
	Hash     json.RawMessage `json:"hash"`
}

func (p *Plan) hermesFile(path, account string, reg *channel.Registry) error {
	base := filepath.Base(path)
	isPending := strings.HasSuffix(base, "-pending.json")
	platform := strings.TrimSuffix(strings.TrimSuffix(base, "-approved.json"), "-pending.json")
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	return p.hermesData(data, path, platform, isPending, account, reg)
}

// hermesData reads one file's content (path names it in the plan).
func (p *Plan) hermesData(data []byte, path, platform string, isPending bool, account string, reg *channel.Registry) error {
	var entries map[string]hermesEntry
	if err := json.Unmarshal(data, &entries); err != nil {
		return fmt.Errorf("%s is not a hermes pairing file (want a JSON object of entries): %w", path, err)
	}
	p.Files = append(p.Files, path)
	ch := platform
	if c, ok := hermesPlatforms[platform]; ok {
		ch = c
	}
	ad, err := reg.Get(ch)
	keys := make([]string, 0, len(entries))
	for k := range entries {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		e := entries[key]
		if err != nil {
			p.Refused = append(p.Refused, Refused{From: path, Key: key, Reason: fmt.Sprintf("platform %q has no pairgate channel", platform)})
			continue
		}
		if isPending {
			// Older files key entries by the plaintext code, newer ones by
			// an entry id, with only a salted hash of the code.
			pe := Pending{Channel: ch, Account: account, Sender: e.UserID, Name: e.UserName, CreatedAt: hermesTime(e.CreatedAt), From: path}
			if e.CodeHash == nil && e.Hash == nil {
				pe.Code = key
			}
			p.Pending = append(p.Pending, pe)
			continue
		}
		p.add(ad, Sender{Channel: ch, Account: account, Name: e.UserName, ApprovedAt: hermesTime(e.ApprovedAt), From: path}, key)
	}
	return nil
}

// hermesTime reads approved_at: Unix seconds (a float, as Python's
// time.time() writes them) or an RFC 3339 string; zero otherwise.
func hermesTime(raw json.RawMessage) time.Time {
	var f float64
	if json.Unmarshal(raw, &f) == nil && f > 0 && f < math.MaxInt32*4 {
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(frac*1e9)).UTC()
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}
