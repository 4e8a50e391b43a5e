// Package web is the operator's page that `pairgate serve` serves at /:
// sign in with the admin token (or an admin API token, or a single-use
// link from `pairgate web-link`), then see and decide pending DM and device
// requests, the allowlist, paired devices and the audit trail, live.
//
// Pages are rendered on the server with html/template and work without
// JavaScript (plain forms, post then redirect); a small script only keeps
// them current from the change log (server-sent events at /events). Every
// action calls the same domain services as the HTTP API, so a rule lives in
// one place: this package authenticates, reads the form, calls and renders.
package web

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/pairgate/pairgate/apitoken"
	"github.com/pairgate/pairgate/device"
	"github.com/pairgate/pairgate/pairing"
	"github.com/pairgate/pairgate/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Session lifetimes.
const (
	// SessionTTL is how long a browser stays signed in.
	SessionTTL = 12 * time.Hour
	// LinkTTL is how long a sign-in link from `pairgate web-link` works.
	LinkTTL = 5 * time.Minute
)

// Sign-in attempts per remote address: a burst of signInBurst, then one
// every signInEvery. A token is 256 random bits, so this is about noise in
// the log and load, not about guessing.
const (
	signInEvery = 6 * time.Second
	signInBurst = 5
	maxLimiters = 4096
)

// cookieName is the session cookie. Over TLS (directly or behind a proxy
// that says so) it takes the __Host- prefix, which the browser accepts only
// with Secure, Path=/ and no Domain, so no other site or subdomain can set
// or shadow it.
const (
	cookieName       = "pairgate_session"
	secureCookieName = "__Host-pairgate_session"
)

// Options configure a Handler.
type Options struct {
	Pairing *pairing.Service
	// Devices serves the device views; nil hides them.
	Devices *device.Service
	Store   store.Store
	// Tokens checks the token a browser signs in with, and on every request
	// that it is still valid.
	Tokens *apitoken.Authenticator
	Logger *slog.Logger     // nil means discard
	Now    func() time.Time // nil means time.Now
	// Drained, when set, ends the live stream (GET /events) once it is
	// done: the daemon's shutdown is not held up by an open page.
	Drained context.Context
}

// Handler serves the page. It is an http.Handler; mount it at /.
type Handler struct {
	pairing *pairing.Service
	devices *device.Service
	st      store.Store
	tokens  *apitoken.Authenticator
	log     *slog.Logger
	now     func() time.Time
	drained context.Context
	pages   map[string]*template.Template
	handler http.Handler

	mu       sync.Mutex
	limiters map[string]*rate.Limiter
}

// New makes a Handler.
func New(o Options) (*Handler, error) {
	if o.Pairing == nil || o.Store == nil || o.Tokens == nil {
		return nil, errors.New("web: Pairing, Store and Tokens are required")
	}
	h := &Handler{pairing: o.Pairing, devices: o.Devices, st: o.Store, tokens: o.Tokens, log: o.Logger, now: o.Now, drained: o.Drained,
		limiters: map[string]*rate.Limiter{}}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.now == nil {
		h.now = time.Now
	}
	var err error
	if h.pages, err = parsePages(); err != nil {
		return nil, err
	}
	h.handler = h.routes()
	return h, nil
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.handler.ServeHTTP(w, r) }

func (h *Handler) routes() http.Handler {
	m := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	files := http.FileServerFS(static)
	m.Handle("GET /static/", http.StripPrefix("/static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})))

	m.HandleFunc("GET /signin", h.signInPage)
	m.HandleFunc("POST /signin", h.signIn)
	m.HandleFunc("GET /signin/link", h.linkPage)
	m.HandleFunc("POST /signin/link", h.redeemLink)
	m.HandleFunc("POST /signout", h.signOut)

	m.Handle("GET /{$}", h.signedIn(h.requestsView))
	m.Handle("GET /allowlist", h.signedIn(h.allowlistView))
	m.Handle("GET /devices", h.signedIn(h.devicesView))
	m.Handle("GET /audit", h.signedIn(h.auditView))
	m.Handle("GET /events", h.signedIn(h.events))

	m.Handle("POST /do/approve", h.signedIn(h.approve))
	m.Handle("POST /do/reject", h.signedIn(h.reject))
	m.Handle("POST /do/unlock", h.signedIn(h.unlock))
	m.Handle("POST /do/allow", h.signedIn(h.allow))
	m.Handle("POST /do/revoke", h.signedIn(h.revoke))
	m.Handle("POST /do/setup-code", h.signedIn(h.setupCode))
	m.Handle("POST /do/device/approve", h.signedIn(h.decideDevice(true)))
	m.Handle("POST /do/device/reject", h.signedIn(h.decideDevice(false)))
	m.Handle("POST /do/device/rotate", h.signedIn(h.rotateDevice))
	m.Handle("POST /do/device/revoke", h.signedIn(h.revokeDevice))
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.render(w, r, http.StatusNotFound, "error", page{Title: "Not found", Error: "There is no page at this address."})
	})

	// Every state-changing request must come from this origin: the
	// browser's Sec-Fetch-Site or Origin header says where a form was
	// posted from, and a cross-origin POST is refused before any handler
	// runs (SameSite=Strict on the cookie is the second lock).
	csrf := http.NewCrossOriginProtection()
	csrf.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.log.Warn("web: cross-origin request refused", "method", r.Method, "path", r.URL.Path, "origin", r.Header.Get("Origin"), "remote", r.RemoteAddr)
		h.render(w, r, http.StatusForbidden, "error", page{Title: "Refused", Error: "This request came from another site and was refused."})
	}))
	return securityHeaders(csrf.Handler(m))
}

// securityHeaders sets what every answer carries: a Content-Security-Policy
// that allows only this origin's script and stylesheet (no inline script or
// style, so injected markup cannot run), no framing, no MIME sniffing, and
// no Referer (a sign-in link's token must not leak to another site).
func securityHeaders(next http.Handler) http.Handler {
	const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
		"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", csp)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		next.ServeHTTP(w, r)
	})
}

// session is a signed-in browser, as a handler sees it.
type session struct {
	hash  []byte
	actor store.Actor
}

// sessionHandler is a handler for signed-in browsers.
type sessionHandler func(w http.ResponseWriter, r *http.Request, s session) error

// signedIn runs next for a browser with a valid session; others are sent
// to the sign-in page (or, for an action or the event stream, answered
// 401). The session is looked up in the store on every request, so signing
// out on one replica ends it on all, and the token it was made with is
// checked again, so revoking that token ends it too.
func (h *Handler) signedIn(next sessionHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := h.session(r)
		if err != nil {
			if !errors.Is(err, store.ErrNotFound) {
				h.fail(w, r, err)
				return
			}
			if r.Method == http.MethodGet && r.URL.Path != "/events" {
				http.Redirect(w, r, "/signin", http.StatusSeeOther)
				return
			}
			h.render(w, r, http.StatusUnauthorized, "error", page{Title: "Signed out", Error: "You are signed out. Sign in again."})
			return
		}
		if err := next(w, r, s); err != nil {
			h.actionError(w, r, s, err)
		}
	})
}

func (h *Handler) session(r *http.Request) (session, error) {
	var value string
	for _, name := range []string{secureCookieName, cookieName} {
		if c, err := r.Cookie(name); err == nil {
			value = c.Value
			break
		}
	}
	if value == "" {
		return session{}, store.ErrNotFound
	}
	sum := sha256.Sum256([]byte(value))
	ws, err := h.st.WebSession(r.Context(), sum[:], h.now())
	if err != nil {
		return session{}, err
	}
	name := "web:link"
	if ws.TokenHash != nil {
		if len(ws.TokenHash) != sha256.Size {
			return session{}, store.ErrNotFound
		}
		c, ok := h.tokens.AuthenticateHash(r.Context(), [32]byte(ws.TokenHash))
		if !ok || c.Scope != store.ScopeAdmin {
			return session{}, store.ErrNotFound
		}
		name = "web:" + c.Name
	}
	return session{hash: sum[:], actor: store.Actor{Name: name, Source: "web " + r.RemoteAddr}}, nil
}

// newSecret returns a random secret (256 bits, base64url) and its SHA-256.
func newSecret() (string, []byte) {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand)
	s := base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(s))
	return s, sum[:]
}

// NewLink makes a single-use sign-in link valid for LinkTTL: it stores the
// link's hash and returns the token to put in the URL (base + "/signin/link?t=" + token).
// `pairgate web-link` calls it on the store directly.
func NewLink(ctx context.Context, st store.Store, now time.Time, remote string) (token string, expires time.Time, err error) {
	token, sum := newSecret()
	now = now.Truncate(time.Millisecond)
	ws := store.WebSession{Hash: sum, Kind: store.WebSessionLink, CreatedAt: now, ExpiresAt: now.Add(LinkTTL), Remote: remote}
	if err := st.CreateWebSession(ctx, ws); err != nil {
		return "", time.Time{}, fmt.Errorf("web: store the sign-in link: %w", err)
	}
	return token, ws.ExpiresAt, nil
}

// LinkURL is the sign-in address for token under base (http(s)://host[:port]).
func LinkURL(base, token string) string {
	return strings.TrimRight(base, "/") + "/signin/link?t=" + token
}

// startSession stores a new browser session and sets its cookie.
func (h *Handler) startSession(w http.ResponseWriter, r *http.Request, tokenHash []byte, link []byte) error {
	value, sum := newSecret()
	now := h.now().Truncate(time.Millisecond)
	ws := store.WebSession{Hash: sum, Kind: store.WebSessionBrowser, TokenHash: tokenHash, CreatedAt: now, ExpiresAt: now.Add(SessionTTL), Remote: r.RemoteAddr}
	var err error
	if link != nil {
		err = h.st.RedeemWebLink(r.Context(), link, ws, now)
	} else {
		err = h.st.CreateWebSession(r.Context(), ws)
	}
	if err != nil {
		return err
	}
	http.SetCookie(w, h.cookie(r, value, SessionTTL))
	return nil
}

func (h *Handler) cookie(r *http.Request, value string, ttl time.Duration) *http.Cookie {
	c := &http.Cookie{Name: cookieName, Value: value, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: int(ttl.Seconds())}
	if ttl <= 0 {
		c.MaxAge = -1
	}
	if isTLS(r) {
		c.Name, c.Secure = secureCookieName, true
	}
	return c
}

// isTLS reports whether the browser reached us over TLS: directly, or
// through a proxy that terminates it and says so. A client that lies about
// it over plain HTTP only gets a Secure cookie its browser will not send.
func isTLS(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

// allowSignIn reports whether the remote address may try to sign in now.
func (h *Handler) allowSignIn(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	l, ok := h.limiters[host]
	if !ok {
		if len(h.limiters) >= maxLimiters {
			clear(h.limiters) // bounded memory; a flood from many addresses resets everyone's budget
		}
		l = rate.NewLimiter(rate.Every(signInEvery), signInBurst)
		h.limiters[host] = l
	}
	return l.AllowN(h.now(), 1)
}

func (h *Handler) signInPage(w http.ResponseWriter, r *http.Request) {
	if _, err := h.session(r); err == nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	h.render(w, r, http.StatusOK, "signin", page{Title: "Sign in"})
}

// wrongToken is the one answer to every token that does not sign in, so a
// wrong guess learns nothing about which part was wrong.
const wrongToken = "That token does not sign in here. Use the admin token (in $PAIRGATE_HOME/admin.token) or an admin API token."

func (h *Handler) signIn(w http.ResponseWriter, r *http.Request) {
	if !h.allowSignIn(r) {
		w.Header().Set("Retry-After", fmt.Sprint(int(signInEvery.Seconds())))
		h.render(w, r, http.StatusTooManyRequests, "signin", page{Title: "Sign in", Error: "Too many attempts from your address. Wait a few seconds and try again."})
		return
	}
	token := strings.TrimSpace(r.PostFormValue("token"))
	c, ok := h.tokens.Authenticate(r.Context(), token)
	if !ok || c.Scope != store.ScopeAdmin {
		h.log.Info("web: sign-in refused", "remote", r.RemoteAddr)
		h.render(w, r, http.StatusUnauthorized, "signin", page{Title: "Sign in", Error: wrongToken})
		return
	}
	if err := h.startSession(w, r, c.Hash[:], nil); err != nil {
		h.fail(w, r, err)
		return
	}
	h.log.Info("web: signed in", "as", c.Name, "remote", r.RemoteAddr)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// linkPage is what a sign-in link opens: a button, not a sign-in, since
// link previews and scanners GET whatever they see and must not use it up.
func (h *Handler) linkPage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	token := r.URL.Query().Get("t")
	if token == "" {
		h.render(w, r, http.StatusBadRequest, "error", page{Title: "Sign-in link", Error: "This link has no token. Run pairgate web-link again and open the whole link."})
		return
	}
	h.render(w, r, http.StatusOK, "link", page{Title: "Sign in", LinkToken: token})
}

func (h *Handler) redeemLink(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if !h.allowSignIn(r) {
		w.Header().Set("Retry-After", fmt.Sprint(int(signInEvery.Seconds())))
		h.render(w, r, http.StatusTooManyRequests, "error", page{Title: "Sign in", Error: "Too many attempts from your address. Wait a few seconds and try again."})
		return
	}
	sum := sha256.Sum256([]byte(r.PostFormValue("t")))
	err := h.startSession(w, r, nil, sum[:])
	if errors.Is(err, store.ErrNotFound) {
		h.log.Info("web: sign-in link refused", "remote", r.RemoteAddr)
		h.render(w, r, http.StatusUnauthorized, "error", page{Title: "Sign-in link",
			Error: "This sign-in link was used already, or it expired (links work once, for 5 minutes). Run pairgate web-link for a new one."})
		return
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.log.Info("web: signed in with a link", "remote", r.RemoteAddr)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (h *Handler) signOut(w http.ResponseWriter, r *http.Request) {
	if s, err := h.session(r); err == nil {
		if err := h.st.DeleteWebSession(r.Context(), s.hash); err != nil {
			h.fail(w, r, err)
			return
		}
	}
	http.SetCookie(w, h.cookie(r, "", 0))
	http.Redirect(w, r, "/signin", http.StatusSeeOther)
}

// fail answers an unexpected error: the store is down, or a bug. The page
// says so without internals; the log has the detail.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := http.StatusInternalServerError, "Something went wrong; the log has the details."
	if errors.Is(err, store.ErrUnavailable) {
		status, msg = http.StatusServiceUnavailable, "The store is unavailable right now. Try again in a moment."
	}
	h.log.Error("web: request failed", "path", r.URL.Path, "err", err)
	h.render(w, r, status, "error", page{Title: "Error", Error: msg})
}
