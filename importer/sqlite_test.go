package importer

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pairgate/pairgate/channel"
	"github.com/pairgate/pairgate/internal/sqlitetest"
)

func senderLines(p Plan) []string {
	var out []string
	for _, s := range p.Senders {
		line := s.Channel + "/" + s.Account + " " + s.Sender
		if s.Revoked {
			line += " revoked"
		}
		out = append(out, line)
	}
	return out
}

func TestNexo(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "pairing.db")
	sqlitetest.Create(t, db, sqlitetest.NexoPairing,
		`INSERT INTO pairing_allow_from VALUES
			('whatsapp', 'personal', '+57311000001', '2026-04-25T13:21:00Z', 'cli', NULL),
			('whatsapp', 'personal', '573110000002@s.whatsapp.net', '2026-04-25T13:22:00Z', 'seed', '2026-05-01T09:00:00Z'),
			('telegram', '', '123456789', '1764000000', 'cli', NULL),
			('telegram', 'default', '@bob', '1764000000', 'cli', NULL),
			('irc', 'x', 'eve', '1764000000', 'cli', NULL)`,
		`INSERT INTO pairing_pending VALUES ('whatsapp', 'personal', '+57311000003', 'K7M9PQ2X', '2026-04-25T13:21:00Z', '{"name": "Ana"}')`)
	reg := channel.NewRegistry()
	for _, path := range []string{db, dir} {
		p, err := Nexo(context.Background(), path, reg)
		if err != nil {
			t.Fatalf("Nexo(%s): %v", path, err)
		}
		want := []string{"telegram/default 123456789", "whatsapp/personal +573110000002 revoked", "whatsapp/personal +57311000001"}
		if diff := cmp.Diff(want, senderLines(p)); diff != "" {
			t.Errorf("Nexo(%s) senders (-want +got):\n%s", path, diff)
		}
		if got := p.Senders[1].Raw; got != "573110000002@s.whatsapp.net" {
			t.Errorf("the normalised sender's raw id = %q", got)
		}
		if got := p.Senders[0].ApprovedAt; !got.Equal(time.Unix(1764000000, 0)) {
			t.Errorf("approved_at in Unix seconds read as %v", got)
		}
		if len(p.Refused) != 2 || !strings.Contains(p.Refused[0].Reason, `"irc"`) || !strings.Contains(p.Refused[1].Reason, "username") {
			t.Errorf("refused %+v, want @bob (a username) and irc (no channel)", p.Refused)
		}
		if diff := cmp.Diff([]Pending{{Channel: "whatsapp", Account: "personal", Sender: "+57311000003", Name: "Ana", Code: "K7M9PQ2X",
			CreatedAt: time.Date(2026, 4, 25, 13, 21, 0, 0, time.UTC), From: db}}, p.Pending); diff != "" {
			t.Errorf("pending (-want +got):\n%s", diff)
		}
	}
}

// A source database that is not one, is damaged or is not the system's
// stops the import with an error naming it; no file is ErrNoSource.
func TestSourceDatabaseErrors(t *testing.T) {
	ctx := context.Background()
	reg := channel.NewRegistry()
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage", "pairing.db")
	os.MkdirAll(filepath.Dir(garbage), 0o700)
	os.WriteFile(garbage, []byte(strings.Repeat("not a database ", 1000)), 0o600)
	other := filepath.Join(dir, "other", "pairing.db")
	sqlitetest.Create(t, other, `CREATE TABLE pairing_allow_from (x)`)
	for path, want := range map[string]string{garbage: "not a database", other: "no table pairing_pending"} {
		_, err := Nexo(ctx, path, reg)
		if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), want) {
			t.Errorf("Nexo(%s) = %v, want an error naming the file and %q", path, err, want)
		}
	}
	if _, err := Nexo(ctx, t.TempDir(), reg); err == nil || !strings.Contains(err.Error(), "no pairing files found") {
		t.Errorf("Nexo of an empty directory = %v, want ErrNoSource", err)
	}
	state := filepath.Join(dir, "openclaw")
	os.MkdirAll(filepath.Join(state, "state"), 0o700)
	os.WriteFile(filepath.Join(state, "state", "openclaw.sqlite"), []byte("SQLite format 3\x00 and then nothing"), 0o600)
	if _, err := OpenClaw(ctx, state, reg); err == nil || !strings.Contains(err.Error(), filepath.Join(state, "state", "openclaw.sqlite")) {
		t.Errorf("OpenClaw with a broken openclaw.sqlite = %v, want an error naming it", err)
	}
}

// OpenClaw's SQLite era and its paired devices, beside the JSON era.
func TestOpenClawSQLiteAndDevices(t *testing.T) {
	dir := t.TempDir()
	sqlitetest.Create(t, filepath.Join(dir, "state", "openclaw.sqlite"),
		sqlitetest.OpenClawState,
		`INSERT INTO channel_pairing_allow_entries VALUES ('telegram', 'default', '123456789', 0, 1764000000000),
			('telegram', 'fambot', '555', 0, 1764000000000), ('discord', 'default', '*', 1, 1764000000000)`,
		`INSERT INTO channel_pairing_requests VALUES ('telegram', 'fambot', '777', 'ABCD2345', '2026-09-25T01:00:00Z',
			'2026-09-25T01:00:00Z', '{"username": "gran", "firstName": "Grandma"}')`)
	os.MkdirAll(filepath.Join(dir, "credentials"), 0o700)
	os.WriteFile(filepath.Join(dir, "credentials", "telegram-allowFrom.json"), []byte(`{"version": 1, "allowFrom": ["123456789", "42"]}`), 0o600)
	os.MkdirAll(filepath.Join(dir, "devices"), 0o700)
	os.WriteFile(filepath.Join(dir, "devices", "paired.json"), []byte(`{"d1": {"deviceId": "d1", "displayName": "Ana's phone", "platform": "ios",
		"publicKey": "AAAA", "approvedAtMs": 1764000000000, "tokens": {"operator": {"token": "SECRET-TOKEN", "role": "operator"}}}}`), 0o600)

	p, err := OpenClaw(context.Background(), dir, channel.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"telegram/default 123456789", "telegram/default 42", "telegram/fambot 555"}, senderLines(p)); diff != "" {
		t.Errorf("senders (-want +got):\n%s", diff)
	}
	if len(p.Files) != 3 {
		t.Errorf("files %v, want the allowFrom file, openclaw.sqlite and paired.json", p.Files)
	}
	if len(p.Pending) != 1 || p.Pending[0].Name != "Grandma" || p.Pending[0].Account != "fambot" || p.Pending[0].Code != "ABCD2345" ||
		!p.Pending[0].CreatedAt.Equal(time.Date(2026, 9, 25, 1, 0, 0, 0, time.UTC)) {
		t.Errorf("pending %+v, want 777 (Grandma) on fambot, with its code and time", p.Pending)
	}
	if len(p.Refused) != 1 || p.Refused[0].Key != "*" {
		t.Errorf("refused %+v, want *", p.Refused)
	}
	want := []Device{{ID: "d1", Name: "Ana's phone", Platform: "ios", PairedAt: time.UnixMilli(1764000000000).UTC(), From: filepath.Join(dir, "devices", "paired.json")}}
	if diff := cmp.Diff(want, p.Devices); diff != "" {
		t.Errorf("devices (-want +got):\n%s", diff)
	}
	if strings.Contains(fmtPlan(p), "SECRET-TOKEN") {
		t.Error("a device token came into the plan")
	}
}

func fmtPlan(p Plan) string { return fmt.Sprintf("%+v", p) }

func TestSQLTime(t *testing.T) {
	for _, c := range []struct {
		in   any
		want time.Time
	}{
		{int64(1764000000), time.Unix(1764000000, 0).UTC()},
		{int64(1764000000123), time.UnixMilli(1764000000123).UTC()},
		{1764000000.0, time.Unix(1764000000, 0).UTC()},
		{"1764000000", time.Unix(1764000000, 0).UTC()},
		{"2026-04-25T13:21:00Z", time.Date(2026, 4, 25, 13, 21, 0, 0, time.UTC)},
		{[]byte("2026-04-25 13:21:00"), time.Date(2026, 4, 25, 13, 21, 0, 0, time.UTC)},
		{"yesterday", time.Time{}},
		{int64(-5), time.Time{}},
		{nil, time.Time{}},
	} {
		if got := sqlTime(c.in); !got.Equal(c.want) {
			t.Errorf("sqlTime(%#v) = %v, want %v", c.in, got, c.want)
		}
	}
}

// Whatever devices/paired.json holds, reading it gives devices or an
// error, never a panic, and every device has an id and a name.
func FuzzOpenClawDevices(f *testing.F) {
	f.Add([]byte(`{"d1": {"deviceId": "d1", "displayName": "Ana", "platform": "ios", "approvedAtMs": 1764000000000, "tokens": {}}}`))
	f.Add([]byte(`{"d2": {"createdAtMs": 1e300}, "": {}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var p Plan
		if err := p.openClawDevicesData(data, "paired.json"); err != nil {
			return
		}
		for _, d := range p.Devices {
			if d.ID == "" || d.Name == "" {
				t.Fatalf("device %+v without an id or a name", d)
			}
		}
	})
}
