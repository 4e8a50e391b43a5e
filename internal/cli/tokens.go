package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/pairgate/pairgate/api"
	"github.com/pairgate/pairgate/apitoken"
	"github.com/pairgate/pairgate/store"
)

// tokens is the API-token service over the open store.
func (a *app) tokens(ctx context.Context) (*apitoken.Service, error) {
	if _, err := a.open(ctx); err != nil {
		return nil, err
	}
	return apitoken.New(apitoken.Options{Store: a.st, Logger: a.log}), nil
}

func (a *app) tokensCmd() *cobra.Command {
	c := &cobra.Command{Use: "tokens", Short: "Manage API tokens for pairgate serve"}
	var scope, name string
	var quiet bool
	create := &cobra.Command{
		Use:   "create --scope admin|gateway [--name N] [--quiet]",
		Short: "Mint an API token; it is printed this once and stored only as a hash",
		Args:  exactArgs(0),
		RunE: func(c *cobra.Command, _ []string) error {
			if scope != string(store.ScopeAdmin) && scope != string(store.ScopeGateway) {
				return usageError{fmt.Errorf("--scope %q: want admin or gateway", scope)}
			}
			if quiet && a.jsonOut {
				return usageError{errors.New("--quiet and --json: choose one")}
			}
			tokens, err := a.tokens(c.Context())
			if err != nil {
				return err
			}
			m, err := tokens.Create(c.Context(), store.TokenScope(scope), name, actor())
			if err != nil {
				return err
			}
			if quiet {
				_, err := fmt.Fprintln(a.stdout, m.Token)
				return err
			}
			return a.print(m, func(w io.Writer) {
				fmt.Fprintf(w, "Created %s token %s (%s). It is shown only now:\n\n  %s\n\n", m.Scope, cell(m.ID), cell(m.Name), m.Token)
				if m.Scope == string(store.ScopeGateway) {
					fmt.Fprintf(w, "It may only call POST /v1/admit, POST /v1/command and GET /v1/outbound. A running daemon accepts it at once.\n")
				}
			})
		},
	}
	create.Flags().StringVar(&scope, "scope", "", "admin (every API) or gateway (POST /v1/admit only)")
	create.RegisterFlagCompletionFunc("scope", fixed(string(store.ScopeAdmin), string(store.ScopeGateway)))
	create.Flags().StringVar(&name, "name", "", "a name for the audit log, e.g. the gateway's")
	create.Flags().BoolVar(&quiet, "quiet", false, "print only the token, for a file: pairgate tokens create --scope gateway --quiet > gateway.token")
	var all bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List API tokens (never the tokens themselves)",
		Args:  exactArgs(0),
		RunE: func(c *cobra.Command, _ []string) error {
			tokens, err := a.tokens(c.Context())
			if err != nil {
				return err
			}
			rows, err := tokens.List(c.Context(), all)
			if err != nil {
				return err
			}
			return a.print(api.TokenList{Tokens: rows}, func(w io.Writer) {
				if len(rows) == 0 {
					fmt.Fprintln(w, "No API tokens. The admin token is in $PAIRGATE_HOME/admin.token.")
					return
				}
				tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tNAME\tSCOPE\tCREATED\tBY\tREVOKED")
				for _, r := range rows {
					rev := "-"
					if r.RevokedAt != nil {
						rev = r.RevokedAt.Local().Format(time.DateTime)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", cell(r.ID), cell(r.Name), cell(r.Scope), r.CreatedAt.Local().Format(time.DateTime), cell(r.CreatedBy), rev)
				}
				tw.Flush()
			})
		},
	}
	list.Flags().BoolVar(&all, "include-revoked", false, "also list revoked tokens")
	revoke := &cobra.Command{
		Use:               "revoke <ID>",
		Short:             "Revoke an API token; a running daemon refuses it within a second",
		Args:              exactArgs(1),
		ValidArgsFunction: positional(a.fromStore(a.apiTokens)),
		RunE: func(c *cobra.Command, args []string) error {
			tokens, err := a.tokens(c.Context())
			if err != nil {
				return err
			}
			t, err := tokens.Revoke(c.Context(), args[0], actor())
			if err != nil {
				return fmt.Errorf("%w\nsee the tokens with: pairgate tokens list", err)
			}
			return a.print(map[string]any{"revoked": t.ID}, func(w io.Writer) {
				fmt.Fprintf(w, "Revoked %s token %s (%s).\n", cell(t.Scope), cell(t.ID), cell(t.Name))
			})
		},
	}
	c.AddCommand(create, list, revoke)
	return c
}
