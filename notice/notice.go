// Package notice writes what the owner is told of a new pending request:
// the one text that goes to the owner's chat, the webhook and anywhere else
// a notice is read. A notice names the request and how to approve it; it
// never carries a DM code or a setup token, only the request id, which
// approves nothing without the owner's own command or CLI.
package notice

import (
	"fmt"
	"strings"

	"github.com/pairgate/pairgate/channel"
	"github.com/pairgate/pairgate/config"
	"github.com/pairgate/pairgate/store"
)

// DMRequest is a sender waiting for the owner's approval.
type DMRequest struct {
	Channel, Account, Sender string
	Name                     string // the sender's display name; may be empty
	RequestID                string
}

// Text is the notice of a DM request, for example:
//
//	Alice (telegram 123456789) asks to talk to your assistant. Approve: /approve req_… or pairgate pairing approve telegram req_…
func (r DMRequest) Text() string {
	who := r.Channel + " " + r.Sender
	flag := ""
	if r.Account != "" && r.Account != channel.DefaultAccount {
		who += ", account " + r.Account
		flag = " --account " + r.Account
	}
	if r.Name != "" {
		who = r.Name + " (" + who + ")"
	}
	return fmt.Sprintf("%s asks to talk to your assistant. Approve: /approve %s or pairgate pairing approve %s %s%s",
		who, r.RequestID, r.Channel, r.RequestID, flag)
}

// DeviceRequest is a device waiting for the owner's approval.
type DeviceRequest struct {
	RequestID      string
	Name, Platform string
	Role, Label    string
	Remote         string // the address it connected from; may be empty
	CheckCode      string
}

// Text is the notice of a device request, for example:
//
//	A device asks to pair: Pixel 8 (android), role node, from 192.0.2.7. Check code 482913: approve only if the device shows the same. Approve: /approve-device dreq_… or pairgate devices approve dreq_…
func (r DeviceRequest) Text() string {
	var b strings.Builder
	b.WriteString("A device asks to pair: ")
	b.WriteString(r.Name)
	if r.Platform != "" {
		b.WriteString(" (" + r.Platform + ")")
	}
	b.WriteString(", role " + r.Role)
	if r.Label != "" {
		b.WriteString(", label " + r.Label)
	}
	if r.Remote != "" {
		b.WriteString(", from " + r.Remote)
	}
	fmt.Fprintf(&b, ". Check code %s: approve only if the device shows the same. Approve: /approve-device %s or pairgate devices approve %s",
		r.CheckCode, r.RequestID, r.RequestID)
	return b.String()
}

// FromChange returns the notice a change of the log calls for: one for
// pairing.requested and device.requested, none (ok false) for any other
// kind.
func FromChange(c store.Change) (text string, ok bool) {
	switch c.Kind {
	case store.KindRequested:
		return DMRequest{Channel: c.Scope.Channel, Account: c.Scope.Account, Sender: c.Sender,
			Name: c.Data.Name, RequestID: c.RequestID}.Text(), true
	case store.KindDeviceRequested:
		return DeviceRequest{RequestID: c.RequestID, Name: c.Data.Name, Platform: c.Data.Platform, Role: c.Data.Role,
			Label: c.Data.Label, Remote: c.Data.Remote, CheckCode: c.Data.CheckCode}.Text(), true
	}
	return "", false
}

// Messages are the outbound messages that tell the owner text: one to
// each chat of owner.NoticeChats (none without owners). Of a DM request,
// pass its scope: an owner listed on that channel (owner.senders) is told
// through the account the request came in on, where the bot can reach
// them; everyone else through their chat's own account. Of a device
// request, pass the zero Scope.
func Messages(owner config.Owner, scope store.Scope, text string) []store.OutboundMessage {
	var out []store.OutboundMessage
	for _, c := range owner.NoticeChats() {
		account := c.Account
		if owner.Channel == "" && c.Channel == scope.Channel && scope.Account != "" {
			account = scope.Account
		}
		out = append(out, store.OutboundMessage{Channel: c.Channel, Account: account, To: c.Sender, Kind: store.OutboundText,
			Text: text, Cause: store.CauseNotice})
	}
	return out
}
