package cli

import (
	"context"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pairgate/pairgate/apitoken"
	"github.com/pairgate/pairgate/channel"
	"github.com/pairgate/pairgate/store"
	"github.com/pairgate/pairgate/store/backends"
)

// Shell completion (cobra's __complete, which the scripts of `pairgate
// completion` call): channel names, fixed flag values, and ids read from
// the store. Completing is best effort and has no side effects: without a
// database it offers nothing, and it never creates a home, a database or a
// key.

type completeFunc = func(c *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective)

// matching keeps the completions that start with toComplete.
func matching(toComplete string, values ...cobra.Completion) []cobra.Completion {
	var out []cobra.Completion
	for _, v := range values {
		if name, _, _ := strings.Cut(v, "\t"); strings.HasPrefix(name, toComplete) {
			out = append(out, v)
		}
	}
	return out
}

// fixed completes a flag or argument from a fixed list.
func fixed(values ...string) completeFunc {
	return func(_ *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return matching(toComplete, values...), cobra.ShellCompDirectiveNoFileComp
	}
}

// positional completes the positional arguments of a command, each by its
// own function; nil (or an argument past the list) offers nothing.
func positional(fns ...completeFunc) completeFunc {
	return func(c *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) < len(fns) && fns[len(args)] != nil {
			return fns[len(args)](c, args, toComplete)
		}
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
}

// channelNames completes a channel.
func channelNames(c *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	return fixed(channel.Names()...)(c, args, toComplete)
}

// fromStore completes from what list reads from the store, if there is a
// database.
func (a *app) fromStore(list func(ctx context.Context, st store.Store, c *cobra.Command, args []string) ([]cobra.Completion, error)) completeFunc {
	return func(c *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		st, ok := a.completionStore(c.Context())
		if !ok {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		values, err := list(c.Context(), st, c, args)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return matching(toComplete, values...), cobra.ShellCompDirectiveNoFileComp
	}
}

// completionStore opens the database if it exists.
func (a *app) completionStore(ctx context.Context) (store.Store, bool) {
	if a.st != nil {
		return a.st, true
	}
	if err := a.locate(); err != nil {
		return nil, false
	}
	if fi, err := os.Stat(a.dbPath); a.sqlite() && (err != nil || fi.Size() == 0) {
		return nil, false // completing never creates a database
	}
	st, err := backends.Open(ctx, a.storageConfig())
	if err != nil {
		return nil, false
	}
	a.st = st
	return st, true
}

// described is a completion with a description, escaped for the terminal.
func described(value string, desc ...string) cobra.Completion {
	var parts []string
	for _, d := range desc {
		if strings.TrimSpace(d) != "" {
			parts = append(parts, cell(d))
		}
	}
	return cobra.CompletionWithDesc(value, strings.Join(parts, ", "))
}

// scopeOf is the scope of a pairing command being completed: its channel
// argument and --account.
func scopeOf(c *cobra.Command, args []string) (store.RequestFilter, bool) {
	account := channel.DefaultAccount
	if f := c.Flags().Lookup("account"); f != nil && f.Value.String() != "" {
		acct, err := channel.NormalizeAccount(f.Value.String())
		if err != nil {
			return store.RequestFilter{}, false
		}
		account = acct
	}
	return store.RequestFilter{Channel: args[0], Account: account}, true
}

// pendingRequests completes the request ids pending on a pairing command's
// scope.
func (a *app) pendingRequests(ctx context.Context, st store.Store, c *cobra.Command, args []string) ([]cobra.Completion, error) {
	f, ok := scopeOf(c, args)
	if !ok {
		return nil, nil
	}
	reqs, err := st.ListRequests(ctx, f, time.Now())
	var out []cobra.Completion
	for _, r := range reqs {
		out = append(out, described(r.ID, r.Sender, r.Name))
	}
	return out, err
}

// allowedSenders completes the senders allowed on a pairing command's
// scope.
func (a *app) allowedSenders(ctx context.Context, st store.Store, c *cobra.Command, args []string) ([]cobra.Completion, error) {
	f, ok := scopeOf(c, args)
	if !ok {
		return nil, nil
	}
	entries, err := st.ListAllowed(ctx, f, false)
	var out []cobra.Completion
	for _, e := range entries {
		out = append(out, described(e.Sender, e.Name))
	}
	return out, err
}

// deviceRequests completes the pending device request ids, with their
// check codes.
func (a *app) deviceRequests(ctx context.Context, st store.Store, _ *cobra.Command, _ []string) ([]cobra.Completion, error) {
	reqs, err := st.ListDeviceRequests(ctx, time.Now())
	var out []cobra.Completion
	for _, r := range reqs {
		out = append(out, described(r.ID, "check code "+r.CheckCode, r.Name, r.Label))
	}
	return out, err
}

// devices completes device ids: the active ones, or all.
func (a *app) devicesToComplete(all bool) func(context.Context, store.Store, *cobra.Command, []string) ([]cobra.Completion, error) {
	return func(ctx context.Context, st store.Store, _ *cobra.Command, _ []string) ([]cobra.Completion, error) {
		devs, err := st.ListDevices(ctx)
		var out []cobra.Completion
		for _, d := range devs {
			if all || d.RevokedAt.IsZero() {
				out = append(out, described(d.DeviceID, d.Name, d.Label))
			}
		}
		return out, err
	}
}

// apiTokens completes the ids of active API tokens.
func (a *app) apiTokens(ctx context.Context, st store.Store, _ *cobra.Command, _ []string) ([]cobra.Completion, error) {
	toks, err := apitoken.New(apitoken.Options{Store: st}).List(ctx, false)
	var out []cobra.Completion
	for _, t := range toks {
		out = append(out, described(t.ID, t.Name, t.Scope))
	}
	return out, err
}

// ownerSenders completes the owners listed on a channel in the config
// file.
func (a *app) ownerSenders(_ *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if err := a.locate(); err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return matching(toComplete, a.cfg.Owner.Senders[args[0]]...), cobra.ShellCompDirectiveNoFileComp
}
