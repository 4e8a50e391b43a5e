package webhook

import (
	"time"

	"github.com/pairgate/pairgate/notice"
	"github.com/pairgate/pairgate/store"
)

// Notice is the JSON body of a webhook POST: one new pending request (a
// sender's DM request or a device's), made from its change in the log. It
// never carries a DM code or a setup token: the change holds neither.
type Notice struct {
	// Seq is the change's sequence number: the notice's identity, also
	// sent as the Idempotency-Key header.
	Seq int64 `json:"seq"`
	// Kind is pairing.requested or device.requested.
	Kind store.ChangeKind `json:"kind"`
	// At is when the request was made.
	At time.Time `json:"at"`
	// Channel, Account and Sender name a DM request's sender (absent for
	// a device).
	Channel string `json:"channel,omitempty"`
	Account string `json:"account,omitempty"`
	Sender  string `json:"sender,omitempty"`
	// Name is the sender's display name, or what the device calls itself;
	// it may be empty. It came from outside: escape it before a page or a
	// terminal shows it.
	Name      string `json:"name"`
	RequestID string `json:"request_id"`
	// ExpiresAt is when the request expires unless approved.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// Text is the notice as the owner's chat gets it (package notice).
	Text string `json:"text"`
	// Device is the device asking to pair (device.requested only).
	Device *Device `json:"device,omitempty"`
}

// Device is the device of a device.requested notice.
type Device struct {
	DeviceID string `json:"device_id"`
	Name     string `json:"name"`
	Platform string `json:"platform"`
	Role     string `json:"role"`
	Label    string `json:"label"`
	// Remote is the address the device connected from ("" if unknown).
	Remote string `json:"remote"`
	// CheckCode is what the device shows: approve only if they match. It
	// is no secret: it proves nothing without the device's key.
	CheckCode string `json:"check_code"`
}

// NoticeOf returns the notice a change calls for: one for
// pairing.requested and device.requested (as notice.FromChange), none (ok
// false) for any other kind.
func NoticeOf(c store.Change) (n Notice, ok bool) {
	text, ok := notice.FromChange(c)
	if !ok {
		return Notice{}, false
	}
	n = Notice{Seq: c.Seq, Kind: c.Kind, At: c.At.UTC(), Name: c.Data.Name, RequestID: c.RequestID, Text: text}
	if c.Data.Expires != 0 {
		exp := time.UnixMilli(c.Data.Expires).UTC()
		n.ExpiresAt = &exp
	}
	switch c.Kind {
	case store.KindRequested:
		n.Channel, n.Account, n.Sender = c.Scope.Channel, c.Scope.Account, c.Sender
	case store.KindDeviceRequested:
		n.Device = &Device{DeviceID: c.DeviceID, Name: c.Data.Name, Platform: c.Data.Platform, Role: c.Data.Role,
			Label: c.Data.Label, Remote: c.Data.Remote, CheckCode: c.Data.CheckCode}
	}
	return n, true
}
