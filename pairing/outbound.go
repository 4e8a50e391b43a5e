package pairing

import (
	"time"

	"github.com/pairgate/pairgate/api"
	"github.com/pairgate/pairgate/channel"
	"github.com/pairgate/pairgate/notice"
	"github.com/pairgate/pairgate/store"
)

// What the gate has to say, as outbound messages. A message that carries a
// code is templated (store.TemplateChallenge with the request id): the
// store keeps no code, and RenderChallenge makes the text again, the same
// on every replica and every delivery.

// codeMessage is the challenge or reminder for request id, to be rendered.
func codeMessage(scope store.Scope, sender, id string, expires time.Time, cause string) store.OutboundMessage {
	return store.OutboundMessage{Channel: scope.Channel, Account: scope.Account, To: sender, Kind: store.OutboundText,
		Template: store.TemplateChallenge, Ref: id, ExpiresAt: expires, Cause: cause}
}

// notices are the owner's notices of a new request (notice.Messages).
func (p *policy) notices(scope store.Scope, sender, name, id string) []store.OutboundMessage {
	text := notice.DMRequest{Channel: scope.Channel, Account: scope.Account, Sender: sender, Name: name, RequestID: id}.Text()
	return notice.Messages(p.cfg.Owner, scope, text)
}

// RenderChallenge makes the text of a store.TemplateChallenge message: the
// channel's challenge with the code of request m.Ref, valid for what was
// left of it when the message was recorded. ok is false for a message of
// another template or an unknown channel.
func (s *Service) RenderChallenge(m store.OutboundMessage) (text string, ok bool) {
	if m.Template != store.TemplateChallenge {
		return "", false
	}
	ad, err := s.channels.Get(m.Channel)
	if err != nil {
		return "", false
	}
	return ad.ChallengeText(channel.Challenge{Channel: m.Channel, Account: m.Account, Code: s.codes.code(m.Ref),
		TTL: m.ExpiresAt.Sub(m.At)}), true
}

// replyBy is how in's reply goes out.
func replyBy(in Inbound) api.ReplyBy {
	if in.ReplyBy == api.ReplyByOutbound {
		return api.ReplyByOutbound
	}
	return api.ReplyByAnswer
}
