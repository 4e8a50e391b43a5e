// Package device is device pairing: setup codes and their URLs, setup tokens, and the /pair WebSocket protocol.
package device
