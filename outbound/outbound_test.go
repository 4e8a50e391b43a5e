package outbound_test

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/makiuchi-d/gozxing"
	zxqr "github.com/makiuchi-d/gozxing/qrcode"

	"github.com/pairgate/pairgate/api"
	"github.com/pairgate/pairgate/config"
	"github.com/pairgate/pairgate/device"
	"github.com/pairgate/pairgate/outbound"
	"github.com/pairgate/pairgate/pairing"
	"github.com/pairgate/pairgate/secret"
	"github.com/pairgate/pairgate/store"
	"github.com/pairgate/pairgate/store/sqlite"
)

// clock is a test clock moved by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

type env struct {
	st      *sqlite.Store
	path    string
	gate    *pairing.Service
	devices *device.Service
	reader  *outbound.Reader
	clock   *clock
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "pairgate.db")
	st, err := sqlite.Open(ctx, sqlite.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	sec, _ := secret.FromBytes(bytes.Repeat([]byte{7}, secret.Size))
	cfg := config.Default()
	cfg.Owner.Senders = map[string][]string{"telegram": {"42"}}
	c := &clock{t: time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)}
	gate, err := pairing.New(pairing.Options{Store: st, Secret: sec, Config: cfg, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	devices, err := device.New(device.Options{Store: st, Secret: sec, Now: c.now,
		URL: func() (string, device.URLSource, error) {
			return "wss://gw.example.com/pair", device.URLSourceConfig, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	r, err := outbound.New(outbound.Options{Store: st, Pairing: gate, Devices: devices, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	return &env{st: st, path: path, gate: gate, devices: devices, reader: r, clock: c}
}

func (e *env) read(t *testing.T, after int64) api.OutboundBatch {
	t.Helper()
	b, err := e.reader.Read(context.Background(), after, 100)
	if err != nil {
		t.Fatalf("Read(%d): %v", after, err)
	}
	return b
}

func TestChallengeApprovalAndNotice(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	d := e.gate.Admit(ctx, pairing.Inbound{Channel: "telegram", Sender: "555", SenderName: "Alice", ReplyBy: api.ReplyByOutbound})
	if d.Verdict != api.Challenge || d.Reply != "" {
		t.Fatalf("decision %+v: want a challenge with no reply (it is outbound)", d)
	}
	b := e.read(t, 0)
	if len(b.Messages) != 2 || b.Next != 2 {
		t.Fatalf("after a challenge: %+v; want the owner's notice and the challenge", b)
	}
	notice, challenge := b.Messages[0], b.Messages[1]
	if notice.To != "42" || notice.Cause != store.CauseNotice ||
		notice.Text != "Alice (telegram 555) asks to talk to your assistant. Approve: /approve "+d.RequestID+" or pairgate pairing approve telegram "+d.RequestID {
		t.Errorf("notice %+v", notice)
	}
	if strings.Contains(notice.Text, d.Code) {
		t.Errorf("the owner's notice holds the code: %q", notice.Text)
	}
	want := "Access to this assistant needs the owner's approval. Your pairing code: `" + d.Code + "` (valid 1 hour)."
	if challenge.To != "555" || challenge.Channel != "telegram" || challenge.Account != "default" || challenge.Cause != store.CauseChallenge ||
		!strings.HasPrefix(challenge.Text, want) {
		t.Errorf("challenge %+v; want text starting %q", challenge, want)
	}

	// The code is rendered when read: the database holds none.
	raw, err := os.ReadFile(e.path)
	if err != nil {
		t.Fatal(err)
	}
	wal, _ := os.ReadFile(e.path + "-wal")
	if bytes.Contains(raw, []byte(d.Code)) || bytes.Contains(wal, []byte(d.Code)) {
		t.Errorf("the pairing code %s is in the database file", d.Code)
	}

	// A repeat message within the rate window: nothing; after it, a
	// reminder, valid for what is left.
	e.gate.Admit(ctx, pairing.Inbound{Channel: "telegram", Sender: "555", ReplyBy: api.ReplyByOutbound})
	if b := e.read(t, 2); len(b.Messages) != 0 {
		t.Errorf("a repeat within the rate window sent %+v", b.Messages)
	}
	e.clock.add(15 * time.Minute)
	e.gate.Admit(ctx, pairing.Inbound{Channel: "telegram", Sender: "555", ReplyBy: api.ReplyByOutbound})
	b = e.read(t, 2)
	if len(b.Messages) != 1 || b.Messages[0].Cause != store.CauseReminder || !strings.Contains(b.Messages[0].Text, "`"+d.Code+"` (valid 45 minutes)") {
		t.Fatalf("reminder: %+v", b)
	}

	// Approved with notify: the sender is told, once.
	a, err := e.gate.Approve(ctx, pairing.Target{Channel: "telegram", CodeOrID: d.Code}, true, store.Actor{Name: "cli:test"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.gate.Approve(ctx, pairing.Target{Channel: "telegram", CodeOrID: d.Code}, true, store.Actor{Name: "cli:test"}); err != nil {
		t.Fatal(err)
	}
	b = e.read(t, 3)
	if len(b.Messages) != 1 || b.Messages[0].To != "555" || b.Messages[0].Cause != store.CauseApproved || b.Messages[0].Text != a.Notify {
		t.Fatalf("after approving twice: %+v; want one approved notice %q", b, a.Notify)
	}
	// Without reply_by outbound, the reply is the caller's to send and
	// nothing is recorded for the sender; the owner is told all the same.
	d2 := e.gate.Admit(ctx, pairing.Inbound{Channel: "telegram", Sender: "777"})
	if d2.Reply == "" {
		t.Fatalf("decision %+v: want the reply in the answer", d2)
	}
	b = e.read(t, 4)
	if len(b.Messages) != 1 || b.Messages[0].Cause != store.CauseNotice || b.Messages[0].To != "42" {
		t.Errorf("after an answered challenge: %+v; want the owner's notice only", b)
	}
}

func TestExpiredCodeIsLeftOut(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.gate.Admit(ctx, pairing.Inbound{Channel: "telegram", Sender: "555", ReplyBy: api.ReplyByOutbound})
	e.clock.add(time.Hour)
	b := e.read(t, 0)
	if len(b.Messages) != 1 || b.Messages[0].Cause != store.CauseNotice || b.Next != 2 {
		t.Errorf("an hour later: %+v; want only the notice, and next past the expired challenge", b)
	}
}

func TestSetupCodeToChat(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	issued, err := e.devices.IssueSetupCode(ctx, device.SetupParams{Label: "kitchen",
		SendTo: &device.Recipient{Channel: "telegram", Account: "default", To: "42", Images: true}}, store.Actor{Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	b := e.read(t, 0)
	if len(b.Messages) != 2 {
		t.Fatalf("after /pair: %+v; want the text and the QR", b)
	}
	text, img := b.Messages[0], b.Messages[1]
	if text.Kind != "text" || text.Text != issued.SetupCode || text.To != "42" {
		t.Errorf("setup code message %+v; want the code %q", text, issued.SetupCode)
	}
	if img.Kind != "image" || decodeQR(t, img.PNG) != issued.SetupCode {
		t.Errorf("the QR does not decode to the setup code")
	}
	raw, _ := os.ReadFile(e.path)
	wal, _ := os.ReadFile(e.path + "-wal")
	tok, _ := device.DecodeSetupCode(issued.SetupCode)
	if bytes.Contains(raw, []byte(tok.Token)) || bytes.Contains(wal, []byte(tok.Token)) {
		t.Error("the setup token is in the database file")
	}
	// Once used, the code is no use: it is not delivered any more.
	msgs, _ := e.st.Outbound(ctx, 0, 10)
	r := store.DeviceRequest{ID: "dreq_1", DeviceID: strings.Repeat("a", 64), PublicKey: make([]byte, 32), Name: "n", Role: "node",
		CheckCode: "123456", CreatedAt: e.clock.now(), ExpiresAt: e.clock.now().Add(time.Minute), Status: store.DevicePending}
	if err := e.st.CreateDeviceRequest(ctx, r, msgs[0].Ref, store.Actor{Name: "test"}); err != nil {
		t.Fatal(err)
	}
	if b := e.read(t, 0); len(b.Messages) != 0 || b.Next != 2 {
		t.Errorf("after the code was used: %+v", b)
	}
}

func decodeQR(t *testing.T, b []byte) string {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("PNG: %v", err)
	}
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	res, err := zxqr.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_PURE_BARCODE: true})
	if err != nil {
		t.Fatalf("decode QR: %v", err)
	}
	return res.GetText()
}

func TestWait(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	start := time.Now()
	b, err := e.reader.Wait(ctx, 0, 10, 50*time.Millisecond)
	if err != nil || len(b.Messages) != 0 || b.Next != 0 {
		t.Fatalf("Wait on nothing = %+v, %v", b, err)
	}
	if waited := time.Since(start); waited < 50*time.Millisecond {
		t.Errorf("Wait answered after %v; want it to wait the 50ms asked", waited)
	}
	// A message recorded by another process's store wakes the waiter.
	other, err := sqlite.Open(ctx, sqlite.Options{Path: e.path})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	go func() {
		time.Sleep(100 * time.Millisecond)
		other.AppendOutbound(ctx, []store.OutboundMessage{{Channel: "telegram", Account: "default", To: "1", Kind: store.OutboundText,
			Text: "hello", Cause: store.CauseCommand}}, time.Now())
	}()
	start = time.Now()
	b, err = e.reader.Wait(ctx, 0, 10, 10*time.Second)
	if err != nil || len(b.Messages) != 1 || b.Messages[0].Text != "hello" {
		t.Fatalf("Wait = %+v, %v", b, err)
	}
	if waited := time.Since(start); waited > 2*time.Second {
		t.Errorf("the waiter woke %v after the message; want within the poll latency", waited)
	}
}
