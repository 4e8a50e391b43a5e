package importer

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/pairgate/pairgate/channel"
)

// OpenClaw reads OpenClaw's pairing state under dir, its state directory
// (or a directory of its files): the JSON era's files in dir or its
// credentials/ (<channel>-allowFrom.json and
// <channel>-<account>-allowFrom.json, {version: 1, allowFrom: [ids]}, give
// the senders; <channel>-pairing.json, {version: 1, requests: [{id, code,
// createdAt, lastSeenAt, meta}]}, the pending requests, with their codes,
// see Pending); the later SQLite store, state/openclaw.sqlite
// (tables channel_pairing_allow_entries and channel_pairing_requests);
// and devices/paired.json, the paired devices (see Device). A file that
// cannot be read or parsed, or of a version other than 1, is an error
// naming it.
func OpenClaw(ctx context.Context, dir string, reg *channel.Registry) (Plan, error) {
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
	for _, db := range []string{filepath.Join(dir, "openclaw.sqlite"), filepath.Join(dir, "state", "openclaw.sqlite")} {
		if err := p.openClawSQLite(ctx, db, reg); err != nil {
			return Plan{}, err
		}
	}
	for _, f := range []string{filepath.Join(dir, "paired.json"), filepath.Join(dir, "devices", "paired.json")} {
		if err := p.openClawDevices(f); err != nil {
			return Plan{}, err
		}
	}
	if len(p.Files) == 0 {
		return Plan{}, fmt.Errorf("%s: %w (want OpenClaw's state directory: credentials/<channel>-allowFrom.json, state/openclaw.sqlite or devices/paired.json)", dir, ErrNoSource)
	}
	p.sort()
	return p, nil
}

// openClawSQLite reads OpenClaw's SQLite store at path, if there is one.
func (p *Plan) openClawSQLite(ctx context.Context, path string, reg *channel.Registry) error {
	db, err := openSource(ctx, path, "channel_pairing_allow_entries", "channel_pairing_requests")
	if db == nil || err != nil {
		return err
	}
	defer db.Close()
	p.Files = append(p.Files, path)
	err = eachRow(ctx, db, path, `SELECT channel_key, account_id, entry FROM channel_pairing_allow_entries
		ORDER BY channel_key, account_id, sort_order, entry`, func(r []any) error {
		ch, account, entry := text(r[0]), text(r[1]), text(r[2])
		if ad, account, ok := p.scope(reg, path, ch+"/"+account+" "+entry, ch, account); ok {
			p.addOpenClaw(ad, Sender{Channel: ch, Account: account, From: path}, entry)
		}
		return nil
	}, 3)
	if err != nil {
		return err
	}
	return p.pendingRows(ctx, db, path, reg, `SELECT channel_key, account_id, request_id, meta_json, code, created_at FROM channel_pairing_requests
		ORDER BY channel_key, account_id, request_id`)
}

// metaName is the sender's name in a request's meta (OpenClaw's and
// nexo's meta_json), if it has one.
func metaName(meta string) string {
	var m map[string]any
	if json.Unmarshal([]byte(meta), &m) != nil {
		return ""
	}
	for _, k := range []string{"name", "firstName", "username", "tag"} {
		if s, ok := m[k].(string); ok && s != "" {
			return s
		}
	}
	return ""
}

// openClawDevice is an entry of devices/paired.json. Its tokens are not
// among the fields: they are never read into the plan.
type openClawDevice struct {
	DeviceID     string  `json:"deviceId"`
	DisplayName  string  `json:"displayName"`
	Platform     string  `json:"platform"`
	ClientID     string  `json:"clientId"`
	ApprovedAtMs float64 `json:"approvedAtMs"`
	CreatedAtMs  float64 `json:"createdAtMs"`
}

// openClawDevices reads devices/paired.json at path, if there is one: an
// object of devices by id.
func (p *Plan) openClawDevices(path string) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	return p.openClawDevicesData(data, path)
}

func (p *Plan) openClawDevicesData(data []byte, path string) error {
	var devices map[string]openClawDevice
	if err := json.Unmarshal(data, &devices); err != nil {
		return fmt.Errorf("%s is not OpenClaw's paired devices (want a JSON object of devices by id): %w", path, err)
	}
	p.Files = append(p.Files, path)
	for id, d := range devices {
		if d.DeviceID != "" {
			id = d.DeviceID
		}
		if id == "" {
			p.Refused = append(p.Refused, Refused{From: path, Key: `""`, Reason: "a device without an id"})
			continue
		}
		name := cmp.Or(d.DisplayName, d.ClientID, id)
		at := cmp.Or(d.ApprovedAtMs, d.CreatedAtMs)
		dev := Device{ID: id, Name: name, Platform: d.Platform, From: path}
		if at > 0 && at < 1e15 {
			dev.PairedAt = time.UnixMilli(int64(at)).UTC()
		}
		p.Devices = append(p.Devices, dev)
	}
	return nil
}

// openClawFile is the shape of both kinds of file.
type openClawFile struct {
	Version   int               `json:"version"`
	AllowFrom []json.RawMessage `json:"allowFrom"`
	Requests  []struct {
		ID        string          `json:"id"`
		Code      string          `json:"code"`
		CreatedAt string          `json:"createdAt"`
		Meta      json.RawMessage `json:"meta"`
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
	ad, account, ok := p.scope(reg, path, stem, ch, account)
	if !ok {
		return nil
	}
	if isPending {
		for _, r := range f.Requests {
			p.Pending = append(p.Pending, Pending{Channel: ch, Account: account, Sender: r.ID, Name: metaName(string(r.Meta)),
				Code: r.Code, CreatedAt: sqlTime(r.CreatedAt), From: path})
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
		p.addOpenClaw(ad, Sender{Channel: ch, Account: account, From: path}, key)
	}
	return nil
}

// addOpenClaw adds an allowFrom entry, refusing "*".
func (p *Plan) addOpenClaw(ad channel.Adapter, s Sender, entry string) {
	if entry == "*" {
		p.Refused = append(p.Refused, Refused{From: s.From, Key: entry, Reason: `"*" (everyone) is a policy, not a sender: set the channel's policy to open instead`})
		return
	}
	p.add(ad, s, entry)
}
