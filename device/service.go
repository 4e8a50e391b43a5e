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

	"github.com/pairgate/pairgate/api"
	"github.com/pairgate/pairgate/config"
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
	// URL returns the public /pair URL devices connect to (setup codes are
	// issued for it) and where it came from.
	URL    func() (string, URLSource, error)
	Now    func() time.Time
	Logger *slog.Logger
	// AttemptsPerMinute bounds pair/resume/auth attempts per remote
	// address. Default 20.
	AttemptsPerMinute int
	// IdleTimeout closes a client that sends nothing; default 30 s.
	IdleTimeout time.Duration
	// Owner returns the owner configuration in effect: a new device
	// request is announced to its notice chats (package notice). Nil
	// means no notices.
	Owner func() config.Owner
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
	url     func() (string, URLSource, error)
	now     func() time.Time
	log     *slog.Logger
	limiter *limiter
	idle    time.Duration
	keys    *Keys
	owner   func() config.Owner

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
	s := &Service{st: opts.Store, url: opts.URL, now: opts.Now, log: opts.Logger,
		keys: NewKeys(opts.Secret), waiters: map[string]*waiter{}, owner: opts.Owner}
	if s.owner == nil {
		s.owner = func() config.Owner { return config.Owner{} }
	}
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

// signingKey returns the number of the setup-token key that signs now,
// making key 1 on first use.
func (s *Service) signingKey(ctx context.Context) (uint8, error) {
	list, err := s.st.SigningKeys(ctx)
	if err != nil {
		return 0, err
	}
	if len(list) == 0 {
		first, err := nextKey(nil, s.now())
		if err != nil {
			return 0, err
		}
		// ErrKeyInUse: another process made the first key at the same time.
		err = s.st.RotateSigningKey(ctx, first, first.CreatedAt.Add(-MaxTokenTTL), store.Actor{Name: "pairgate", Source: "first use"})
		if err != nil && !errors.Is(err, store.ErrKeyInUse) {
			return 0, err
		}
		if list, err = s.st.SigningKeys(ctx); err != nil {
			return 0, err
		}
	}
	if len(list) == 0 || !list[0].RetiredAt.IsZero() {
		return 0, errors.New("the store has setup-token keys but none that signs")
	}
	return list[0].KID, nil
}

// nextKey picks the key a rotation at now adds: the number after the
// signing key's (255 wraps to 1), skipping numbers still kept: the signing
// key and keys retired less than MaxTokenTTL ago, whose tokens may still be
// live. The store drops the others in the same rotation.
func nextKey(list []store.SigningKey, now time.Time) (store.SigningKey, error) {
	kept := map[uint8]bool{}
	var current uint8
	for _, k := range list {
		switch {
		case k.RetiredAt.IsZero():
			current = k.KID
			kept[k.KID] = true
		case now.Sub(k.RetiredAt) < MaxTokenTTL:
			kept[k.KID] = true
		}
	}
	for i := 1; i <= 255; i++ {
		n := uint8((int(current)+i-1)%255 + 1)
		if !kept[n] {
			return store.SigningKey{KID: n, CreatedAt: now}, nil
		}
	}
	return store.SigningKey{}, fmt.Errorf("all 255 setup-token key numbers belong to keys retired within the last %s; rotate again later", MaxTokenTTL)
}

// maxRotateAttempts bounds how often RotateKey tries again when rotations
// made at the same time (by other processes) take the number it picked.
const maxRotateAttempts = 5

// RotateKey makes a new key sign and returns its number. Tokens signed by
// the old one keep verifying until they expire (at most MaxTokenTTL): every
// key is derived from the secret and its number. Keys retired longer ago
// than that are dropped, freeing their numbers. When a rotation in another
// process takes the number first, this one takes the next.
func (s *Service) RotateKey(ctx context.Context, actor store.Actor) (uint8, error) {
	for attempt := 1; ; attempt++ {
		list, err := s.st.SigningKeys(ctx)
		if err != nil {
			return 0, err
		}
		now := s.now()
		k, err := nextKey(list, now)
		if err != nil {
			return 0, err
		}
		err = s.st.RotateSigningKey(ctx, k, now.Add(-MaxTokenTTL), actor)
		if errors.Is(err, store.ErrKeyInUse) && attempt < maxRotateAttempts {
			continue
		}
		if err != nil {
			return 0, err
		}
		return k.KID, nil
	}
}

// SetupParams ask for a setup code.
type SetupParams struct {
	Role   string        // default RoleNode
	Label  string        // cleaned, and cut to MaxLabelLen bytes
	TTL    time.Duration // default DefaultTokenTTL, at most MaxTokenTTL
	Scopes []string
	// SendTo, when set, records the setup code as outbound messages to
	// that chat in the transaction that issues it: the text, then (with
	// SendTo.Images) the QR code as a PNG. An owner's /pair.
	SendTo *Recipient
}

// Recipient is a chat outbound messages go to.
type Recipient struct {
	Channel, Account, To string
	Images               bool // the channel takes images
}

// IssueSetupCode signs a single-use setup token for the public URL, stores
// what the token stands for (role, scopes, label, URL) under its id, and
// wraps the token in a setup code.
func (s *Service) IssueSetupCode(ctx context.Context, p SetupParams, actor store.Actor) (api.SetupCode, error) {
	// What was asked for is checked before the URL: a wrong request is
	// the caller's to fix first, whatever the configuration.
	if p.Role == "" {
		p.Role = RoleNode
	}
	switch {
	case p.Role != RoleNode && p.Role != RoleOperator:
		return api.SetupCode{}, &InputError{Field: "role", Value: strconv.Quote(p.Role), Want: RoleNode + " or " + RoleOperator}
	case p.TTL != 0 && (p.TTL < time.Second || p.TTL > MaxTokenTTL):
		return api.SetupCode{}, &InputError{Field: "ttl", Value: p.TTL.String(), Want: "at least 1s and at most " + strings.TrimSuffix(MaxTokenTTL.String(), "0m0s")}
	}
	url, source, err := s.url()
	if err != nil {
		return api.SetupCode{}, err
	}
	// The label may come from a chat (an owner's /pair) and is shown to
	// operators: cleaned like a device's name.
	p.Label = termtext.Clean(p.Label, MaxLabelLen)
	kid, err := s.signingKey(ctx)
	if err != nil {
		return api.SetupCode{}, err
	}
	now := s.now()
	tok, t, err := s.keys.Issue(kid, now, p.TTL)
	if err != nil {
		return api.SetupCode{}, err
	}
	code, err := EncodeSetupCode(SetupCode{Version: 1, URL: url, Token: tok, ExpiresAt: t.ExpiresAt})
	if err != nil {
		return api.SetupCode{}, err
	}
	row := store.SetupToken{ID: t.ID.String(), KID: t.KID, Role: p.Role, Scopes: p.Scopes, Label: p.Label, URL: url,
		CreatedAt: now, ExpiresAt: t.ExpiresAt}
	// Rows of tokens that expired an hour ago are of no use even to a
	// verifier whose clock lags: the token's own exp refuses them first.
	var out []store.OutboundMessage
	if to := p.SendTo; to != nil {
		m := store.OutboundMessage{Channel: to.Channel, Account: to.Account, To: to.To, Kind: store.OutboundText,
			Template: store.TemplateSetupCode, Ref: row.ID, ExpiresAt: row.ExpiresAt, Cause: store.CauseCommand}
		out = append(out, m)
		if to.Images {
			m.Kind, m.Template = store.OutboundImage, store.TemplateSetupQR
			out = append(out, m)
		}
	}
	if err := s.st.CreateSetupToken(ctx, row, now.Add(-MaxTokenTTL), actor, out...); err != nil {
		return api.SetupCode{}, err
	}
	return api.SetupCode{SetupCode: code, URL: url, URLSource: string(source), ExpiresAt: t.ExpiresAt}, nil
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

func requestViewOf(r store.DeviceRequest) api.DeviceRequest {
	return api.DeviceRequest{RequestID: r.ID, DeviceID: r.DeviceID, Name: r.Name, Platform: r.Platform, Role: r.Role, Label: r.Label,
		CheckCode: r.CheckCode, Remote: r.Remote, CreatedAt: r.CreatedAt, ExpiresAt: r.ExpiresAt}
}

func viewOf(d store.Device) api.Device {
	v := api.Device{DeviceID: d.DeviceID, Name: d.Name, Platform: d.Platform, Role: d.Role, Scopes: d.Scopes, Label: d.Label,
		PairedAt: d.PairedAt, LastSeenAt: d.LastSeenAt}
	if !d.RevokedAt.IsZero() {
		t := d.RevokedAt
		v.RevokedAt = &t
	}
	return v
}

// List returns pending requests (with their check codes) and devices.
func (s *Service) List(ctx context.Context) (api.DeviceList, error) {
	reqs, err := s.st.ListDeviceRequests(ctx, s.now())
	if err != nil {
		return api.DeviceList{}, err
	}
	devs, err := s.st.ListDevices(ctx)
	if err != nil {
		return api.DeviceList{}, err
	}
	l := api.DeviceList{Requests: make([]api.DeviceRequest, len(reqs)), Devices: make([]api.Device, len(devs))}
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
func (s *Service) Decide(ctx context.Context, id string, approve bool, actor store.Actor) (api.DeviceRequest, error) {
	return s.DecideWith(ctx, id, approve, nil, actor)
}

// DecideWith is Decide that records reply(request) in the decision's
// transaction (an owner command's answer); reply may be nil.
func (s *Service) DecideWith(ctx context.Context, id string, approve bool, reply func(api.DeviceRequest) []store.OutboundMessage, actor store.Actor) (api.DeviceRequest, error) {
	if id == "latest" {
		reqs, err := s.st.ListDeviceRequests(ctx, s.now())
		if err != nil {
			return api.DeviceRequest{}, err
		}
		if len(reqs) == 0 {
			return api.DeviceRequest{}, fmt.Errorf("no pending device request: %w", store.ErrNotFound)
		}
		id = reqs[len(reqs)-1].ID
	}
	var out []store.OutboundMessage
	if reply != nil {
		// The reply names what is decided; if the decision is not made
		// (decided elsewhere meanwhile, expired), nothing is recorded.
		r, err := s.st.GetDeviceRequest(ctx, id)
		if err != nil {
			return api.DeviceRequest{}, err
		}
		out = reply(requestViewOf(r))
	}
	r, err := s.st.DecideDeviceRequest(ctx, id, approve, actor, s.now(), out...)
	if err != nil {
		return api.DeviceRequest{}, err
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
func (s *Service) Revoke(ctx context.Context, deviceID string, actor store.Actor) (api.Device, error) {
	id, err := s.resolveDevice(ctx, deviceID)
	if err != nil {
		return api.Device{}, err
	}
	d, err := s.st.RevokeDevice(ctx, id, actor, s.now())
	return viewOf(d), err
}

// Rotate gives a device a new token; the old one is refused at once and
// open sessions are closed. The new token is returned once, for the
// operator to hand to the device.
func (s *Service) Rotate(ctx context.Context, deviceID string, actor store.Actor) (api.DeviceToken, error) {
	id, err := s.resolveDevice(ctx, deviceID)
	if err != nil {
		return api.DeviceToken{}, err
	}
	tok, hash := newDeviceToken()
	if _, err := s.st.RotateDeviceToken(ctx, id, hash, actor, s.now()); err != nil {
		return api.DeviceToken{}, err
	}
	return api.DeviceToken{DeviceID: id, DeviceToken: tok}, nil
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

// ErrGone is wrapped by RenderSetupCode for a setup token that was used or
// expired: its code is no use to anyone any more.
var ErrGone = errors.New("setup code used or expired")

// RenderSetupCode makes again the setup code of stored setup token id, for
// a store.TemplateSetupCode or TemplateSetupQR message: the token is
// determined by its key number, expiry and id, so the store never holds
// it. A token used or expired at now gives ErrGone.
func (s *Service) RenderSetupCode(ctx context.Context, id string, now time.Time) (string, error) {
	row, err := s.st.GetSetupToken(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return "", fmt.Errorf("setup token %s: %w", id, ErrGone)
	}
	if err != nil {
		return "", err
	}
	if !row.UsedAt.IsZero() || !now.Before(row.ExpiresAt) {
		return "", fmt.Errorf("setup token %s: %w", id, ErrGone)
	}
	raw, err := hex.DecodeString(row.ID)
	if err != nil || len(raw) != tokenIDLen {
		return "", fmt.Errorf("setup token %s: stored id is not %d bytes of hex", id, tokenIDLen)
	}
	t := Token{KID: row.KID, ExpiresAt: row.ExpiresAt.Truncate(time.Second).UTC()}
	copy(t.ID[:], raw)
	return EncodeSetupCode(SetupCode{Version: 1, URL: row.URL, Token: s.keys.encode(t), ExpiresAt: t.ExpiresAt})
}
