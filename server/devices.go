package server

import (
	"net/http"
	"time"

	"github.com/pairgate/pairgate/api"
	"github.com/pairgate/pairgate/apitoken"
	"github.com/pairgate/pairgate/device"
)

var errNoDevices = errorf(http.StatusServiceUnavailable, api.CodeUnavailable, "device pairing is not enabled on this server")

// pair is GET /pair: the WebSocket of SPEC section 3. Devices authenticate
// inside the protocol, so the route takes no bearer token.
func (s *Server) pair(w http.ResponseWriter, r *http.Request, _ apitoken.Caller) error {
	if s.devices == nil {
		return errNoDevices
	}
	s.devices.ServeHTTP(w, r)
	return nil
}

func (s *Server) setupCode(w http.ResponseWriter, r *http.Request, c apitoken.Caller) error {
	if s.devices == nil {
		return errNoDevices
	}
	var in api.SetupCodeRequest
	if err := decode(w, r, &in); err != nil {
		return err
	}
	// Reading the field is ours; what lifetimes and roles are allowed is
	// the device package's rule (IssueSetupCode refuses the rest).
	var ttl time.Duration
	if in.TTL != "" {
		var err error
		if ttl, err = time.ParseDuration(in.TTL); err != nil || ttl <= 0 {
			return errorf(http.StatusBadRequest, api.CodeInvalidInput, `field "ttl": want a duration such as "10m", at most 1h, got %q`, in.TTL)
		}
	}
	setup, err := s.devices.IssueSetupCode(r.Context(), device.SetupParams{Role: in.Role, Label: in.Label, TTL: ttl}, s.actor(r, c))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, setup)
	return nil
}

func (s *Server) listDevices(w http.ResponseWriter, r *http.Request, _ apitoken.Caller) error {
	if s.devices == nil {
		return errNoDevices
	}
	if _, err := query(r); err != nil {
		return err
	}
	l, err := s.devices.List(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, l)
	return nil
}

func (s *Server) decideDevice(approve bool) func(http.ResponseWriter, *http.Request, apitoken.Caller) error {
	return func(w http.ResponseWriter, r *http.Request, c apitoken.Caller) error {
		if s.devices == nil {
			return errNoDevices
		}
		v, err := s.devices.Decide(r.Context(), r.PathValue("id"), approve, s.actor(r, c))
		if err != nil {
			return err
		}
		out := api.DeviceDecision{Rejected: &v}
		if approve {
			out = api.DeviceDecision{Approved: &v}
		}
		writeJSON(w, http.StatusOK, out)
		return nil
	}
}

func (s *Server) revokeDevice(w http.ResponseWriter, r *http.Request, c apitoken.Caller) error {
	if s.devices == nil {
		return errNoDevices
	}
	d, err := s.devices.Revoke(r.Context(), r.PathValue("id"), s.actor(r, c))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, api.DeviceRevokeResponse{Revoked: d})
	return nil
}

func (s *Server) rotateDevice(w http.ResponseWriter, r *http.Request, c apitoken.Caller) error {
	if s.devices == nil {
		return errNoDevices
	}
	rot, err := s.devices.Rotate(r.Context(), r.PathValue("id"), s.actor(r, c))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rot)
	return nil
}
