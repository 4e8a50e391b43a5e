package config

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// exampleOwner is the owner section of pairgate.example.yaml, with a
// section before it.
const exampleOwner = `pairing:
  policy: pairing # é: comments may hold any text
owner:
  senders: {}                 # who may run owner commands in chat, per channel:
                              #   {telegram: ["123456789"]}; pairgate owner add edits it
  # Where notices of new requests go.
  channel: ""
  account: ""                 # "" means default
  sender: ""
`

func TestAddOwner(t *testing.T) {
	tests := []struct {
		name, in, ch, sender, want string
	}{
		{"empty file", "", "telegram", "42",
			"owner:\n  senders:\n    telegram:\n      - \"42\"\n"},
		{"comments only, no final newline", "# pairgate", "telegram", "42",
			"# pairgate\nowner:\n  senders:\n    telegram:\n      - \"42\"\n"},
		{"flow, to the list", `owner: {senders: {telegram: ["1"]}}` + "\n", "telegram", "42",
			`owner: {senders: {telegram: ["1", "42"]}}` + "\n"},
		{"flow, a new channel", `owner: {senders: {telegram: ["1"]}}` + "\n", "whatsapp", "+5491155556666",
			`owner: {senders: {telegram: ["1"], whatsapp: ["+5491155556666"]}}` + "\n"},
		{"flow file", "{pairing: {policy: open}}\n", "telegram", "42",
			`{pairing: {policy: open}, owner: {senders: {telegram: ["42"]}}}` + "\n"},
		{"JSON file: keys quoted too", `{"owner": {"senders": {"whatsapp": ["+5491155556666"]}}}` + "\n", "telegram", "42",
			`{"owner": {"senders": {"whatsapp": ["+5491155556666"], "telegram": ["42"]}}}` + "\n"},
		{"block, to the list", "owner:\n  senders:\n    telegram:\n      - \"1\" # me\n# end\n", "telegram", "42",
			"owner:\n  senders:\n    telegram:\n      - \"1\" # me\n      - \"42\"\n# end\n"},
		{"block list at the key's indentation", "owner:\n  senders:\n    telegram:\n    - 1\n", "telegram", "42",
			"owner:\n  senders:\n    telegram:\n    - 1\n    - \"42\"\n"},
		{"block, a new channel after the others", "owner:\n  senders:\n    telegram: [\"1\"]\n  sender: \"\"\n", "discord", "80351110224678912",
			"owner:\n  senders:\n    telegram: [\"1\"]\n    discord:\n      - \"80351110224678912\"\n  sender: \"\"\n"},
		{"block, no senders yet", "owner:\n    channel: telegram\n    sender: \"7\"\nserver:\n  listen: 127.0.0.1:7420\n", "telegram", "42",
			"owner:\n    channel: telegram\n    sender: \"7\"\n    senders:\n      telegram:\n        - \"42\"\nserver:\n  listen: 127.0.0.1:7420\n"},
		{"no owner yet: at the end of the file", "pairing:\n  policy: open\n\n# the end\n", "telegram", "42",
			"pairing:\n  policy: open\n\n# the end\nowner:\n  senders:\n    telegram:\n      - \"42\"\n"},
		{"the example's senders: {}", exampleOwner, "telegram", "123456789",
			strings.Replace(exampleOwner, "senders: {}", `senders: {telegram: ["123456789"]}`, 1)},
		{"owner: with nothing", "owner:\n", "telegram", "42",
			"owner:\n  senders:\n    telegram:\n      - \"42\"\n"},
		{"owner: ~", "owner: ~\n", "telegram", "42",
			`owner: {senders: {telegram: ["42"]}}` + "\n"},
		{"channel: with nothing", "owner:\n  senders:\n    telegram:\n", "telegram", "42",
			"owner:\n  senders:\n    telegram:\n      - \"42\"\n"},
		{"channel: null", "owner:\n  senders:\n    telegram: null\n", "telegram", "42",
			"owner:\n  senders:\n    telegram: [\"42\"]\n"},
		{"empty flow list", "owner:\n  senders:\n    telegram: [ ]\n", "telegram", "42",
			"owner:\n  senders:\n    telegram: [\"42\" ]\n"},
		{"flow list over lines", "owner:\n  senders:\n    telegram: [\n      \"1\",\n    ]\n", "telegram", "42",
			"owner:\n  senders:\n    telegram: [\n      \"1\", \"42\"\n    ]\n"},
		{"CRLF line breaks", "owner:\r\n  senders:\r\n    telegram:\r\n      - \"1\"\r\n", "telegram", "42",
			"owner:\r\n  senders:\r\n    telegram:\r\n      - \"1\"\r\n      - \"42\"\r\n"},
		{"byte-order mark", "\ufeffpairing:\n  policy: open\n", "telegram", "42",
			"\ufeffpairing:\n  policy: open\nowner:\n  senders:\n    telegram:\n      - \"42\"\n"},
		{"listed already, spelled otherwise", "owner:\n  senders:\n    telegram: [\"tg:42\"] # me\n", "telegram", "42",
			"owner:\n  senders:\n    telegram: [\"tg:42\"] # me\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := AddOwner([]byte(tt.in), "pairgate.yaml", tt.ch, tt.sender)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, string(got)); diff != "" {
				t.Errorf("AddOwner(%q, %s) (-want +got):\n%s", tt.in, tt.sender, diff)
			}
			c, err := Parse(got, "pairgate.yaml")
			if err != nil {
				t.Fatal(err)
			}
			if !c.Owner.IsOwner(tt.ch, tt.sender) {
				t.Errorf("%s %s is not an owner after AddOwner: %+v", tt.ch, tt.sender, c.Owner)
			}
		})
	}
}

func TestRemoveOwner(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"flow, the last of two", `owner: {senders: {telegram: ["1", "42"]}}`, `owner: {senders: {telegram: ["1"]}}`},
		{"flow, the first of two", `owner: {senders: {telegram: ["42", "1"]}}`, `owner: {senders: {telegram: ["1"]}}`},
		{"flow, every spelling", `owner: {senders: {telegram: ["tg:42", "1", "42", "user:42"]}}`, `owner: {senders: {telegram: ["1"]}}`},
		{"flow, the only one: the list goes, {} stays", `owner: {senders: {telegram: ["42"]}}`, `owner: {senders: {}}`},
		{"flow, the list after another", `owner: {senders: {whatsapp: ["+15551234567"], telegram: ["42"]}}`,
			`owner: {senders: {whatsapp: ["+15551234567"]}}`},
		{"flow, the list before another", `owner: {senders: {telegram: ["42"], whatsapp: ["+15551234567"]}}`,
			`owner: {senders: {whatsapp: ["+15551234567"]}}`},
		{"flow list over lines", "owner:\n  senders:\n    telegram: [\n      \"1\",\n      \"42\"\n    ]\n",
			"owner:\n  senders:\n    telegram: [\n      \"1\"\n    ]\n"},
		{"flow list with a final comma", "owner:\n  senders:\n    telegram: [\"1\", \"42\",]\n", "owner:\n  senders:\n    telegram: [\"1\"]\n"},
		{"block, with its line comment", "owner:\n  senders:\n    telegram:\n      - \"1\"\n      # boss\n      - tg:42 # me\n      - \"3\"\n",
			"owner:\n  senders:\n    telegram:\n      - \"1\"\n      # boss\n      - \"3\"\n"},
		{"block, the only one: the empty mappings go too", "pairing:\n  policy: open\nowner:\n  senders:\n    telegram:\n      - \"42\"\n# end\n",
			"pairing:\n  policy: open\n# end\n"},
		{"block, the list goes, the other channel stays", "owner:\n  senders:\n    telegram:\n      - \"42\"\n    discord: [\"80351110224678912\"]\n",
			"owner:\n  senders:\n    discord: [\"80351110224678912\"]\n"},
		{"block, senders goes, the notice chat stays", "owner:\n  senders:\n    telegram: [\"42\"]\n  channel: telegram\n  sender: \"7\"\n",
			"owner:\n  channel: telegram\n  sender: \"7\"\n"},
		{"the example, after AddOwner", strings.Replace(exampleOwner, "senders: {}", `senders: {telegram: ["42"]}`, 1), exampleOwner},
		{"CRLF line breaks", "owner:\r\n  senders:\r\n    telegram:\r\n    - \"1\"\r\n    - \"42\"\r\n", "owner:\r\n  senders:\r\n    telegram:\r\n    - \"1\"\r\n"},
		{"not listed: unchanged", "owner:\n  senders:\n    telegram: [\"1\"] # only\n", "owner:\n  senders:\n    telegram: [\"1\"] # only\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := RemoveOwner([]byte(tt.in), "pairgate.yaml", "telegram", "42")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, string(got)); diff != "" {
				t.Errorf("RemoveOwner(%q) (-want +got):\n%s", tt.in, diff)
			}
			c, err := Parse(got, "pairgate.yaml")
			if err != nil {
				t.Fatal(err)
			}
			if c.Owner.IsOwner("telegram", "42") {
				t.Errorf("telegram 42 is still an owner after RemoveOwner: %+v", c.Owner)
			}
		})
	}
}

// Removing what AddOwner added gives the file back, byte for byte.
func TestAddThenRemoveOwner(t *testing.T) {
	for _, in := range []string{"", exampleOwner, "pairing:\n  policy: open\n", `owner: {senders: {telegram: ["1"]}}`,
		"owner:\n  senders:\n    telegram:\n      - \"1\"\n", "owner:\n  channel: telegram\n  sender: \"7\"\n"} {
		added, err := AddOwner([]byte(in), "pairgate.yaml", "telegram", "42")
		if err != nil {
			t.Fatal(err)
		}
		removed, err := RemoveOwner(added, "pairgate.yaml", "telegram", "42")
		if err != nil {
			t.Fatal(err)
		}
		if string(removed) != in {
			t.Errorf("add then remove of %q:\n%s\n(-want +got):\n%s", in, added, cmp.Diff(in, string(removed)))
		}
	}
}

// What cannot be edited safely in place is refused, the file left alone.
func TestOwnerEditRefused(t *testing.T) {
	alias := "pairing:\n  channels:\n    telegram:\n      allow_from: &boss [\"42\"]\nowner:\n  senders:\n    telegram: *boss\n"
	tests := []struct {
		name, in string
		remove   bool
		want     string
	}{
		{"add to an alias", alias, false, "edit the file by hand"},
		{"remove from an alias", alias, true, "edit the file by hand"},
		{"an anchor others may use", "owner:\n  senders:\n    telegram: &t [\"1\"]\n", false, "owner.senders.telegram"},
		{"a tag", "owner: !!map {senders: {telegram: [\"1\"]}}\n", false, "cannot edit owner.senders.telegram in place"},
		{"a merge key", "owner:\n  <<: {senders: {telegram: [\"42\"]}}\n", true, "edit the file by hand"},
		{"a file that does not load", "owner:\n  sendrs: {}\n", false, `unknown key "sendrs"`},
		// The check after the edit catches what the splice gets wrong:
		// here the new item lands in the comment.
		{"a comment inside a flow list", "owner:\n  senders:\n    telegram: [\"1\", # c\n    ]\n", false, "would change more than that list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			edit := AddOwner
			if tt.remove {
				edit = RemoveOwner
			}
			out, err := edit([]byte(tt.in), "pairgate.yaml", "telegram", "43")
			if tt.remove {
				out, err = edit([]byte(tt.in), "pairgate.yaml", "telegram", "42")
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one saying %q; out:\n%s", err, tt.want, out)
			}
		})
	}
	if _, err := AddOwner(nil, "pairgate.yaml", "irc", "42"); err == nil || !strings.Contains(err.Error(), `unknown channel "irc"`) {
		t.Errorf("AddOwner on channel irc: %v", err)
	}
	_, err := AddOwner([]byte("owner:\n  sendrs: {}\n"), "pairgate.yaml", "telegram", "42")
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("a file that does not load: %v, want ErrInvalid", err)
	}
}
