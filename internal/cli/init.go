package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

func (a *app) initCmd() *cobra.Command {
	var force bool
	c := &cobra.Command{
		Use:   "init [--force]",
		Short: "Create pairgate's home: the database and the pairing secret (first use does this too)",
		Long: `init creates the database and the pairing secret in pairgate's home; any
command does so on first use. A home whose database is missing or empty
while other state is there (the pairing secret, the admin token, companion
files) is refused by every command, since it would silently start with an
empty allowlist: restore the database from a backup, or start empty on
purpose with init --force. init never empties a database that holds data.`,
		Args: exactArgs(0),
		RunE: func(c *cobra.Command, _ []string) error {
			if err := a.openStore(c.Context(), force); err != nil {
				return err
			}
			if err := a.loadSecret(c.Context()); err != nil {
				return err
			}
			out := map[string]string{"home": a.homeDir, "database": a.storeName(), "secret_path": a.secretPath(a.homeDir)}
			return a.print(out, func(w io.Writer) {
				fmt.Fprintf(w, "pairgate home %s is ready:\n  database:       %s\n  pairing secret: %s\n", out["home"], out["database"], out["secret_path"])
			})
		},
	}
	c.Flags().BoolVar(&force, "force", false, "start with an empty database even though this home holds other state")
	return c
}
