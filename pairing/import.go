package pairing

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pairgate/pairgate/store"
)

// ImportedRequest is a request pending in another pairing system, with the
// code its sender was given there.
type ImportedRequest struct {
	Sender    string
	Name      string
	Code      string    // as the source had it
	CreatedAt time.Time // in the source
}

// ErrNotImported is wrapped by ImportPending's reason for a request that
// did not come over.
var ErrNotImported = errors.New("not imported")

// ImportPending brings requests pending in another pairing system over
// with the codes their senders hold, so the owner approves them with those
// codes. Each lives the configured code lifetime from its creation in the
// source. pairgate derives the codes it sends from their requests, so it
// cannot send such a code again: a sender who writes again before it
// expires gets no reminder, and after it expires gets a pairgate code.
// Nothing is sent to the sender or the owner's chats for an imported
// request; its change (pairing.requested) is in the log like any other,
// so a webhook announces it.
//
// The result holds, for each request in order, nil or why it did not come
// over (wrapping ErrNotImported): a code pairgate cannot take, an expired
// code or one of unknown age, the sender allowed or pending already, the
// scope full, the code held by a live request. A storage error is the
// second result.
func (s *Service) ImportPending(ctx context.Context, ch, account string, reqs []ImportedRequest, actor store.Actor) ([]error, error) {
	_, scope, err := s.scope(ch, account)
	if err != nil {
		return nil, err
	}
	lim := s.pol.Load().lim
	out := make([]error, len(reqs))
	for i, in := range reqs {
		r, err := s.importable(ch, account, in)
		if err != nil {
			out[i] = err
			continue
		}
		_, err = s.st.CreateRequest(ctx, store.CreateRequestParams{Request: r, MaxPending: lim.maxPending, Actor: actor})
		switch {
		case err == nil:
		case errors.Is(err, store.ErrAllowed):
			out[i] = notImported("the sender is allowed already")
		case errors.Is(err, store.ErrPending):
			out[i] = notImported("the sender has a pending request in pairgate already")
		case errors.Is(err, store.ErrCapReached):
			out[i] = notImported("%s holds max_pending (%d) pending requests", scope, lim.maxPending)
		case errors.Is(err, store.ErrCodeConflict):
			out[i] = notImported("a live request in pairgate holds the same code")
		default:
			return nil, err
		}
	}
	return out, nil
}

// CheckImport says whether ImportPending can take in as it stands, reading
// and writing nothing (an import's dry run): when its code would expire,
// or why it cannot come over (wrapping ErrNotImported). ImportPending may
// still refuse it for what pairgate holds (the sender allowed or pending,
// the scope full).
func (s *Service) CheckImport(ch, account string, in ImportedRequest) (expires time.Time, err error) {
	r, err := s.importable(ch, account, in)
	return r.ExpiresAt, err
}

// importable is the request ImportPending would create for in.
func (s *Service) importable(ch, account string, in ImportedRequest) (store.Request, error) {
	ad, scope, err := s.scope(ch, account)
	if err != nil {
		return store.Request{}, err
	}
	sender, err := ad.Normalize(in.Sender)
	if err != nil {
		return store.Request{}, notImported("%v", err)
	}
	code, err := NormalizeCode(in.Code)
	if err != nil {
		return store.Request{}, notImported("its code is not one pairgate can take: %s", strings.TrimPrefix(err.Error(), ErrInvalidInput.Error()+": "))
	}
	now := s.now()
	if in.CreatedAt.IsZero() {
		return store.Request{}, notImported("the source does not say when its code was made, so its lifetime is unknown")
	}
	created := in.CreatedAt
	if created.After(now) { // a clock ahead in the source
		created = now
	}
	ttl := s.pol.Load().lim.codeTTL
	expires := created.Add(ttl)
	if !expires.After(now) {
		return store.Request{}, notImported("its code expired at %s, code_ttl (%v) after it was made", expires.UTC().Format(time.RFC3339), ttl)
	}
	return store.Request{ID: newRequestID(), Scope: scope, Sender: sender, Name: cleanName(in.Name),
		CodeHash: s.codes.hash(code), CreatedAt: now, ExpiresAt: expires, LastSentAt: expires}, nil
}

func notImported(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrNotImported}, args...)...)
}
