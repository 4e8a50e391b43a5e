package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/pairgate/pairgate/config"
	"github.com/pairgate/pairgate/store/backends"
	"github.com/pairgate/pairgate/store/postgres"
)

func (a *app) configCmd() *cobra.Command {
	c := &cobra.Command{Use: "config", Short: "Check pairgate.yaml"}
	c.AddCommand(&cobra.Command{
		Use:   "check",
		Short: "Validate the config file and report every problem at once, each with file:line",
		Long: `check reads the config file (--config FILE, or $PAIRGATE_HOME/pairgate.yaml)
as pairgate serve would and prints "ok" with a summary of what it sets, or
every problem with its file:line:column and exits 2. It touches no state.`,
		Args: exactArgs(0),
		RunE: func(c *cobra.Command, _ []string) error {
			home, err := a.resolveHome()
			if err != nil {
				return err
			}
			a.homeDir = home
			cfg, err := a.loadConfig(home)
			var problems []string
			switch {
			case errors.Is(err, config.ErrInvalid):
				problems = strings.Split(err.Error(), "\n")
			case errors.Is(err, fs.ErrNotExist):
				return usageError{fmt.Errorf("--config %s: no such file", a.configPath)}
			case err != nil:
				return err
			case !slices.Contains(backends.Drivers(), cfg.Pairing.Storage.Driver):
				problems = []string{fmt.Sprintf("%s: pairing.storage.driver: %q is not available in this build; use one of %s", a.configName(), cfg.Pairing.Storage.Driver, strings.Join(backends.Drivers(), ", "))}
			}
			if len(problems) > 0 {
				if a.jsonOut {
					a.print(map[string]any{"ok": false, "file": a.configName(), "problems": problems}, nil)
				}
				return usageError{fmt.Errorf("%s has %s:\n%s", a.configName(), plural(len(problems), "problem", "problems"), strings.Join(problems, "\n"))}
			}
			if a.cfgFile == "" {
				return a.print(map[string]any{"ok": true, "file": nil, "problems": []string{}}, func(w io.Writer) {
					fmt.Fprintf(w, "ok: no config file at %s; pairgate runs with the defaults (see pairgate.example.yaml).\n", a.configName())
				})
			}
			return a.print(map[string]any{"ok": true, "file": a.cfgFile, "problems": []string{}}, func(w io.Writer) {
				fmt.Fprintf(w, "ok: %s\n", a.cfgFile)
				summarize(w, cfg, home)
			})
		},
	})
	return c
}

// summarize prints what a valid configuration sets, in a few lines.
func summarize(w io.Writer, cfg *config.Config, home string) {
	canon, err := cfg.Canonical()
	if err != nil {
		return
	}
	var overrides []string
	senders, channels := 0, 0
	for _, name := range slices.Sorted(maps.Keys(canon.Pairing.Channels)) {
		ch := canon.Pairing.Channels[name]
		if ch.Policy != "" {
			overrides = append(overrides, name+": "+string(ch.Policy))
		}
		n := len(ch.AllowFrom)
		for _, acct := range slices.Sorted(maps.Keys(ch.Accounts)) {
			if p := ch.Accounts[acct].Policy; p != "" {
				overrides = append(overrides, name+"/"+acct+": "+string(p))
			}
			n += len(ch.Accounts[acct].AllowFrom)
		}
		if n > 0 {
			senders, channels = senders+n, channels+1
		}
	}
	policy := string(canon.Pairing.Policy)
	if len(overrides) > 0 {
		policy += " (" + strings.Join(overrides, "; ") + ")"
	}
	l := canon.Pairing.Limits
	db := canon.Pairing.Storage.Path
	if db == "" {
		db = filepath.Join(home, "pairgate.db")
	}
	if canon.Pairing.Storage.Driver == "postgres" {
		db = postgres.Describe(canon.Pairing.Storage.DSN)
	}
	fmt.Fprintf(w, "  policy:     %s\n", cell(policy))
	fmt.Fprintf(w, "  allow_from: %s on %s\n", plural(senders, "sender", "senders"), plural(channels, "channel", "channels"))
	fmt.Fprintf(w, "  limits:     code_ttl %s, max_pending %d, rate_window %s, %d wrong codes within %s lock for %s, decline_window %s\n",
		l.CodeTTL, l.MaxPending, l.RateWindow, l.MaxFailures, l.FailureWindow, l.Lockout, l.DeclineWindow)
	fmt.Fprintf(w, "  storage:    %s %s\n", cell(canon.Pairing.Storage.Driver), cell(db))
	fmt.Fprintf(w, "  listen:     %s\n", cell(canon.Server.Listen))
}
