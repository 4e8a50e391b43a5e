package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/spf13/cobra"

	"github.com/pairgate/pairgate/secret"
)

func (a *app) keysCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "keys",
		Short: "Manage the pairing secret",
	}
	c.AddCommand(a.keysRotateCmd(), &cobra.Command{
		Use:   "init",
		Short: "Create the pairing secret when it is missing (it is created on first use otherwise)",
		Args:  exactArgs(0),
		RunE: func(c *cobra.Command, _ []string) error {
			if err := a.setup(); err != nil {
				return err
			}
			path := a.secretPath(a.homeDir)
			if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
				if err == nil {
					return fmt.Errorf("pairing secret %s already exists; pairgate never replaces it", path)
				}
				return err
			}
			// On a fresh home the database comes first, so the home is
			// never a key without its database.
			if err := a.openStore(c.Context(), false); err != nil {
				return err
			}
			if _, err := secret.LoadOrCreate(path); err != nil {
				return err
			}
			return a.print(map[string]string{"secret_path": path}, func(w io.Writer) {
				fmt.Fprintf(w, "Created a new pairing secret at %s (mode 0600). Back it up with the database.\n", path)
			})
		},
	})
	return c
}
