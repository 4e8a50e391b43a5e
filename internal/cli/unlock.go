package cli

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/pairgate/pairgate/api"
	"github.com/spf13/cobra"
)

func (a *app) unlockCmd() *cobra.Command {
	var account string
	c := &cobra.Command{
		Use:   "unlock <channel>",
		Short: "Lift the lock on approvals that wrong codes put on a channel and account",
		Example: `  pairgate pairing unlock telegram
  pairgate pairing unlock whatsapp --account work`,
		Args: exactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			svc, err := a.open(c.Context())
			if err != nil {
				return err
			}
			u, err := svc.Unlock(c.Context(), args[0], account, actor())
			if err != nil {
				return err
			}
			return a.print(api.UnlockResponse{Unlocked: u}, func(w io.Writer) {
				if !u.WasLocked {
					fmt.Fprintf(w, "Approvals on %s/%s are not locked; nothing to do.\n", cell(u.Channel), cell(u.Account))
					return
				}
				fmt.Fprintf(w, "Unlocked approvals on %s/%s (locked until %s after %s). Wrong codes count from zero again.\n",
					cell(u.Channel), cell(u.Account), u.Until.Local().Format(time.DateTime), plural(u.Failures, "wrong code", "wrong codes"))
			})
		},
	}
	c.Flags().StringVar(&account, "account", "", "bot account on the channel (default \"default\")")
	return c
}

// printLocked lists the scopes whose approvals are locked, under the
// pending requests of pairing list.
func printLocked(w io.Writer, locked []api.Lockout) {
	if len(locked) == 0 {
		return
	}
	fmt.Fprintln(w, "\nApprovals locked after wrong codes:")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CHANNEL\tACCOUNT\tUNTIL\tFAILURES")
	for _, l := range locked {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", cell(l.Channel), cell(l.Account), l.Until.Local().Format(time.DateTime), l.Failures)
	}
	tw.Flush()
	fmt.Fprintln(w, "\nLift a lock with: pairgate pairing unlock <channel> [--account A]")
}
