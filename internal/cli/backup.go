package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
)

// backuper is a store that can copy itself while in use (SQLite's VACUUM
// INTO); other backends have their own tools.
type backuper interface {
	Backup(ctx context.Context, path string) error
}

func (a *app) backupCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "backup <FILE>",
		Short: "Write a consistent copy of the store to FILE (0600), also while serve runs",
		Long: `backup writes a consistent copy of the database to FILE: one snapshot, taken
while the daemon and other commands go on writing. FILE is created with mode
0600 and is never overwritten. The pairing secret is not in it: keep a copy
of pairing.key with your backups. README.md says how to restore.`,
		Example:           `  pairgate backup /var/backups/pairgate-$(date +%F).db`,
		Args:              exactArgs(1),
		ValidArgsFunction: cobra.FixedCompletions(nil, cobra.ShellCompDirectiveDefault), // a file name
		RunE: func(c *cobra.Command, args []string) error {
			if err := a.openStore(c.Context(), false); err != nil {
				return err
			}
			b, ok := a.st.(backuper)
			if !ok {
				return errors.New("this store cannot be copied by pairgate backup; use the database's own backup tools")
			}
			path, err := filepath.Abs(args[0])
			if err != nil {
				return err
			}
			if err := b.Backup(c.Context(), path); err != nil {
				return err
			}
			fi, err := os.Stat(path)
			if err != nil {
				return err
			}
			out := struct {
				File     string `json:"file"`
				Database string `json:"database"`
				Bytes    int64  `json:"bytes"`
			}{path, a.dbPath, fi.Size()}
			return a.print(out, func(w io.Writer) {
				fmt.Fprintf(w, "Backed up %s to %s (%d bytes, mode 0600).\n", out.Database, out.File, out.Bytes)
				fmt.Fprintf(w, "The pairing secret is not in it: keep a copy of %s (mode 0600) with your backups.\n", a.secretPath(a.homeDir))
			})
		},
	}
}
