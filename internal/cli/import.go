package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/pairgate/pairgate/channel"
	"github.com/pairgate/pairgate/importer"
	"github.com/pairgate/pairgate/pairing"
	"github.com/pairgate/pairgate/store"
)

// importReport is import --json.
type importReport struct {
	Source  string             `json:"source"`
	Applied bool               `json:"applied"`
	Files   []string           `json:"files"`
	Senders []importedSender   `json:"senders"`
	Pending []importer.Pending `json:"pending"` // ask them to write again
	Devices []importer.Device  `json:"devices"` // pair them again
	Refused []importer.Refused `json:"refused"`
}

type importedSender struct {
	importer.Sender
	State string `json:"state"` // one of the states below
}

// The state of an imported sender: what pairgate holds or will hold.
const (
	stateNew         = "new"                 // dry run: would be allowed
	stateAllowed     = "allowed"             // --apply allowed them
	stateNewRevoked  = "new, revoked"        // dry run: revoked in the source, would come over revoked
	stateRevoked     = "imported revoked"    // --apply recorded them revoked
	stateAlready     = "already allowed"     // left as it is
	stateRevokedHere = "revoked in pairgate" // left revoked: an import never undoes a revocation
)

// importSources are the systems import reads, by the name it takes.
var importSources = map[string]func(context.Context, string, *channel.Registry) (importer.Plan, error){
	"hermes": func(_ context.Context, dir string, reg *channel.Registry) (importer.Plan, error) {
		return importer.Hermes(dir, reg)
	},
	"openclaw": importer.OpenClaw,
	"nexo":     importer.Nexo,
}

func (a *app) importCmd() *cobra.Command {
	var apply bool
	c := &cobra.Command{
		Use:   "import <source> <path>",
		Short: "Bring an allowlist over from another pairing system: hermes, openclaw, nexo (a dry run unless --apply)",
		Long: `import reads another pairing system's state and shows what it would bring over:
the senders per channel and account, ids written differently than pairgate
writes them, entries it refuses and why, pending requests, which cannot come
over (their codes are the other system's: the sender gets a pairgate code by
writing again), and paired devices, which are paired again (pairgate
setup-code). Nothing is written without --apply.

With --apply the senders are allowed (via import, by import:<source>, in the
audit log), one transaction per channel and account; a sender the source had
revoked is recorded revoked. Running it again changes nothing; what pairgate
holds for a sender already (allowed or revoked) stays. A source file that
cannot be read or parsed stops the import, naming it, before anything is
written.

hermes: <path> is the hermes home (its platforms/pairing/, the legacy
pairing/, and profiles/<name>/ for account <name>) or a directory of
{platform}-approved.json files.

openclaw: <path> is the OpenClaw state directory: credentials/ (the JSON
era's <channel>[-<account>]-allowFrom.json and <channel>-pairing.json),
state/openclaw.sqlite (the later SQLite store) and devices/paired.json.

nexo: <path> is nexo's pairing.db, or the directory holding it.`,
		Example: `  pairgate import hermes ~/.hermes
  pairgate import hermes ~/.hermes --apply
  pairgate import openclaw ~/.openclaw
  pairgate import nexo ~/.nexo/memory/pairing.db`,
		Args: exactArgs(2),
		RunE: func(c *cobra.Command, args []string) error {
			read, ok := importSources[args[0]]
			if !ok {
				return usageError{fmt.Errorf("unknown source %q; sources: hermes, openclaw, nexo", args[0])}
			}
			plan, err := read(c.Context(), args[1], channel.NewRegistry())
			if errors.Is(err, importer.ErrNoSource) {
				return inputError{err}
			}
			if err != nil {
				return inputError{fmt.Errorf("nothing imported: %w", err)}
			}
			svc, err := a.open(c.Context())
			if err != nil {
				return err
			}
			rep, err := runImport(c, svc, plan, apply)
			if err != nil {
				return err
			}
			return a.print(rep, func(w io.Writer) { printImport(w, rep) })
		},
	}
	c.Flags().BoolVar(&apply, "apply", false, "write: allow the senders shown (without it, a dry run)")
	return c
}

// runImport marks each sender of plan by what pairgate holds, and with
// apply allows the new ones.
func runImport(c *cobra.Command, svc *pairing.Service, plan importer.Plan, apply bool) (importReport, error) {
	ctx := c.Context()
	rep := importReport{Source: plan.Source, Applied: apply, Files: plan.Files, Pending: plan.Pending, Devices: plan.Devices, Refused: plan.Refused,
		Senders: make([]importedSender, len(plan.Senders))}
	type scope struct{ channel, account string }
	known := map[scope]map[string]bool{} // sender → revoked
	byScope := map[scope][]int{}
	var order []scope
	for i, s := range plan.Senders {
		rep.Senders[i] = importedSender{Sender: s, State: stateNew}
		sc := scope{s.Channel, s.Account}
		if _, ok := known[sc]; !ok {
			entries, err := svc.ListAllowed(ctx, pairing.Filter{Channel: s.Channel, Account: s.Account}, true)
			if err != nil {
				return importReport{}, explain(err, s.Channel, s.Account)
			}
			m := map[string]bool{}
			for _, e := range entries {
				if e.Account == s.Account {
					m[e.Sender] = e.RevokedAt != nil
				}
			}
			known[sc] = m
			order = append(order, sc)
		}
		switch revoked, ok := known[sc][s.Sender]; {
		case ok && revoked:
			rep.Senders[i].State = stateRevokedHere
		case ok:
			rep.Senders[i].State = stateAlready
		default:
			if s.Revoked {
				rep.Senders[i].State = stateNewRevoked
			}
			byScope[sc] = append(byScope[sc], i)
		}
	}
	if !apply {
		return rep, nil
	}
	actor := store.Actor{Name: "import:" + plan.Source, Source: "import"}
	for _, sc := range order {
		idx := byScope[sc]
		if len(idx) == 0 {
			continue
		}
		in := make([]pairing.ImportedSender, len(idx))
		for j, i := range idx {
			s := plan.Senders[i]
			in[j] = pairing.ImportedSender{NamedSender: pairing.NamedSender{Sender: s.Sender, Name: s.Name}, Revoked: s.Revoked}
		}
		// Import decides again in its transaction: what changed in
		// pairgate since the read above stands.
		res, err := svc.Import(ctx, sc.channel, sc.account, in, actor)
		if err != nil {
			return importReport{}, explain(err, sc.channel, sc.account)
		}
		for j, r := range res {
			st := &rep.Senders[idx[j]].State
			switch {
			case r.Changed && r.RevokedAt != nil:
				*st = stateRevoked
			case r.Changed:
				*st = stateAllowed
			case r.RevokedAt != nil:
				*st = stateRevokedHere
			default:
				*st = stateAlready
			}
		}
	}
	return rep, nil
}

func printImport(w io.Writer, rep importReport) {
	type key struct{ channel, account string }
	counts := map[key]map[string]int{}
	var keys []key
	for _, s := range rep.Senders {
		k := key{s.Channel, s.Account}
		if counts[k] == nil {
			counts[k] = map[string]int{}
			keys = append(keys, k)
		}
		counts[k][s.State]++
	}
	verb := "would import"
	if rep.Applied {
		verb = "imported"
	}
	fmt.Fprintf(w, "%s from %s (%s):\n", verb, rep.Source, plural(len(rep.Files), "file", "files"))
	for _, k := range keys {
		n := counts[k]
		fmt.Fprintf(w, "  %s/%s: %d new, %d already allowed, %d revoked in pairgate (left revoked)",
			cell(k.channel), cell(k.account), n[stateNew]+n[stateAllowed], n[stateAlready], n[stateRevokedHere])
		if r := n[stateNewRevoked] + n[stateRevoked]; r > 0 {
			fmt.Fprintf(w, ", %d revoked in %s (recorded revoked)", r, rep.Source)
		}
		fmt.Fprintln(w)
	}
	for _, s := range rep.Senders {
		if s.Revoked && s.State == stateAlready {
			fmt.Fprintf(w, "  kept %s/%s %s allowed: %s had revoked them (pairgate pairing revoke %s %s --account %s, if it should stand)\n",
				cell(s.Channel), cell(s.Account), cell(s.Sender.Sender), rep.Source, cell(s.Channel), cell(s.Sender.Sender), cell(s.Account))
		}
	}
	for _, s := range rep.Senders {
		if s.Raw != "" {
			fmt.Fprintf(w, "  normalised %s/%s %s -> %s\n", cell(s.Channel), cell(s.Account), cell(s.Raw), cell(s.Sender.Sender))
		}
	}
	for _, r := range rep.Refused {
		fmt.Fprintf(w, "  refused %s in %s: %s\n", cell(r.Key), cell(r.From), cell(r.Reason))
	}
	for _, p := range rep.Pending {
		fmt.Fprintf(w, "  pending %s/%s %s: ask them to write again (their code cannot come over)\n", cell(p.Channel), cell(p.Account), cell(p.Sender))
	}
	for _, d := range rep.Devices {
		fmt.Fprintf(w, "  device %s (%s, %s): pair it again with a setup code (pairgate setup-code); its tokens do not come over\n",
			cell(d.Name), cell(cmp.Or(d.Platform, "unknown platform")), cell(d.ID))
	}
	if !rep.Applied {
		fmt.Fprintln(w, "Nothing was written: run again with --apply to import.")
	}
}
