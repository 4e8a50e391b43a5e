package api

import "time"

// SetupCodeRequest asks for a setup code: the body of POST /v1/setup-codes.
type SetupCodeRequest struct {
	Role  string `json:"role,omitempty"`  // node (the default) or operator
	Label string `json:"label,omitempty"` // a note kept with the code and shown beside the device's request
	TTL   string `json:"ttl,omitempty"`   // a Go duration such as "10m"; default 10m, at most 1h
}

// SetupCode is an issued setup code: the answer of POST /v1/setup-codes and
// of `pairgate setup-code --json`.
type SetupCode struct {
	SetupCode string    `json:"setup_code"`
	URL       string    `json:"url"`
	URLSource string    `json:"url_source"` // where the URL came from: flag, config, env or tunnel_file
	ExpiresAt time.Time `json:"expires_at"`
}

// DeviceRequest is a pending device request as operators see it.
type DeviceRequest struct {
	RequestID string    `json:"request_id"`
	DeviceID  string    `json:"device_id"`
	Name      string    `json:"name"`
	Platform  string    `json:"platform"`
	Role      string    `json:"role"`
	Label     string    `json:"label"` // the setup code's
	CheckCode string    `json:"check_code"`
	Remote    string    `json:"remote"` // the address the device connected from
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Device is a paired device as operators see it.
type Device struct {
	DeviceID   string     `json:"device_id"`
	Name       string     `json:"name"`
	Platform   string     `json:"platform"`
	Role       string     `json:"role"`
	Scopes     []string   `json:"scopes"`
	Label      string     `json:"label"` // the setup code's it paired with
	PairedAt   time.Time  `json:"paired_at"`
	LastSeenAt time.Time  `json:"last_seen_at"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
}

// DeviceList is the answer of GET /v1/devices and of `pairgate devices list
// --json`: pending requests (with their check codes) and devices.
type DeviceList struct {
	Requests []DeviceRequest `json:"requests"`
	Devices  []Device        `json:"devices"`
}

// DeviceDecision is the answer of POST /v1/devices/requests/{id}/approve
// ({"approved":…}) and …/reject ({"rejected":…}), and of `pairgate devices
// approve|reject --json`: exactly one of the two is set.
type DeviceDecision struct {
	Approved *DeviceRequest `json:"approved,omitempty"`
	Rejected *DeviceRequest `json:"rejected,omitempty"`
}

// DeviceRevokeResponse is the answer of POST /v1/devices/{id}/revoke and of
// `pairgate devices revoke --json`.
type DeviceRevokeResponse struct {
	Revoked Device `json:"revoked"`
}

// DeviceToken is a device's new token, shown once: the answer of
// POST /v1/devices/{id}/rotate and of `pairgate devices rotate --json`.
type DeviceToken struct {
	DeviceID    string `json:"device_id"`
	DeviceToken string `json:"device_token"`
}
