package web

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pairgate/pairgate/api"
	"github.com/pairgate/pairgate/channel"
	"github.com/pairgate/pairgate/internal/termtext"
	"github.com/pairgate/pairgate/pairing"
	"github.com/pairgate/pairgate/server"
	"github.com/pairgate/pairgate/store"
)

// page is what every template gets. One struct for all views keeps the
// layout simple; each view fills its part.
type page struct {
	Title  string
	Nav    string // the view's tab: requests, allowlist, devices, audit
	Signed bool
	Actor  string
	Error  string
	Notice string
	// Refresh is the address the script fetches when the change log moves,
	// to replace the page's live sections; "" for pages that are not live.
	Refresh   string
	Now       time.Time
	LinkToken string

	Groups         []requestGroup
	DevicesOn      bool
	DeviceRequests []api.DeviceRequest
	Devices        []api.Device
	Allowed        []api.AllowedSender
	AllowedTotal   int // entries in the list
	AllowedMatches int // entries the search matched, of which Allowed is the first maxAllowedShown
	Query          string
	ShowRevoked    bool
	Channels       []string
	Changes        []api.Change
	Audit          auditFilter
	Kinds          []string
	Older          string
	Setup          *setupView
	NewToken       *api.DeviceToken
	RevokedDevices int
	DefaultAccount string
}

// requestGroup is the pending requests of one channel and account.
type requestGroup struct {
	Channel, Account string
	Requests         []api.PendingRequest
	Lock             *api.Lockout
}

type auditFilter struct {
	Kind, Channel, Actor string
}

type setupView struct {
	Code      string
	URL       string
	ExpiresAt time.Time
	QR        template.URL // a data: URI of the PNG
}

// notices are the messages a view shows after an action redirected to it
// (?done=KEY): fixed texts, so a crafted link cannot make the page say
// something of its choosing.
var notices = map[string]string{
	"approved":         "Approved: the sender is on the allowlist.",
	"approved-notify":  "Approved: the sender is on the allowlist and will be told.",
	"already":          "That request was approved already; nothing changed.",
	"rejected":         "Rejected.",
	"unlocked":         "Unlocked: approvals work again.",
	"allowed":          "Added to the allowlist.",
	"already-allowed":  "That sender was on the allowlist already.",
	"revoked":          "Revoked: the sender is refused from now on.",
	"revoked-config":   "Revoked in the store, but allow_from in the config still admits this sender: remove it there too.",
	"device-approved":  "Device approved: it receives its token now.",
	"device-rejected":  "Device request rejected.",
	"device-revoked":   "Device revoked: its token no longer works.",
	"device-not-found": "That device request is gone (decided elsewhere, or expired).",
}

func parsePages() (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		"ago":   ago,
		"left":  left,
		"utc":   func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"clean": clean,
		"checkDigits": func(code string) []string {
			// Shown in groups of three, as the companion prints it.
			var out []string
			for len(code) > 3 {
				out, code = append(out, code[:3]), code[3:]
			}
			return append(out, code)
		},
		"deref": func(t *time.Time) time.Time {
			if t == nil {
				return time.Time{}
			}
			return *t
		},
	}
	pages := map[string]*template.Template{}
	for _, name := range []string{"signin", "link", "error", "requests", "allowlist", "devices", "pair", "rotated", "audit"} {
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/parts.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("web: template %s: %w", name, err)
		}
		pages[name] = t
	}
	return pages, nil
}

// clean makes text that came from outside (a sender's or a device's name)
// fit to show: html/template escapes markup; this also drops control and
// bidi characters that would reorder or hide what is around them.
func clean(s string) string { return termtext.Clean(s, 1<<10) }

func ago(now, t time.Time) string {
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h ago", int(d.Hours()))
	}
	return fmt.Sprintf("%d days ago", int(d.Hours()/24))
}

func left(now, t time.Time) string {
	d := t.Sub(now)
	switch {
	case d <= 0:
		return "expired"
	case d < time.Minute:
		return fmt.Sprintf("%d s left", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min left", int(d.Minutes()))
	}
	return fmt.Sprintf("%d h %d min left", int(d.Hours()), int(d.Minutes())%60)
}

// render writes a page. A template that fails half-way must not send half
// a page with a 200, so it renders into a buffer first.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	if p.Now.IsZero() {
		p.Now = h.now()
	}
	if p.Notice == "" {
		p.Notice = notices[r.URL.Query().Get("done")]
	}
	p.DevicesOn = h.devices != nil
	var buf bytes.Buffer
	if err := h.pages[name].ExecuteTemplate(&buf, "layout", p); err != nil {
		h.log.Error("web: render", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

func signedPage(s session, title, nav string) page {
	return page{Title: title, Nav: nav, Signed: true, Actor: s.actor.Name, DefaultAccount: channel.DefaultAccount}
}

func (h *Handler) requestsView(w http.ResponseWriter, r *http.Request, s session) error {
	p := signedPage(s, "Requests", "requests")
	p.Refresh = "/"
	if err := h.fillRequests(r, &p); err != nil {
		return err
	}
	if err := h.fillDevices(r, &p); err != nil {
		return err
	}
	h.render(w, r, http.StatusOK, "requests", p)
	return nil
}

// fillRequests groups the pending DM requests by channel and account, with
// the scopes that are locked (a locked scope shows even with nothing
// pending, since that is where its unlock button is).
func (h *Handler) fillRequests(r *http.Request, p *page) error {
	pending, err := h.pairing.ListPending(r.Context(), pairing.Filter{})
	if err != nil {
		return err
	}
	locked, err := h.pairing.ListLocked(r.Context(), pairing.Filter{})
	if err != nil {
		return err
	}
	groups := map[[2]string]*requestGroup{}
	group := func(ch, acct string) *requestGroup {
		k := [2]string{ch, acct}
		if groups[k] == nil {
			groups[k] = &requestGroup{Channel: ch, Account: acct}
		}
		return groups[k]
	}
	for _, q := range pending {
		g := group(q.Channel, q.Account)
		g.Requests = append(g.Requests, q)
	}
	for i := range locked {
		group(locked[i].Channel, locked[i].Account).Lock = &locked[i]
	}
	for _, g := range groups {
		p.Groups = append(p.Groups, *g)
	}
	slices.SortFunc(p.Groups, func(a, b requestGroup) int {
		return cmp.Or(cmp.Compare(a.Channel, b.Channel), cmp.Compare(a.Account, b.Account))
	})
	return nil
}

func (h *Handler) fillDevices(r *http.Request, p *page) error {
	if h.devices == nil {
		return nil
	}
	l, err := h.devices.List(r.Context())
	if err != nil {
		return err
	}
	p.DeviceRequests = l.Requests
	for _, d := range l.Devices {
		if d.RevokedAt != nil {
			p.RevokedDevices++
			continue
		}
		p.Devices = append(p.Devices, d)
	}
	return nil
}

// maxAllowedShown bounds the allowlist view: with tens of thousands of
// senders the whole list would be megabytes of HTML, fetched again on
// every change while the view is open. A search narrows it.
const maxAllowedShown = 200

func (h *Handler) allowlistView(w http.ResponseWriter, r *http.Request, s session) error {
	p := signedPage(s, "Allowlist", "allowlist")
	q := r.URL.Query()
	p.Query, p.ShowRevoked = strings.TrimSpace(q.Get("q")), q.Get("revoked") == "1"
	p.Refresh = r.URL.RequestURI()
	list, err := h.pairing.ListAllowed(r.Context(), pairing.Filter{}, p.ShowRevoked)
	if err != nil {
		return err
	}
	p.AllowedTotal = len(list)
	needle := strings.ToLower(p.Query)
	for _, a := range list {
		if needle == "" || strings.Contains(strings.ToLower(a.Sender), needle) || strings.Contains(strings.ToLower(a.Name), needle) ||
			strings.Contains(a.Channel, needle) {
			if p.AllowedMatches++; len(p.Allowed) < maxAllowedShown {
				p.Allowed = append(p.Allowed, a)
			}
		}
	}
	p.Channels = channel.Names()
	h.render(w, r, http.StatusOK, "allowlist", p)
	return nil
}

func (h *Handler) devicesView(w http.ResponseWriter, r *http.Request, s session) error {
	p := signedPage(s, "Devices", "devices")
	p.Refresh = "/devices"
	if err := h.fillDevices(r, &p); err != nil {
		return err
	}
	h.render(w, r, http.StatusOK, "devices", p)
	return nil
}

// auditPage is how many changes one page of the audit trail shows.
const auditPage = 50

func (h *Handler) auditView(w http.ResponseWriter, r *http.Request, s session) error {
	p := signedPage(s, "Audit trail", "audit")
	q := r.URL.Query()
	p.Audit = auditFilter{Kind: q.Get("kind"), Channel: strings.TrimSpace(q.Get("channel")), Actor: strings.TrimSpace(q.Get("actor"))}
	for _, k := range store.ChangeKinds() {
		p.Kinds = append(p.Kinds, string(k))
	}
	if p.Audit.Kind != "" && !slices.Contains(p.Kinds, p.Audit.Kind) {
		return badInput(fmt.Sprintf("there is no kind of change %q: pick one from the list", p.Audit.Kind))
	}
	var before int64
	if v := q.Get("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return badInput("the page address is damaged: go back to the audit trail's first page")
		}
		before = n
	}
	if before == 0 {
		p.Refresh = r.URL.RequestURI() // the newest page is live; older pages stand still
	}
	changes, err := h.st.RecentChanges(r.Context(), store.ChangeQuery{Limit: auditPage, Before: before,
		Kind: store.ChangeKind(p.Audit.Kind), Channel: p.Audit.Channel, Actor: p.Audit.Actor})
	if err != nil {
		return err
	}
	for _, c := range changes {
		p.Changes = append(p.Changes, server.ChangeView(c))
	}
	if len(changes) == auditPage {
		older := q
		older.Set("before", strconv.FormatInt(changes[len(changes)-1].Seq, 10))
		p.Older = "/audit?" + older.Encode()
	}
	h.render(w, r, http.StatusOK, "audit", p)
	return nil
}

// qrDataURI is the PNG of text as a data: URI for an <img>: the page needs
// no second request for it, and the CSP allows data: images only.
func qrDataURI(png []byte) template.URL {
	return template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(png))
}

// Back is where the device forms on this view return to.
func (p page) Back() string {
	if p.Nav == "requests" {
		return "/"
	}
	return "/devices"
}
