package notice

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pairgate/pairgate/config"

	"github.com/pairgate/pairgate/store"
)

func TestFromChange(t *testing.T) {
	tests := []struct {
		name string
		c    store.Change
		want string
	}{
		{
			"dm request with a name",
			store.Change{Kind: store.KindRequested, Scope: store.Scope{Channel: "telegram", Account: "default"}, Sender: "123456789",
				RequestID: "req_abc", Data: store.ChangeData{Name: "Alice"}},
			"Alice (telegram 123456789) asks to talk to your assistant. Approve: /approve req_abc or pairgate pairing approve telegram req_abc",
		},
		{
			"dm request on another account, no name",
			store.Change{Kind: store.KindRequested, Scope: store.Scope{Channel: "signal", Account: "work"}, Sender: "+15555550100",
				RequestID: "req_x"},
			"signal +15555550100, account work asks to talk to your assistant. Approve: /approve req_x or pairgate pairing approve signal req_x --account work",
		},
		{
			"device request",
			store.Change{Kind: store.KindDeviceRequested, RequestID: "dreq_1", Data: store.ChangeData{Name: "Pixel 8", Platform: "android",
				Role: "node", Label: "kitchen", Remote: "192.0.2.7", CheckCode: "482913"}},
			"A device asks to pair: Pixel 8 (android), role node, label kitchen, from 192.0.2.7. Check code 482913: approve only if the device shows the same. Approve: /approve-device dreq_1 or pairgate devices approve dreq_1",
		},
	}
	for _, tt := range tests {
		got, ok := FromChange(tt.c)
		if !ok || got != tt.want {
			t.Errorf("%s: FromChange = %q, %v\nwant %q", tt.name, got, ok, tt.want)
		}
	}
	for _, k := range store.ChangeKinds() {
		if k == store.KindRequested || k == store.KindDeviceRequested {
			continue
		}
		if text, ok := FromChange(store.Change{Kind: k}); ok {
			t.Errorf("FromChange(%s) = %q: only new requests call for a notice", k, text)
		}
	}
}

func TestMessages(t *testing.T) {
	owners := config.Owner{Senders: map[string][]string{"telegram": {"42"}, "signal": {"+15555550100"}}}
	got := Messages(owners, store.Scope{Channel: "telegram", Account: "work"}, "hi")
	want := []store.OutboundMessage{
		{Channel: "signal", Account: "default", To: "+15555550100", Kind: store.OutboundText, Text: "hi", Cause: store.CauseNotice},
		{Channel: "telegram", Account: "work", To: "42", Kind: store.OutboundText, Text: "hi", Cause: store.CauseNotice},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("a DM request on telegram/work (-want +got):\n%s", diff)
	}
	got = Messages(owners, store.Scope{}, "device")
	if len(got) != 2 || got[1].Account != "default" {
		t.Errorf("a device request goes to every owner on the default account: %+v", got)
	}
	owners.Channel, owners.Account, owners.Sender = "matrix", "home", "@me:example.org"
	got = Messages(owners, store.Scope{Channel: "matrix", Account: "work"}, "hi")
	want = []store.OutboundMessage{{Channel: "matrix", Account: "home", To: "@me:example.org", Kind: store.OutboundText, Text: "hi", Cause: store.CauseNotice}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("with a notice chat, only it, on its account (-want +got):\n%s", diff)
	}
	if got := Messages(config.Owner{}, store.Scope{Channel: "telegram", Account: "default"}, "hi"); len(got) != 0 {
		t.Errorf("no owners, no notices: %+v", got)
	}
}
