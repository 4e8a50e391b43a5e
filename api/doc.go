// Package api is the JSON of pairgate's HTTP API: every request and
// response body, the error object {"error":{"code","message"}} and its
// codes. The daemon (package server) encodes these types, the Go client
// (package client) decodes them, and the CLI's --json output uses them
// where it shows the same objects (SPEC section 4), so each shape is
// written once.
//
// The domain packages return these types for what operators and gateways
// see (pairing's Decision and listings, device's listings, the API
// tokens), so a gateway that moves from embedding the gate to calling the
// daemon keeps its types.
//
// The package imports only the standard library: a program that talks to
// the daemon pulls in nothing else of pairgate's.
package api
