package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

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
	Pending []importedPending  `json:"pending"`
	Devices []importer.Device  `json:"devices"` // pair them again
	Refused []importer.Refused `json:"refused"`
}

// importedPending is a request pending in the source, and what becomes of
// it: it comes over with its code, or its sender is asked to write again.
type importedPending struct {
	importer.Pending
	State     string    `json:"state"`               // one of the pendingX states
	ExpiresAt time.Time `json:"expires_at,omitzero"` // of its code, when it comes over
	Reason    string    `json:"reason,omitempty"`    // why it does not
}

const (
	pendingComes    = "comes over" // dry run: would come over with its code
	pendingImported = "imported"   // --apply: came over with its code
	pendingAskAgain = "ask again"  // cannot come over: the sender writes again
)

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
writes them, entries it refuses and why, pending requests (one whose code the
source kept comes over with it while that code is within code_ttl of its
creation, and is approved with that code; for the others the sender writes
again and gets a pairgate code), and paired devices, which are paired again
(pairgate setup-code). Nothing is written without --apply.

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
	c.Flags().BoolVar(&apply, "apply", false, "write what the dry run shows: the senders, and the pending requests that come over (without it, a dry run)")
	return c
}

// runImport marks each sender of plan by what pairgate holds, and with
// apply allows the new ones.
func runImport(c *cobra.Command, svc *pairing.Service, plan importer.Plan, apply bool) (importReport, error) {
	ctx := c.Context()
	rep := importReport{Source: plan.Source, Applied: apply, Files: plan.Files, Devices: plan.Devices, Refused: plan.Refused,
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
	rep.Pending = checkPending(svc, plan)
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
	// The senders first: a request of a sender just allowed stays behind.
	if err := importPending(ctx, svc, rep.Pending, actor); err != nil {
		return importReport{}, err
	}
	return rep, nil
}

// checkPending marks each pending request of plan by whether it can come
// over with its code.
func checkPending(svc *pairing.Service, plan importer.Plan) []importedPending {
	out := make([]importedPending, len(plan.Pending))
	for i, p := range plan.Pending {
		out[i] = importedPending{Pending: p, State: pendingAskAgain}
		if p.Code == "" {
			out[i].Reason = plan.Source + " kept only a hash of its code"
			continue
		}
		exp, err := svc.CheckImport(p.Channel, p.Account, pairing.ImportedRequest{Sender: p.Sender, Name: p.Name, Code: p.Code, CreatedAt: p.CreatedAt})
		if err != nil {
			out[i].Reason = strings.TrimPrefix(err.Error(), pairing.ErrNotImported.Error()+": ")
			continue
		}
		out[i].State, out[i].ExpiresAt = pendingComes, exp
	}
	return out
}

// importPending brings over the requests checkPending found can come,
// one call per channel and account.
func importPending(ctx context.Context, svc *pairing.Service, pending []importedPending, actor store.Actor) error {
	type scope struct{ channel, account string }
	byScope := map[scope][]int{}
	var order []scope
	for i, p := range pending {
		if p.State != pendingComes {
			continue
		}
		sc := scope{p.Channel, p.Account}
		if _, ok := byScope[sc]; !ok {
			order = append(order, sc)
		}
		byScope[sc] = append(byScope[sc], i)
	}
	for _, sc := range order {
		idx := byScope[sc]
		in := make([]pairing.ImportedRequest, len(idx))
		for j, i := range idx {
			p := pending[i]
			in[j] = pairing.ImportedRequest{Sender: p.Sender, Name: p.Name, Code: p.Code, CreatedAt: p.CreatedAt}
		}
		res, err := svc.ImportPending(ctx, sc.channel, sc.account, in, actor)
		if err != nil {
			return explain(err, sc.channel, sc.account)
		}
		for j, err := range res {
			p := &pending[idx[j]]
			p.State = pendingImported
			if err != nil {
				p.State, p.ExpiresAt, p.Reason = pendingAskAgain, time.Time{}, strings.TrimPrefix(err.Error(), pairing.ErrNotImported.Error()+": ")
			}
		}
	}
	return nil
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
		switch p.State {
		case pendingComes, pendingImported:
			verb := "comes"
			if p.State == pendingImported {
				verb = "came"
			}
			fmt.Fprintf(w, "  pending %s/%s %s: %s over with the code they hold, valid until %s (approve it with that code)\n",
				cell(p.Channel), cell(p.Account), cell(p.Sender), verb, p.ExpiresAt.Local().Format(time.DateTime))
		default:
			fmt.Fprintf(w, "  pending %s/%s %s: ask them to write again (%s)\n", cell(p.Channel), cell(p.Account), cell(p.Sender), cell(p.Reason))
		}
	}
	for _, d := range rep.Devices {
		fmt.Fprintf(w, "  device %s (%s, %s): pair it again with a setup code (pairgate setup-code); its tokens do not come over\n",
			cell(d.Name), cell(cmp.Or(d.Platform, "unknown platform")), cell(d.ID))
	}
	if !rep.Applied {
		fmt.Fprintln(w, "Nothing was written: run again with --apply to import.")
	}
}
