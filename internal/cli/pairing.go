package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/pairgate/pairgate/channel"
	"github.com/pairgate/pairgate/pairing"
	"github.com/pairgate/pairgate/store"
)

func (a *app) admitCmd() *cobra.Command {
	var account, name string
	var group bool
	c := &cobra.Command{
		Use:   "admit <channel> <sender>",
		Short: "Run the gate once for a message from sender and print the decision",
		Example: `  pairgate admit telegram 123456789 --name Alice
  pairgate admit whatsapp +5491155556666 --account work --json`,
		Args: args(cobra.ExactArgs(2)),
		RunE: func(c *cobra.Command, args []string) error {
			svc, err := a.open(c.Context())
			if err != nil {
				return err
			}
			in := pairing.Inbound{Channel: args[0], Account: account, Sender: args[1], SenderName: name, Chat: pairing.ChatDM}
			if group {
				in.Chat = pairing.ChatGroup
			}
			d := svc.Admit(c.Context(), in)
			if err := a.print(d, func(w io.Writer) {
				fmt.Fprintf(w, "%s (%s)\n", d.Verdict, d.Reason)
				if d.Code != "" {
					fmt.Fprintf(w, "code:       %s\nrequest id: %s\n", d.Code, cell(d.RequestID))
				}
				if d.Reply != "" {
					fmt.Fprintf(w, "reply:\n%s\n", indent(d.Reply))
				}
			}); err != nil {
				return err
			}
			switch d.Reason {
			case pairing.ReasonInvalidAccount:
				// The gate only says which rule refused the message; the
				// account's own rule says what is wrong with it.
				_, err := channel.NormalizeAccount(account)
				return usageError{fmt.Errorf("%s: %w", d.Reason, err)}
			case pairing.ReasonUnknownChannel, pairing.ReasonInvalidSender:
				return usageError{fmt.Errorf("%s: %s %q is not valid on %s", d.Reason, what(d.Reason), args[1], args[0])}
			case pairing.ReasonUnavailable:
				return errors.New("the store is unavailable, so the message was dropped; see the log above")
			}
			return nil
		},
	}
	c.Flags().StringVar(&account, "account", "", "bot account on the channel (default \"default\")")
	c.Flags().StringVar(&name, "name", "", "the sender's display name")
	c.Flags().BoolVar(&group, "group", false, "the message came from a group chat")
	return c
}

func what(r pairing.Reason) string {
	if r == pairing.ReasonInvalidSender {
		return "sender"
	}
	return "input"
}

func (a *app) pairingCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "pairing",
		Short: "DM pairing: list, approve, reject, allow and revoke senders",
	}
	c.AddCommand(a.listCmd(), a.approveCmd(), a.rejectCmd(), a.allowCmd(), a.revokeCmd(), a.allowedCmd(), a.clearCmd(), a.unlockCmd())
	return c
}

func (a *app) listCmd() *cobra.Command {
	var account string
	c := &cobra.Command{
		Use:   "list [<channel>]",
		Short: "List pending pairing requests",
		Args:  args(cobra.MaximumNArgs(1)),
		RunE: func(c *cobra.Command, args []string) error {
			svc, err := a.open(c.Context())
			if err != nil {
				return err
			}
			f := pairing.Filter{Channel: first(args), Account: account}
			pending, err := svc.ListPending(c.Context(), f)
			if err != nil {
				return err
			}
			locked, err := svc.ListLocked(c.Context(), f)
			if err != nil {
				return err
			}
			now := time.Now()
			out := struct {
				Pending []pairing.PendingRequest `json:"pending"`
				Locked  []pairing.Lockout        `json:"locked"`
			}{pending, locked}
			return a.print(out, func(w io.Writer) {
				defer printLocked(w, locked)
				if len(pending) == 0 {
					fmt.Fprintln(w, "No pending requests.")
					return
				}
				tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "REQUEST ID\tCHANNEL\tACCOUNT\tSENDER\tNAME\tAGE\tEXPIRES IN")
				for _, p := range pending {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", cell(p.RequestID), cell(p.Channel), cell(p.Account), cell(p.Sender),
						cell(p.Name), ago(now.Sub(p.CreatedAt)), ago(p.ExpiresAt.Sub(now)))
				}
				tw.Flush()
				fmt.Fprintln(w, "\nApprove one with: pairgate pairing approve <channel> <CODE or REQUEST ID>")
			})
		},
	}
	c.Flags().StringVar(&account, "account", "", "only this account (needs a channel)")
	return c
}

func (a *app) approveCmd() *cobra.Command {
	var account string
	var notify bool
	c := &cobra.Command{
		Use:   "approve <channel> <CODE|REQUEST_ID>",
		Short: "Approve a pending request by its code or request id",
		Example: `  pairgate pairing approve telegram ABCD2345
  pairgate pairing approve telegram abcd-2345 --notify
  pairgate pairing approve whatsapp req_k3x… --account work`,
		Args: args(cobra.ExactArgs(2)),
		RunE: func(c *cobra.Command, args []string) error {
			svc, err := a.open(c.Context())
			if err != nil {
				return err
			}
			ap, err := svc.Approve(c.Context(), pairing.Target{Channel: args[0], Account: account, CodeOrID: args[1]}, notify, actor())
			if err != nil {
				return explain(err, args[0], account)
			}
			return a.print(ap, func(w io.Writer) {
				if ap.Already {
					printAlready(w, ap)
					return
				}
				fmt.Fprintf(w, "Approved %s on %s/%s: they are admitted from now on.\n", who(ap.Allowed.Sender, ap.Allowed.Name), cell(ap.Allowed.Channel), cell(ap.Allowed.Account))
				if ap.Notify != "" {
					fmt.Fprintf(w, "Notice for the sender (delivered by the gateway following pairgate's change log):\n%s\n", indent(ap.Notify))
				}
			})
		},
	}
	c.Flags().StringVar(&account, "account", "", "bot account on the channel (default \"default\")")
	c.Flags().BoolVar(&notify, "notify", false, "tell the sender they were approved")
	return c
}

func (a *app) rejectCmd() *cobra.Command {
	var account string
	c := &cobra.Command{
		Use:   "reject <channel> <CODE|REQUEST_ID>",
		Short: "Reject a pending request; the sender gets no new code for the decline window",
		Args:  args(cobra.ExactArgs(2)),
		RunE: func(c *cobra.Command, args []string) error {
			svc, err := a.open(c.Context())
			if err != nil {
				return err
			}
			p, err := svc.Reject(c.Context(), pairing.Target{Channel: args[0], Account: account, CodeOrID: args[1]}, actor())
			if err != nil {
				return explain(err, args[0], account)
			}
			return a.print(map[string]any{"rejected": p}, func(w io.Writer) {
				fmt.Fprintf(w, "Rejected %s on %s/%s. They get no new code for %s.\n", who(p.Sender, p.Name), cell(p.Channel), cell(p.Account),
					pairing.FormatDuration(a.cfg.Pairing.Limits.DeclineWindow.Std()))
			})
		},
	}
	c.Flags().StringVar(&account, "account", "", "bot account on the channel (default \"default\")")
	return c
}

func (a *app) allowCmd() *cobra.Command {
	var account string
	c := &cobra.Command{
		Use:   "allow <channel> <sender>...",
		Short: "Put senders on the allowlist directly (idempotent; reactivates revoked senders)",
		Args:  args(cobra.MinimumNArgs(2)),
		RunE: func(c *cobra.Command, args []string) error {
			svc, err := a.open(c.Context())
			if err != nil {
				return err
			}
			res, err := svc.Allow(c.Context(), args[0], account, args[1:], store.ViaManual, actor())
			if err != nil {
				return explain(err, args[0], account)
			}
			return a.print(map[string]any{"allowed": res}, func(w io.Writer) {
				for _, r := range res {
					state := "allowed"
					if !r.Changed {
						state = "already allowed"
					}
					fmt.Fprintf(w, "%s/%s %s: %s\n", cell(r.Channel), cell(r.Account), cell(r.Sender), state)
				}
			})
		},
	}
	c.Flags().StringVar(&account, "account", "", "bot account on the channel (default \"default\")")
	return c
}

func (a *app) revokeCmd() *cobra.Command {
	var account string
	c := &cobra.Command{
		Use:   "revoke <channel> <sender>",
		Short: "Remove a sender from the allowlist (kept as revoked, for the record)",
		Args:  args(cobra.ExactArgs(2)),
		RunE: func(c *cobra.Command, args []string) error {
			svc, err := a.open(c.Context())
			if err != nil {
				return err
			}
			e, err := svc.Revoke(c.Context(), args[0], account, args[1], actor())
			if err != nil {
				return a.explainConfig(explain(err, args[0], account))
			}
			out := map[string]any{"revoked": e}
			keys, _ := svc.AllowedByConfig(args[0], account, args[1])
			if len(keys) > 0 {
				out["still_allowed_by"] = keys
			}
			return a.print(out, func(w io.Writer) {
				if len(keys) > 0 {
					fmt.Fprintf(w, "Revoked %s on %s/%s in the store, but they are still admitted by %s in %s: remove them there too.\n",
						who(e.Sender, e.Name), cell(e.Channel), cell(e.Account), strings.Join(keys, " and "), a.configName())
					return
				}
				fmt.Fprintf(w, "Revoked %s on %s/%s. A running gateway stops admitting them within a second.\n",
					who(e.Sender, e.Name), cell(e.Channel), cell(e.Account))
			})
		},
	}
	c.Flags().StringVar(&account, "account", "", "bot account on the channel (default \"default\")")
	return c
}

func (a *app) allowedCmd() *cobra.Command {
	var account string
	var revoked bool
	c := &cobra.Command{
		Use:   "allowed [<channel>]",
		Short: "List the allowlist",
		Args:  args(cobra.MaximumNArgs(1)),
		RunE: func(c *cobra.Command, args []string) error {
			svc, err := a.open(c.Context())
			if err != nil {
				return err
			}
			list, err := svc.ListAllowed(c.Context(), pairing.Filter{Channel: first(args), Account: account}, revoked)
			if err != nil {
				return err
			}
			return a.print(map[string]any{"allowed": list}, func(w io.Writer) {
				if len(list) == 0 {
					fmt.Fprintln(w, "The allowlist is empty.")
					return
				}
				tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "CHANNEL\tACCOUNT\tSENDER\tNAME\tAPPROVED\tBY\tVIA\tREVOKED")
				fromConfig := false
				for _, e := range list {
					rev, approved := "-", "-"
					if e.RevokedAt != nil {
						rev = e.RevokedAt.Local().Format(time.DateTime)
					}
					if !e.ApprovedAt.IsZero() {
						approved = e.ApprovedAt.Local().Format(time.DateTime)
					}
					fromConfig = fromConfig || e.Via == pairing.ViaConfig
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", cell(e.Channel), cell(e.Account), cell(e.Sender), cell(e.Name),
						approved, cell(e.ApprovedBy), cell(string(e.Via)), rev)
				}
				tw.Flush()
				if fromConfig {
					fmt.Fprintf(w, "\nVIA config: admitted by allow_from in %s (ACCOUNT * is every account of the channel);\nremove them there, not with pairing revoke.\n", a.configName())
				}
			})
		},
	}
	c.Flags().StringVar(&account, "account", "", "only this account (needs a channel)")
	c.Flags().BoolVar(&revoked, "include-revoked", false, "also list revoked senders")
	return c
}

func (a *app) clearCmd() *cobra.Command {
	var account string
	c := &cobra.Command{
		Use:   "clear-pending [<channel>]",
		Short: "Delete pending requests (their codes stop working)",
		Args:  args(cobra.MaximumNArgs(1)),
		RunE: func(c *cobra.Command, args []string) error {
			svc, err := a.open(c.Context())
			if err != nil {
				return err
			}
			n, err := svc.ClearPending(c.Context(), pairing.Filter{Channel: first(args), Account: account}, actor())
			if err != nil {
				return err
			}
			return a.print(map[string]any{"cleared": n}, func(w io.Writer) {
				fmt.Fprintf(w, "Cleared %s.\n", plural(n, "pending request", "pending requests"))
			})
		},
	}
	c.Flags().StringVar(&account, "account", "", "only this account (needs a channel)")
	return c
}

// explain adds the next step to errors an operator can act on.
func explain(err error, channel, account string) error {
	acct := ""
	if account != "" {
		acct = " --account " + account
	}
	var wrong *pairing.WrongAccountError
	var lock *store.LockoutError
	switch {
	case errors.As(err, &wrong):
		return fmt.Errorf("%w\nthat code is pending on %s/%s: did you mean --account %s?",
			explain(wrong.Err, channel, account), cell(wrong.Scope.Channel), cell(wrong.Account), cell(wrong.Account))
	case errors.As(err, &lock):
		return fmt.Errorf("approvals on %s are locked for %s more (until %s) after %d wrong codes; wait, or admit a sender you know with: pairgate pairing allow %s <sender>%s",
			lock.Scope, pairing.FormatDuration(time.Until(lock.Until).Round(time.Minute)), lock.Until.Local().Format(time.DateTime), lock.Failures, channel, acct)
	case errors.Is(err, store.ErrAlreadyApproved):
		var ap *pairing.AlreadyApprovedError
		if errors.As(err, &ap) {
			return fmt.Errorf("%w\nremove them with: pairgate pairing revoke %s %s%s", err, channel, cell(ap.Sender), acct)
		}
		return err
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("%w\nsee what is pending with: pairgate pairing list %s%s", err, channel, acct)
	}
	return err
}

// who names a sender for the terminal, with their display name if any.
func who(sender, name string) string {
	if name == "" {
		return cell(sender)
	}
	return fmt.Sprintf("%s (%s)", cell(sender), cell(name))
}

func first(args []string) string {
	if len(args) == 0 {
		return ""
	}
	return args[0]
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}

// ago writes a duration for people: 45s, 12m, 3h5m.
func ago(d time.Duration) string {
	if d < time.Minute {
		return d.Round(time.Second).String()
	}
	return pairing.FormatDuration(d.Round(time.Minute))
}
