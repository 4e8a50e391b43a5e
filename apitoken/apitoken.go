// Package apitoken is pairgate's API tokens: minting, listing and revoking
// the tokens kept in the store (pairgate tokens, and later the web page),
// the admin token file of the daemon, and the Authenticator with which the
// daemon checks a request's bearer token against them.
//
// A token is a prefix and 32 random bytes, shown once; the store keeps only
// its SHA-256.
package apitoken

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"
	"time"

	"github.com/pairgate/pairgate/api"
	"github.com/pairgate/pairgate/secret"
	"github.com/pairgate/pairgate/store"
)

// Token prefixes make pairgate tokens easy to recognise (and for secret
// scanners to flag) wherever they leak to.
const (
	adminPrefix   = "pga_"
	gatewayPrefix = "pgt_"
)

// MaxNameLen bounds a token's name, in bytes.
const MaxNameLen = 128

// newToken returns a fresh bearer token: a prefix and 32 random bytes.
func newToken(scope store.TokenScope) string {
	var b [32]byte
	rand.Read(b[:])
	prefix := gatewayPrefix
	if scope == store.ScopeAdmin {
		prefix = adminPrefix
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b[:])
}

func hash(token string) [32]byte { return sha256.Sum256([]byte(token)) }

// LoadOrCreateAdmin returns the admin token at path, creating it (0600,
// complete before it appears) on first start. A file readable by group or
// others is refused.
func LoadOrCreateAdmin(path string) (string, error) {
	const what = "admin token"
	data, err := secret.ReadPrivate(path, what)
	if errors.Is(err, fs.ErrNotExist) {
		if err := secret.WriteNew(path, []byte(newToken(store.ScopeAdmin)+"\n")); err != nil && !errors.Is(err, fs.ErrExist) {
			return "", fmt.Errorf("create %s: %w", what, err)
		}
		data, err = secret.ReadPrivate(path, what)
	}
	if err != nil {
		return "", err
	}
	tok := strings.TrimSpace(string(data))
	if len(tok) < minAdminLen {
		return "", fmt.Errorf("admin token %s is too short (%d characters); delete it to have a new one made", path, len(tok))
	}
	return tok, nil
}

// minAdminLen is the shortest admin token accepted.
const minAdminLen = 32

// Options configure a Service.
type Options struct {
	Store  store.Store
	Now    func() time.Time // nil means time.Now
	Logger *slog.Logger     // nil means discard
}

// Service mints, lists and revokes the API tokens in the store. The CLI,
// the daemon and the web page all go through it.
type Service struct {
	st  store.Store
	now func() time.Time
	log *slog.Logger
}

// New makes a Service.
func New(o Options) *Service {
	s := &Service{st: o.Store, now: o.Now, log: o.Logger}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s
}

// Create mints an API token of scope, recording actor as its creator. An
// empty name is the scope's. The token is in the result only: the store
// keeps its hash.
func (s *Service) Create(ctx context.Context, scope store.TokenScope, name string, actor store.Actor) (api.NewToken, error) {
	if scope != store.ScopeAdmin && scope != store.ScopeGateway {
		return api.NewToken{}, fmt.Errorf("token scope %q: want admin or gateway", scope)
	}
	if name == "" {
		name = string(scope)
	}
	if len(name) > MaxNameLen {
		return api.NewToken{}, fmt.Errorf("token name is %d bytes, at most %d are allowed", len(name), MaxNameLen)
	}
	var id [8]byte
	rand.Read(id[:])
	t := api.NewToken{ID: "tok_" + base64.RawURLEncoding.EncodeToString(id[:]), Name: name, Scope: string(scope), Token: newToken(scope)}
	h := hash(t.Token)
	err := s.st.CreateToken(ctx, store.APIToken{ID: t.ID, Name: name, Scope: scope, Hash: h[:], CreatedAt: s.now(), CreatedBy: actor.Name}, actor)
	if err != nil {
		return api.NewToken{}, err
	}
	return t, nil
}

// List returns the API tokens, oldest first: the active ones, and the
// revoked ones too when includeRevoked. Never the tokens themselves.
func (s *Service) List(ctx context.Context, includeRevoked bool) ([]api.Token, error) {
	toks, err := s.st.ListTokens(ctx, includeRevoked)
	if err != nil {
		return nil, err
	}
	out := make([]api.Token, len(toks))
	for i, t := range toks {
		out[i] = view(t)
	}
	return out, nil
}

// Revoke revokes the active token id; a running daemon refuses it within
// a second. An unknown or already revoked id is store.ErrNotFound.
func (s *Service) Revoke(ctx context.Context, id string, actor store.Actor) (api.Token, error) {
	t, err := s.st.RevokeToken(ctx, id, actor, s.now())
	if err != nil {
		return api.Token{}, err
	}
	return view(t), nil
}

func view(t store.APIToken) api.Token {
	v := api.Token{ID: t.ID, Name: t.Name, Scope: string(t.Scope), CreatedAt: t.CreatedAt, CreatedBy: t.CreatedBy}
	if !t.RevokedAt.IsZero() {
		at := t.RevokedAt
		v.RevokedAt = &at
	}
	return v
}
