package config

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestOwners(t *testing.T) {
	c := mustParse(t, `
owner:
  senders:
    telegram: ["tg:42", "7", "42"]
    signal: ["+15555550100"]
`)
	want := []Chat{
		{Channel: "signal", Account: "default", Sender: "+15555550100"},
		{Channel: "telegram", Account: "default", Sender: "42"},
		{Channel: "telegram", Account: "default", Sender: "7"},
	}
	if diff := cmp.Diff(want, c.Owner.Owners()); diff != "" {
		t.Errorf("Owners() (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, c.Owner.NoticeChats()); diff != "" {
		t.Errorf("NoticeChats() without a notice chat is every owner (-want +got):\n%s", diff)
	}
	for _, tt := range []struct {
		channel, sender string
		want            bool
	}{
		{"telegram", "42", true},
		{"telegram", "tg:42", false}, // callers pass normalised senders
		{"signal", "42", false},
		{"telegram", "", false},
	} {
		if got := c.Owner.IsOwner(tt.channel, tt.sender); got != tt.want {
			t.Errorf("IsOwner(%q, %q) = %v, want %v", tt.channel, tt.sender, got, tt.want)
		}
	}

	c = mustParse(t, `
owner:
  senders: {telegram: ["7"]}
  channel: matrix
  account: Work
  sender: "@me:example.org"
`)
	if diff := cmp.Diff([]Chat{{Channel: "matrix", Account: "work", Sender: "@me:example.org"}}, c.Owner.NoticeChats()); diff != "" {
		t.Errorf("NoticeChats() with a notice chat (-want +got):\n%s", diff)
	}
	if !c.Owner.IsOwner("matrix", "@me:example.org") || !c.Owner.IsOwner("telegram", "7") {
		t.Errorf("the notice chat's sender and the senders should all be owners: %+v", c.Owner)
	}
}
