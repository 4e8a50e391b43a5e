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
// Nothing is sent for an imported request, and the owner is not told of
// it again.
//
// The result holds, for each request in order, nil or why it did not come
// over (wrapping ErrNotImported): a code pairgate cannot take, an expired
// code or one of unknown age, the sender allowed or pending already, the
// scope full, the code held by a live request. A storage error is the
// second result.
func (s *Service) ImportPending(ctx context.Context, ch, account string, reqs []ImportedRequest, actor store.Actor) ([]error, error) {
	ad, scope, err := s.scope(ch, account)
	if err != nil {
		return nil, err
	}
	lim := s.pol.Load().lim
	out := make([]error, len(reqs))
	refuse := func(i int, format string, args ...any) {
		out[i] = fmt.Errorf("%w: "+format, append([]any{ErrNotImported}, args...)...)
	}
	for i, in := range reqs {
		sender, err := ad.Normalize(in.Sender)
		if err != nil {
			refuse(i, "%v", err)
			continue
		}
		code, err := NormalizeCode(in.Code)
		if err != nil {
			refuse(i, "its code is not one pairgate can take: %s", strings.TrimPrefix(err.Error(), ErrInvalidInput.Error()+": "))
			continue
		}
		now := s.now()
		if in.CreatedAt.IsZero() {
			refuse(i, "the source does not say when its code was made, so its lifetime is unknown")
			continue
		}
		created := in.CreatedAt
		if created.After(now) { // a clock ahead in the source
			created = now
		}
		expires := created.Add(lim.codeTTL)
		if !expires.After(now) {
			refuse(i, "its code expired at %s (code_ttl %v from its creation)", expires.UTC().Format(time.RFC3339), lim.codeTTL)
			continue
		}
		_, err = s.st.CreateRequest(ctx, store.CreateRequestParams{
			Request: store.Request{ID: newRequestID(), Scope: scope, Sender: sender, Name: cleanName(in.Name),
				CodeHash: s.codes.hash(code), CreatedAt: now, ExpiresAt: expires, LastSentAt: expires},
			MaxPending: lim.maxPending,
			Actor:      actor,
		})
		switch {
		case err == nil:
		case errors.Is(err, store.ErrAllowed):
			refuse(i, "the sender is allowed already")
		case errors.Is(err, store.ErrPending):
			refuse(i, "the sender has a pending request in pairgate already")
		case errors.Is(err, store.ErrCapReached):
			refuse(i, "%s holds max_pending (%d) pending requests", scope, lim.maxPending)
		case errors.Is(err, store.ErrCodeConflict):
			refuse(i, "a live request in pairgate holds the same code")
		default:
			return nil, err
		}
	}
	return out, nil
}
