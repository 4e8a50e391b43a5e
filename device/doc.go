// Package device is device pairing: setup codes and their URLs, setup
// tokens, and the /pair WebSocket protocol. What operators see of it
// (setup codes, pending requests, devices) are the types of package api.
package device
