package daemon

import (
	"context"
	"reflect"
	"strings"

	"github.com/pairgate/pairgate/config"
)

// restartKey is a part of the config that the daemon uses only at start: a
// change to it is logged as needing a restart. Everything else
// (pairing.policy, pairing.limits, pairing.channels) is reloaded.
type restartKey struct {
	key string
	of  func(*config.Config) any
}

func restartKeys() []restartKey {
	return []restartKey{
		{"pairing.storage", func(c *config.Config) any { return c.Pairing.Storage }},
		{"pairing.setup_code", func(c *config.Config) any { return c.Pairing.SetupCode }},
		{"pairing.public_url", func(c *config.Config) any { return c.Pairing.PublicURL }},
		{"pairing.ws_cleartext_allow", func(c *config.Config) any { return c.Pairing.WSCleartextAllow }},
		{"server.listen", func(c *config.Config) any { return c.Server.Listen }},
		{"nats", func(c *config.Config) any { return c.NATS }},
		{"notify", func(c *config.Config) any { return c.Notify }},
	}
}

// reloadOnSignal reloads the config each time Options.Reload receives,
// until ctx ends.
func (d *Daemon) reloadOnSignal(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-d.opts.Reload:
			d.reloadConfig()
		}
	}
}

// reloadConfig reads the config again and puts its policies, allow_from
// lists and limits into effect at once. A file that does not load, or that
// the gate refuses, changes nothing: the error is logged and the running
// configuration stays. Keys that only take effect at start (restartKeys),
// compared with the config the daemon started with, are logged as needing a
// restart.
func (d *Daemon) reloadConfig() {
	cfg, file, err := d.opts.LoadConfig()
	if file == "" {
		file = "none (the defaults)"
	}
	if err == nil {
		err = d.pairing.Reconfigure(cfg)
	}
	if err != nil {
		problems := strings.Split(err.Error(), "\n")
		d.log.Error("config reload refused: the running configuration stays", "file", file, "problems", len(problems))
		for _, p := range problems {
			d.log.Error("config reload refused", "problem", p)
		}
		return
	}
	var restart []string
	for _, k := range restartKeys() {
		if !reflect.DeepEqual(k.of(d.opts.Config), k.of(cfg)) {
			restart = append(restart, k.key)
			d.log.Warn("config: this change needs a restart of pairgate serve to take effect; until then the value it started with stays", "key", k.key)
		}
	}
	d.log.Info("config reloaded: policies, allow_from, limits and owners are in effect", "file", file, "needs_restart", strings.Join(restart, ","))
}
