package cli

import (
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
	Refused []importer.Refused `json:"refused"`
}

type importedSender struct {
	importer.Sender
	// State: "new" (dry run) or "allowed"; "already allowed"; "revoked in
	// pairgate" (left revoked: an import never undoes a revocation).
	State string `json:"state"`
}

// importSources are the systems import reads, by the name it takes.
var importSources = map[string]func(string, *channel.Registry) (importer.Plan, error){
	"hermes":   importer.Hermes,
	"openclaw": importer.OpenClaw,
}

func (a *app) importCmd() *cobra.Command {
	var apply bool
	c := &cobra.Command{
		Use:   "import <source> <path>",
		Short: "Bring an allowlist over from another pairing system: hermes, openclaw (a dry run unless --apply)",
		Long: `import reads another pairing system's files and shows what it would bring over:
the senders per channel and account, ids written differently than pairgate
writes them, entries it refuses and why, and pending requests, which cannot
come over (their codes are the other system's: the sender gets a pairgate code
by writing again). Nothing is written without --apply.

With --apply the senders are allowed (via import, by import:<source>, in the
audit log), one transaction per channel and account. Running it again changes
nothing; a sender revoked in pairgate stays revoked. A source file that cannot
be read or parsed stops the import, naming it, before anything is written.

hermes: <path> is the hermes home (its platforms/pairing/, the legacy
pairing/, and profiles/<name>/ for account <name>) or a directory of
{platform}-approved.json files.

openclaw: <path> is the OpenClaw state directory (its credentials/) or a
directory of <channel>[-<account>]-allowFrom.json files (the JSON era).`,
		Example: `  pairgate import hermes ~/.hermes
  pairgate import hermes ~/.hermes --apply
  pairgate import openclaw ~/.openclaw`,
		Args: exactArgs(2),
		RunE: func(c *cobra.Command, args []string) error {
			read, ok := importSources[args[0]]
			if !ok {
				return usageError{fmt.Errorf("unknown source %q; sources: hermes, openclaw", args[0])}
			}
			plan, err := read(args[1], channel.NewRegistry())
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
	rep := importReport{Source: plan.Source, Applied: apply, Files: plan.Files, Pending: plan.Pending, Refused: plan.Refused,
		Senders: make([]importedSender, len(plan.Senders))}
	type scope struct{ channel, account string }
	known := map[scope]map[string]bool{} // sender → revoked
	byScope := map[scope][]int{}
	var order []scope
	for i, s := range plan.Senders {
		rep.Senders[i] = importedSender{Sender: s, State: "new"}
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
			rep.Senders[i].State = "revoked in pairgate"
		case ok:
			rep.Senders[i].State = "already allowed"
		default:
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
		named := make([]pairing.NamedSender, len(idx))
		for j, i := range idx {
			named[j] = pairing.NamedSender{Sender: plan.Senders[i].Sender, Name: plan.Senders[i].Name}
		}
		res, err := svc.AllowNamed(ctx, sc.channel, sc.account, named, store.ViaImport, actor)
		if err != nil {
			return importReport{}, explain(err, sc.channel, sc.account)
		}
		for j, r := range res {
			rep.Senders[idx[j]].State = "allowed"
			if !r.Changed {
				rep.Senders[idx[j]].State = "already allowed"
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
		fmt.Fprintf(w, "  %s/%s: %d new, %d already allowed, %d revoked in pairgate (left revoked)\n",
			cell(k.channel), cell(k.account), n["new"]+n["allowed"], n["already allowed"], n["revoked in pairgate"])
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
	if !rep.Applied {
		fmt.Fprintln(w, "Nothing was written: run again with --apply to import.")
	}
}
