package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/pairgate/pairgate/internal/buildinfo"
)

func (a *app) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print pairgate's version, commit and Go version (also --version)",
		Args:  exactArgs(0),
		RunE:  func(*cobra.Command, []string) error { return a.printVersion() },
	}
}

// printVersion prints the build information; it touches no state.
func (a *app) printVersion() error {
	v := buildinfo.Read()
	return a.print(v, func(w io.Writer) {
		commit := v.Commit
		if commit == "" {
			commit = "unknown"
		}
		fmt.Fprintf(w, "pairgate %s\ncommit   %s\ngo       %s\n", v.Version, commit, v.Go)
	})
}
