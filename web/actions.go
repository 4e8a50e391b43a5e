package web

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/pairgate/pairgate/api"
	"github.com/pairgate/pairgate/device"
	"github.com/pairgate/pairgate/pairing"
	"github.com/pairgate/pairgate/qr"
	"github.com/pairgate/pairgate/server"
	"github.com/pairgate/pairgate/store"
)

// inputError is a form the page itself should not have sent (a damaged or
// hand-made request): shown as it is, with a 400.
type inputError struct{ msg string }

func (e *inputError) Error() string { return e.msg }

func badInput(msg string) error { return &inputError{msg} }

// actionError answers an action that failed. What the domain refused (not
// found, already approved, allowed by the config, invalid input) is told
// the operator in the domain's words, which never hold a code or a token;
// anything else is h.fail's.
func (h *Handler) actionError(w http.ResponseWriter, r *http.Request, s session, err error) {
	var in *inputError
	status := 0
	switch code := server.ErrorCode(err); {
	case errors.As(err, &in):
		status = http.StatusBadRequest
	case code == api.CodeNotFound:
		status = http.StatusNotFound
	case code == api.CodeInvalidInput, code == api.CodeBadRequest:
		status = http.StatusBadRequest
	case code == api.CodeLockedOut:
		status = http.StatusTooManyRequests
	case code == api.CodeAlreadyApproved, code == api.CodeAllowedByConfig, code == api.CodeAmbiguous, code == api.CodeNotConfigured:
		status = http.StatusConflict
	default:
		h.fail(w, r, err)
		return
	}
	p := signedPage(s, "Not done", "")
	p.Error = err.Error()
	h.render(w, r, status, "error", p)
}

// backTo is where an action returns: the view its form was on (a fixed
// set, so the form cannot send the browser elsewhere), with a notice.
func backTo(w http.ResponseWriter, r *http.Request, done string) {
	back := r.PostFormValue("back")
	if !slices.Contains([]string{"/", "/allowlist", "/devices"}, back) {
		back = "/"
	}
	http.Redirect(w, r, back+"?done="+url.QueryEscape(done), http.StatusSeeOther)
}

func (h *Handler) approve(w http.ResponseWriter, r *http.Request, s session) error {
	t, err := formTarget(r)
	if err != nil {
		return err
	}
	notify := r.PostFormValue("notify") == "on"
	a, err := h.pairing.Approve(r.Context(), t, notify, s.actor)
	if errors.Is(err, store.ErrAlreadyApproved) {
		backTo(w, r, "already")
		return nil
	}
	if err != nil {
		return err
	}
	switch {
	case a.Already:
		backTo(w, r, "already")
	case notify:
		backTo(w, r, "approved-notify")
	default:
		backTo(w, r, "approved")
	}
	return nil
}

func (h *Handler) reject(w http.ResponseWriter, r *http.Request, s session) error {
	t, err := formTarget(r)
	if err != nil {
		return err
	}
	if _, err := h.pairing.Reject(r.Context(), t, s.actor); err != nil {
		return err
	}
	backTo(w, r, "rejected")
	return nil
}

// formTarget is the request an approve or reject form names: by request
// id, which the page has; the page never sees a code.
func formTarget(r *http.Request) (pairing.Target, error) {
	id := r.PostFormValue("request_id")
	if !strings.HasPrefix(id, pairing.RequestIDPrefix) {
		return pairing.Target{}, badInput("the form names no request: reload the page and try again")
	}
	return pairing.Target{Channel: r.PostFormValue("channel"), Account: r.PostFormValue("account"), CodeOrID: id}, nil
}

func (h *Handler) unlock(w http.ResponseWriter, r *http.Request, s session) error {
	if _, err := h.pairing.Unlock(r.Context(), r.PostFormValue("channel"), r.PostFormValue("account"), s.actor); err != nil {
		return err
	}
	backTo(w, r, "unlocked")
	return nil
}

func (h *Handler) allow(w http.ResponseWriter, r *http.Request, s session) error {
	sender := strings.TrimSpace(r.PostFormValue("sender"))
	if sender == "" {
		return badInput("type the sender's id (for Telegram, the numeric user id) to add them")
	}
	res, err := h.pairing.Allow(r.Context(), r.PostFormValue("channel"), strings.TrimSpace(r.PostFormValue("account")), []string{sender}, store.ViaManual, s.actor)
	if err != nil {
		return err
	}
	if len(res) == 1 && !res[0].Changed {
		backTo(w, r, "already-allowed")
		return nil
	}
	backTo(w, r, "allowed")
	return nil
}

func (h *Handler) revoke(w http.ResponseWriter, r *http.Request, s session) error {
	ch, acct, sender := r.PostFormValue("channel"), r.PostFormValue("account"), r.PostFormValue("sender")
	if _, err := h.pairing.Revoke(r.Context(), ch, acct, sender, s.actor); err != nil {
		return err
	}
	if keys, err := h.pairing.AllowedByConfig(ch, acct, sender); err == nil && len(keys) > 0 {
		backTo(w, r, "revoked-config")
		return nil
	}
	backTo(w, r, "revoked")
	return nil
}

var errNoDevices = badInput("device pairing is not enabled on this server")

// setupCode issues a setup code and shows it once, as a QR image and as
// text, above the device requests, which stay live: the operator sees the
// device that presents it appear, with its check code.
func (h *Handler) setupCode(w http.ResponseWriter, r *http.Request, s session) error {
	if h.devices == nil {
		return errNoDevices
	}
	code, err := h.devices.IssueSetupCode(r.Context(), device.SetupParams{Role: r.PostFormValue("role"), Label: strings.TrimSpace(r.PostFormValue("label"))}, s.actor)
	if err != nil {
		return err
	}
	png, err := qr.PNG(code.SetupCode, 6)
	if err != nil {
		return err
	}
	p := signedPage(s, "Pair a device", "devices")
	p.Refresh = "/devices"
	p.Setup = &setupView{Code: code.SetupCode, URL: code.URL, ExpiresAt: code.ExpiresAt, QR: qrDataURI(png)}
	if err := h.fillDevices(r, &p); err != nil {
		return err
	}
	h.render(w, r, http.StatusOK, "pair", p)
	return nil
}

func (h *Handler) decideDevice(approve bool) sessionHandler {
	return func(w http.ResponseWriter, r *http.Request, s session) error {
		if h.devices == nil {
			return errNoDevices
		}
		_, err := h.devices.Decide(r.Context(), r.PostFormValue("request_id"), approve, s.actor)
		if errors.Is(err, store.ErrNotFound) {
			backTo(w, r, "device-not-found")
			return nil
		}
		if err != nil {
			return err
		}
		if approve {
			backTo(w, r, "device-approved")
		} else {
			backTo(w, r, "device-rejected")
		}
		return nil
	}
}

// rotateDevice replaces a device's token and shows the new one, once.
func (h *Handler) rotateDevice(w http.ResponseWriter, r *http.Request, s session) error {
	if h.devices == nil {
		return errNoDevices
	}
	id := r.PostFormValue("device_id")
	tok, err := h.devices.Rotate(r.Context(), id, s.actor)
	if err != nil {
		return err
	}
	p := signedPage(s, "New device token", "devices")
	p.NewToken = &tok
	h.render(w, r, http.StatusOK, "rotated", p)
	return nil
}

func (h *Handler) revokeDevice(w http.ResponseWriter, r *http.Request, s session) error {
	if h.devices == nil {
		return errNoDevices
	}
	if _, err := h.devices.Revoke(r.Context(), r.PostFormValue("device_id"), s.actor); err != nil {
		return err
	}
	backTo(w, r, "device-revoked")
	return nil
}
