package device

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pairgate/pairgate/internal/termtext"
	"github.com/pairgate/pairgate/secret"
	"github.com/pairgate/pairgate/store"
)

// Protocol timings and limits (SPEC section 3).
const (
	RequestTTL  = 10 * time.Minute // pending device requests expire
	MaxSkew     = 2 * time.Minute  // signed_at must be this close to server time
	IdleTimeout = 30 * time.Second // a client that sends nothing is closed
	MaxFrame    = 16 << 10         // bytes per frame
)

// Options configure a Service.
type Options struct {
	Store  store.Store
	Secret secret.Secret
	// URL returns the public /pair URL devices connect to (the audience of
	// setup tokens) and where it came from.
	URL    func() (string, URLSource, error)
	Now    func() time.Time
	Logger *slog.Logger
	// AttemptsPerMinute bounds pair/resume/auth attempts per remote
	// address. Default 20.
	AttemptsPerMinute int
	// IdleTimeout closes a client that sends nothing; default 30 s.
	IdleTimeout time.Duration
}

// ErrInvalidInput is wrapped by errors about what the caller asked for
// (role, lifetime, a device id).
var ErrInvalidInput = errors.New("invalid input")

// ErrAmbiguous is wrapped by errors about a device id prefix that more than
// one device's id starts with.
var ErrAmbiguous = errors.New("ambiguous device id")

// MinIDPrefix is the shortest prefix of a device id that may stand for it.
const MinIDPrefix = 8

// InputError is a field of what the caller asked for that is refused. Field
// is its name as the API and the CLI spell it ("role", "ttl"), so each can
// name the field or the flag that is wrong. It matches ErrInvalidInput.
type InputError struct {
	Field string
	Value string // as given
	Want  string // what is accepted
}

func (e *InputError) Error() string { return e.Field + " " + e.Value + ": want " + e.Want }

// Is makes errors.Is(err, ErrInvalidInput) hold for an *InputError.
func (e *InputError) Is(target error) bool { return target == ErrInvalidInput }

// Service is device pairing over one store: setup codes, the operator's
// decisions, and the /pair protocol (ServeHTTP).
type Service struct {
	st      store.Store
	sec     secret.Secret
	url     func() (string, URLSource, error)
	now     func() time.Time
	log     *slog.Logger
	limiter *limiter
	idle    time.Duration
	keysMu  sync.Mutex

	// waiters holds, per request, the cancel of the socket waiting for its
	// decision: a resume cancels the older socket, so a half-open
	// connection can never be the one that takes the device token.
	waitersMu sync.Mutex
	waiters   map[string]*waiter

	// watchers wakes open sessions when the change log concerns them;
	// Run feeds it.
	watchers watchers
}

// waiter is the connection currently speaking for a device request.
type waiter struct{ cancel context.CancelFunc }

// New makes a Service.
func New(opts Options) (*Service, error) {
	if opts.Store == nil || opts.URL == nil {
		return nil, errors.New("device: Store and URL are required")
	}
	s := &Service{st: opts.Store, sec: opts.Secret, url: opts.URL, now: opts.Now, log: opts.Logger,
		waiters: map[string]*waiter{}}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	n := opts.AttemptsPerMinute
	if n <= 0 {
		n = 20
	}
	s.limiter = newLimiter(n, time.Minute)
	s.idle = opts.IdleTimeout
	if s.idle <= 0 {
		s.idle = IdleTimeout
	}
	return s, nil
}

var kidEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

func newID(prefix string, n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return prefix + kidEncoding.EncodeToString(b)
}

// keys returns the current key set, creating the first key on first use.
func (s *Service) keys(ctx context.Context) (Keys, error) {
	list, err := s.st.SigningKeys(ctx)
	if err != nil {
		return Keys{}, err
	}
	if len(list) == 0 {
		s.keysMu.Lock()
		defer s.keysMu.Unlock()
		if list, err = s.st.SigningKeys(ctx); err != nil {
			return Keys{}, err
		}
		if len(list) == 0 {
			now := s.now()
			if err := s.st.RotateSigningKey(ctx, newID("k", 5), now, now.Add(-MaxTokenTTL), store.Actor{Name: "pairgate", Source: "first use"}); err != nil {
				return Keys{}, err
			}
			if list, err = s.st.SigningKeys(ctx); err != nil {
				return Keys{}, err
			}
		}
	}
	// A key retired longer ago than a token can live verifies nothing
	// any more: leave it out even before a rotation drops it.
	kids := []string{}
	for _, k := range list {
		if k.RetiredAt.IsZero() || s.now().Sub(k.RetiredAt) < MaxTokenTTL {
			kids = append(kids, k.KID)
		}
	}
	return NewKeys(s.sec, list[0].KID, kids)
}

// RotateKey makes a new signing key. Tokens signed by the old one keep
// verifying until they expire (at most MaxTokenTTL); keys retired longer ago
// than that are dropped.
func (s *Service) RotateKey(ctx context.Context, actor store.Actor) (string, error) {
	kid := newID("k", 5)
	now := s.now()
	if err := s.st.RotateSigningKey(ctx, kid, now, now.Add(-MaxTokenTTL), actor); err != nil {
		return "", err
	}
	return kid, nil
}

// SetupParams ask for a setup code.
type SetupParams struct {
	Role   string        // default RoleNode
	Label  string        // cleaned, and cut to MaxLabelLen bytes
	TTL    time.Duration // default DefaultTokenTTL, at most MaxTokenTTL
	Scopes []string
}

// Setup is an issued setup code (the JSON of `pairgate setup-code --json`).
type Setup struct {
	SetupCode string    `json:"setup_code"`
	URL       string    `json:"url"`
	URLSource URLSource `json:"url_source"`
	ExpiresAt time.Time `json:"expires_at"`
}

// IssueSetupCode signs a single-use setup token for the public URL and wraps
// it in a setup code.
func (s *Service) IssueSetupCode(ctx context.Context, p SetupParams, actor store.Actor) (Setup, error) {
	// What was asked for is checked before the URL: a wrong request is
	// the caller's to fix first, whatever the configuration.
	if p.Role == "" {
		p.Role = RoleNode
	}
	switch {
	case p.Role != RoleNode && p.Role != RoleOperator:
		return Setup{}, &InputError{Field: "role", Value: strconv.Quote(p.Role), Want: RoleNode + " or " + RoleOperator}
	case p.TTL < 0 || p.TTL > MaxTokenTTL:
		return Setup{}, &InputError{Field: "ttl", Value: p.TTL.String(), Want: "more than 0s and at most " + strings.TrimSuffix(MaxTokenTTL.String(), "0m0s")}
	}
	url, source, err := s.url()
	if err != nil {
		return Setup{}, err
	}
	// The label may come from a chat (an owner's /pair) and is shown to
	// operators: cleaned like a device's name.
	p.Label = termtext.Clean(p.Label, MaxLabelLen)
	keys, err := s.keys(ctx)
	if err != nil {
		return Setup{}, err
	}
	tok, claims, err := keys.Issue(IssueParams{URL: url, Role: p.Role, Scopes: p.Scopes, Label: p.Label, TTL: p.TTL, Now: s.now()})
	if err != nil {
		return Setup{}, err
	}
	exp := claims.ExpiresAt.Time.UTC()
	code, err := EncodeSetupCode(SetupCode{Version: 1, URL: url, Token: tok, ExpiresAt: exp})
	if err != nil {
		return Setup{}, err
	}
	if err := s.st.RecordSetupIssued(ctx, p.Role, p.Label, actor, s.now()); err != nil {
		return Setup{}, err
	}
	return Setup{SetupCode: code, URL: url, URLSource: source, ExpiresAt: exp}, nil
}

// DeviceID is the lowercase hex SHA-256 of a raw Ed25519 public key.
func DeviceID(publicKey []byte) string {
	h := sha256.Sum256(publicKey)
	return hex.EncodeToString(h[:])
}

// CheckCode is the six digits a device shows and the operator compares:
// SHA-256("pairgate/v1/check\n" + nonce + "\n" + device_id), first four
// bytes big-endian, mod 1,000,000.
func CheckCode(nonce, deviceID string) string {
	h := sha256.Sum256([]byte("pairgate/v1/check\n" + nonce + "\n" + deviceID))
	return fmt.Sprintf("%06d", binary.BigEndian.Uint32(h[:4])%1_000_000)
}

// The signed strings of SPEC section 3: fields joined by "\n", each as it
// travels in JSON.
func pairString(nonce, deviceID string, signedAt int64, token string) string {
	th := sha256.Sum256([]byte(token))
	return strings.Join([]string{"pairgate/v1/pair", nonce, deviceID, fmt.Sprint(signedAt), hex.EncodeToString(th[:])}, "\n")
}

func resumeString(nonce, requestID, deviceID string, signedAt int64) string {
	return strings.Join([]string{"pairgate/v1/resume", nonce, requestID, deviceID, fmt.Sprint(signedAt)}, "\n")
}

func authString(nonce, deviceID string, signedAt int64) string {
	return strings.Join([]string{"pairgate/v1/auth", nonce, deviceID, fmt.Sprint(signedAt)}, "\n")
}

// newDeviceToken draws a device token: 32 random bytes, base64url.
func newDeviceToken() (token string, hash []byte) {
	var b [32]byte
	rand.Read(b[:])
	token = base64.RawURLEncoding.EncodeToString(b[:])
	h := sha256.Sum256([]byte(token))
	return token, h[:]
}

// RequestView is a pending device request as operators see it.
type RequestView struct {
	RequestID string    `json:"request_id"`
	DeviceID  string    `json:"device_id"`
	Name      string    `json:"name"`
	Platform  string    `json:"platform"`
	Role      string    `json:"role"`
	Label     string    `json:"label"` // the setup code's
	CheckCode string    `json:"check_code"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

func requestViewOf(r store.DeviceRequest) RequestView {
	return RequestView{RequestID: r.ID, DeviceID: r.DeviceID, Name: r.Name, Platform: r.Platform, Role: r.Role, Label: r.Label,
		CheckCode: r.CheckCode, CreatedAt: r.CreatedAt, ExpiresAt: r.ExpiresAt}
}

// DeviceView is a paired device as operators see it.
type DeviceView struct {
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

func viewOf(d store.Device) DeviceView {
	v := DeviceView{DeviceID: d.DeviceID, Name: d.Name, Platform: d.Platform, Role: d.Role, Scopes: d.Scopes, Label: d.Label,
		PairedAt: d.PairedAt, LastSeenAt: d.LastSeenAt}
	if !d.RevokedAt.IsZero() {
		t := d.RevokedAt
		v.RevokedAt = &t
	}
	return v
}

// Listing is `pairgate devices list`.
type Listing struct {
	Requests []RequestView `json:"requests"`
	Devices  []DeviceView  `json:"devices"`
}

// List returns pending requests (with their check codes) and devices.
func (s *Service) List(ctx context.Context) (Listing, error) {
	reqs, err := s.st.ListDeviceRequests(ctx, s.now())
	if err != nil {
		return Listing{}, err
	}
	devs, err := s.st.ListDevices(ctx)
	if err != nil {
		return Listing{}, err
	}
	l := Listing{Requests: make([]RequestView, len(reqs)), Devices: make([]DeviceView, len(devs))}
	for i, r := range reqs {
		l.Requests[i] = requestViewOf(r)
	}
	for i, d := range devs {
		l.Devices[i] = viewOf(d)
	}
	return l, nil
}

// Decide approves or rejects a pending request; "latest" as the id means
// the newest pending one. Exactly one of approve, reject and expiry wins.
func (s *Service) Decide(ctx context.Context, id string, approve bool, actor store.Actor) (RequestView, error) {
	if id == "latest" {
		reqs, err := s.st.ListDeviceRequests(ctx, s.now())
		if err != nil {
			return RequestView{}, err
		}
		if len(reqs) == 0 {
			return RequestView{}, fmt.Errorf("no pending device request: %w", store.ErrNotFound)
		}
		id = reqs[len(reqs)-1].ID
	}
	r, err := s.st.DecideDeviceRequest(ctx, id, approve, actor, s.now())
	if err != nil {
		return RequestView{}, err
	}
	return requestViewOf(r), nil
}

// resolveDevice returns the device id that id stands for: a full id, or a
// prefix of at least MinIDPrefix hex characters (any case) that exactly one
// device's id starts with. It is the one rule for every operation that
// takes a device id, from the CLI and the API alike.
func (s *Service) resolveDevice(ctx context.Context, id string) (string, error) {
	want := strings.ToLower(id)
	if !isHex(want) || len(want) < MinIDPrefix || len(want) > sha256.Size*2 {
		return "", &InputError{Field: "device id", Value: strconv.Quote(id),
			Want: fmt.Sprintf("the device's id (%d hex characters) or a prefix of it of at least %d", sha256.Size*2, MinIDPrefix)}
	}
	if len(want) == sha256.Size*2 {
		return want, nil
	}
	devs, err := s.st.ListDevices(ctx)
	if err != nil {
		return "", err
	}
	var found []string
	for _, d := range devs {
		if strings.HasPrefix(d.DeviceID, want) {
			found = append(found, d.DeviceID)
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("no device id starts with %s: %w", want, store.ErrNotFound)
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("device id %s… matches %d devices; give more of the id: %w", want, len(found), ErrAmbiguous)
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// Revoke disables a device at once; its open sessions are closed. The id
// may be a unique prefix (resolveDevice).
func (s *Service) Revoke(ctx context.Context, deviceID string, actor store.Actor) (DeviceView, error) {
	id, err := s.resolveDevice(ctx, deviceID)
	if err != nil {
		return DeviceView{}, err
	}
	d, err := s.st.RevokeDevice(ctx, id, actor, s.now())
	return viewOf(d), err
}

// Rotated is a device's new token, shown once.
type Rotated struct {
	DeviceID    string `json:"device_id"`
	DeviceToken string `json:"device_token"`
}

// Rotate gives a device a new token; the old one is refused at once and
// open sessions are closed. The new token is returned once, for the
// operator to hand to the device.
func (s *Service) Rotate(ctx context.Context, deviceID string, actor store.Actor) (Rotated, error) {
	id, err := s.resolveDevice(ctx, deviceID)
	if err != nil {
		return Rotated{}, err
	}
	tok, hash := newDeviceToken()
	if _, err := s.st.RotateDeviceToken(ctx, id, hash, actor, s.now()); err != nil {
		return Rotated{}, err
	}
	return Rotated{DeviceID: id, DeviceToken: tok}, nil
}

// Remove deletes a device and returns its full id (deviceID may be a unique
// prefix).
func (s *Service) Remove(ctx context.Context, deviceID string, actor store.Actor) (string, error) {
	id, err := s.resolveDevice(ctx, deviceID)
	if err != nil {
		return "", err
	}
	return id, s.st.RemoveDevice(ctx, id, actor, s.now())
}

// limiter is a fixed-window counter per remote address.
type limiter struct {
	mu     sync.Mutex
	max    int
	window time.Duration
	seen   map[string]*windowCount
}

type windowCount struct {
	start time.Time
	n     int
}

func newLimiter(max int, window time.Duration) *limiter {
	return &limiter{max: max, window: window, seen: map[string]*windowCount{}}
}

// allow counts one attempt from addr and reports whether it is within the
// limit.
func (l *limiter) allow(addr string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.seen) > 10_000 {
		for k, w := range l.seen {
			if now.Sub(w.start) >= l.window {
				delete(l.seen, k)
			}
		}
	}
	w := l.seen[addr]
	if w == nil || now.Sub(w.start) >= l.window {
		w = &windowCount{start: now}
		l.seen[addr] = w
	}
	w.n++
	return w.n <= l.max
}
