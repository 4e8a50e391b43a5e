package channel

import (
	"fmt"
	"strings"
)

// Registry finds a channel's adapter by name. It is read-only once built, so
// one Registry may be shared by any number of goroutines.
type Registry struct {
	adapters map[string]Adapter
}

// allAdapters returns one of each adapter, in the order of SPEC section 1.
// It is the single list the registry and Names are built from.
func allAdapters() []Adapter {
	return []Adapter{
		telegram{},
		whatsapp{},
		signal{},
		discord{},
		slack{},
		imessage{},
		feishu{},
		matrix{},
		email{},
	}
}

// NewRegistry returns a Registry holding the adapters of every channel
// pairgate knows (see Names).
func NewRegistry() *Registry {
	all := allAdapters()
	m := make(map[string]Adapter, len(all))
	for _, a := range all {
		m[a.Name()] = a
	}
	return &Registry{adapters: m}
}

// Get returns the adapter for the channel called name. Names are lower-case
// and matched exactly: "Telegram" is not a channel, so that an id typed with
// odd case never lands under a second spelling. An unknown name gives an
// error wrapping ErrUnknownChannel that names it and lists the valid names:
// `unknown channel "irc"; channels: telegram, whatsapp, …`.
//
// Get runs on the gate's hot path and does not allocate when it succeeds.
func (r *Registry) Get(name string) (Adapter, error) {
	if r != nil {
		if a, ok := r.adapters[name]; ok {
			return a, nil
		}
	}
	return nil, fmt.Errorf("%w %s; channels: %s", ErrUnknownChannel, quoteShort(name), strings.Join(Names(), ", "))
}

// Names returns the names of every channel, in the order of the product
// contract: telegram, whatsapp, signal, discord, slack, imessage, feishu,
// matrix, email. The slice is new on every call; the caller may keep or
// change it.
func Names() []string {
	all := allAdapters()
	names := make([]string, len(all))
	for i, a := range all {
		names[i] = a.Name()
	}
	return names
}
