package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/pairgate/pairgate/api"
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
		Args:              exactArgs(2),
		ValidArgsFunction: positional(channelNames),
		RunE: func(c *cobra.Command, args []string) error {
			svc, err := a.open(c.Context())
			if err != nil {
				return err
			}
			in := pairing.Inbound{Channel: args[0], Account: account, Sender: args[1], SenderName: name, Chat: api.ChatDM}
			if group {
				in.Chat = api.ChatGroup
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
			case api.ReasonUnknownChannel, api.ReasonInvalidAccount, api.ReasonInvalidSender:
				return whyRefused(in)
			case api.ReasonUnavailable:
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

// whyRefused says what is wrong with a message the gate dropped as
// unknown_channel, invalid_account or invalid_sender, by the rule that
// refused it: the gate only names the rule.
func whyRefused(in pairing.Inbound) error {
	ad, err := channel.NewRegistry().Get(in.Channel)
	if err != nil {
		return err
	}
	if in.Account != "" {
		if _, err := channel.NormalizeAccount(in.Account); err != nil {
			return err
		}
	}
	_, err = ad.Normalize(in.Sender)
	return err
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
		Use:               "list [<channel>]",
		Short:             "List pending pairing requests",
		Args:              maxArgs(1),
		ValidArgsFunction: positional(channelNames),
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
			return a.print(api.PendingList{Pending: pending, Locked: locked}, func(w io.Writer) {
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
		Args:              exactArgs(2),
		ValidArgsFunction: positional(channelNames, a.fromStore(a.pendingRequests)),
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
					fmt.Fprintf(w, "Notice for the sender (an outbound message, delivered by the gateway: GET /v1/outbound, NATS):\n%s\n", indent(ap.Notify))
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
		Use:               "reject <channel> <CODE|REQUEST_ID>",
		Short:             "Reject a pending request; the sender gets no new code for the decline window",
		Args:              exactArgs(2),
		ValidArgsFunction: positional(channelNames, a.fromStore(a.pendingRequests)),
		RunE: func(c *cobra.Command, args []string) error {
			svc, err := a.open(c.Context())
			if err != nil {
				return err
			}
			p, err := svc.Reject(c.Context(), pairing.Target{Channel: args[0], Account: account, CodeOrID: args[1]}, actor())
			if err != nil {
				return explain(err, args[0], account)
			}
			return a.print(api.RejectResponse{Rejected: p}, func(w io.Writer) {
				fmt.Fprintf(w, "Rejected %s on %s/%s. They get no new code for %s.\n", who(p.Sender, p.Name), cell(p.Channel), cell(p.Account),
					pairing.FormatDuration(a.cfg.Pairing.Limits.DeclineWindow.Std()))
			})
		},
	}
	c.Flags().StringVar(&account, "account", "", "bot account on the channel (default \"default\")")
	return c
}

func (a *app) allowCmd() *cobra.Command {
	var account, name, fromFile string
	c := &cobra.Command{
		Use:   "allow <channel> <sender>...",
		Short: "Put senders on the allowlist directly (idempotent; reactivates revoked senders)",
		Long: `allow puts senders on the allowlist of a channel and account. Senders are
given as arguments, or one a line in a file with --from-file (- for standard
input; blank lines and lines starting with # are skipped), or both. Every
sender is checked before any is added: a bad one is reported (as FILE:LINE
for a file) and nothing is added. A sender already allowed is left as it is.`,
		Example: `  pairgate pairing allow telegram 123456789 --name Alice
  pairgate pairing allow whatsapp --from-file team.txt --account work
  grep -v '^#' ids.txt | pairgate pairing allow telegram --from-file -`,
		Args: func(c *cobra.Command, args []string) error {
			if fromFile != "" {
				return minArgs(1)(c, args)
			}
			return minArgs(2)(c, args)
		},
		ValidArgsFunction: positional(channelNames),
		RunE: func(c *cobra.Command, args []string) error {
			senders, where, err := a.sendersToAllow(args[1:], fromFile)
			if err != nil {
				return err
			}
			if c.Flags().Changed("name") {
				if len(senders) != 1 {
					return usageError{fmt.Errorf("--name names one sender, and %s were given", plural(len(senders), "sender", "senders"))}
				}
				senders[0].Name = name
			}
			svc, err := a.open(c.Context())
			if err != nil {
				return err
			}
			res, err := svc.AllowNamed(c.Context(), args[0], account, senders, store.ViaManual, actor())
			if invalid, ok := errors.AsType[*pairing.InvalidSendersError](err); ok {
				return inputError{refusedSenders(invalid, where)}
			}
			if err != nil {
				return explain(err, args[0], account)
			}
			return a.print(api.AllowResponse{Allowed: res}, func(w io.Writer) {
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
	c.Flags().StringVar(&name, "name", "", "the sender's display name (one sender only)")
	c.Flags().StringVar(&fromFile, "from-file", "", "read senders from this file, one a line (- for standard input)")
	return c
}

// sendersToAllow collects the senders of pairing allow: the arguments, then
// the lines of the --from-file file. where[i] says where sender i came
// from, as FILE:LINE, or "" for an argument.
func (a *app) sendersToAllow(args []string, fromFile string) ([]pairing.NamedSender, []string, error) {
	var senders []pairing.NamedSender
	var where []string
	for _, arg := range args {
		senders = append(senders, pairing.NamedSender{Sender: arg})
		where = append(where, "")
	}
	if fromFile == "" {
		return senders, where, nil
	}
	in, label := a.stdin, "stdin"
	if fromFile != "-" {
		f, err := os.Open(fromFile)
		if err != nil {
			return nil, nil, usageError{fmt.Errorf("--from-file %s: %w", fromFile, err)}
		}
		defer f.Close()
		in, label = f, fromFile
	}
	sc := bufio.NewScanner(in)
	n, fromLines := 0, 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		senders = append(senders, pairing.NamedSender{Sender: line})
		where = append(where, fmt.Sprintf("%s:%d", label, n))
		fromLines++
	}
	if err := sc.Err(); err != nil {
		return nil, nil, usageError{fmt.Errorf("--from-file %s:%d: %w", label, n+1, err)}
	}
	if fromLines == 0 && len(args) == 0 {
		return nil, nil, usageError{fmt.Errorf("--from-file %s: no senders in it (blank lines and # comments are skipped)", label)}
	}
	return senders, where, nil
}

// refusedSenders says which senders were refused and where each came from,
// and, when there were several, that none was added.
func refusedSenders(invalid *pairing.InvalidSendersError, where []string) error {
	const most = 20
	var b strings.Builder
	for i, s := range invalid.Senders {
		if i == most {
			fmt.Fprintf(&b, "… and %d more\n", len(invalid.Senders)-most)
			break
		}
		if w := where[s.Index]; w != "" {
			b.WriteString(w + ": ")
		}
		b.WriteString(s.Err.Error() + "\n")
	}
	if len(where) > 1 {
		b.WriteString("nothing was added: fix the senders above and run again")
	}
	return errors.New(strings.TrimSuffix(b.String(), "\n"))
}

func (a *app) revokeCmd() *cobra.Command {
	var account string
	c := &cobra.Command{
		Use:               "revoke <channel> <sender>",
		Short:             "Remove a sender from the allowlist (kept as revoked, for the record)",
		Args:              exactArgs(2),
		ValidArgsFunction: positional(channelNames, a.fromStore(a.allowedSenders)),
		RunE: func(c *cobra.Command, args []string) error {
			svc, err := a.open(c.Context())
			if err != nil {
				return err
			}
			e, err := svc.Revoke(c.Context(), args[0], account, args[1], actor())
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("%w\nsee who is allowed with: pairgate pairing allowed %s%s", err, args[0], accountFlag(account))
			}
			if err != nil {
				return a.explainConfig(err)
			}
			keys, _ := svc.AllowedByConfig(args[0], account, args[1])
			return a.print(api.RevokeResponse{Revoked: e, StillAllowedBy: keys}, func(w io.Writer) {
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
		Use:               "allowed [<channel>]",
		Short:             "List the allowlist",
		Args:              maxArgs(1),
		ValidArgsFunction: positional(channelNames),
		RunE: func(c *cobra.Command, args []string) error {
			svc, err := a.open(c.Context())
			if err != nil {
				return err
			}
			list, err := svc.ListAllowed(c.Context(), pairing.Filter{Channel: first(args), Account: account}, revoked)
			if err != nil {
				return err
			}
			return a.print(api.AllowedList{Allowed: list}, func(w io.Writer) {
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
					fromConfig = fromConfig || e.Via == api.ViaConfig
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
		Use:               "clear-pending [<channel>]",
		Short:             "Delete pending requests (their codes stop working)",
		Args:              maxArgs(1),
		ValidArgsFunction: positional(channelNames),
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

// accountFlag is the --account part of a command to suggest.
func accountFlag(account string) string {
	if account == "" {
		return ""
	}
	return " --account " + account
}

// explain adds the next step to errors an operator can act on when
// approving or rejecting.
func explain(err error, channel, account string) error {
	acct := accountFlag(account)
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
