package cli

import (
	"os"
	"os/signal"
	"reflect"
	"strings"
	"syscall"

	"github.com/pairgate/pairgate/config"
	"github.com/pairgate/pairgate/pairing"
)

// notifyReload returns a channel that receives SIGHUP, which tells serve to
// re-read its config instead of ending the process, and a function that
// stops the notification.
func notifyReload() (<-chan os.Signal, func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	return hup, func() { signal.Stop(hup) }
}

// restartKey is a part of the config that serve uses only at start: a
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
		{"owner", func(c *config.Config) any { return c.Owner }},
	}
}

// reloadConfig reads the config file again and puts its policies,
// allow_from lists and limits into effect in svc at once. A file that does
// not load, or that the gate refuses, changes nothing: the error is logged
// and the running configuration stays. Keys that only take effect at start
// (restartKeys), compared with the config serve started with, are logged as
// needing a restart.
func (a *app) reloadConfig(svc *pairing.Service) {
	cfg, err := a.loadConfig(a.homeDir)
	if err == nil {
		err = svc.Reconfigure(cfg)
	}
	if err != nil {
		problems := strings.Split(err.Error(), "\n")
		a.log.Error("config reload refused: the running configuration stays", "file", a.configName(), "problems", len(problems))
		for _, p := range problems {
			a.log.Error("config reload refused", "problem", p)
		}
		return
	}
	var restart []string
	for _, k := range restartKeys() {
		if !reflect.DeepEqual(k.of(a.cfg), k.of(cfg)) {
			restart = append(restart, k.key)
			a.log.Warn("config: this change needs a restart of pairgate serve to take effect; until then the value it started with stays", "key", k.key)
		}
	}
	file := a.configName()
	if a.cfgFile == "" {
		file = "none (the defaults)"
	}
	a.log.Info("config reloaded: policies, allow_from and limits are in effect", "file", file, "needs_restart", strings.Join(restart, ","))
}
