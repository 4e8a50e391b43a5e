package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/pairgate/pairgate/server"
	"github.com/pairgate/pairgate/store"
)

// Server timeouts: a client that dribbles its headers or body, or holds an
// idle connection, is cut off instead of holding a goroutine and a socket.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 15 * time.Second
	writeTimeout      = 15 * time.Second
	idleTimeout       = 60 * time.Second
	shutdownTimeout   = 10 * time.Second
)

func (a *app) serveCmd() *cobra.Command {
	var listen string
	c := &cobra.Command{
		Use:   "serve",
		Short: "Run the daemon: the HTTP API for gateways and operators, and /metrics",
		Args:  exactArgs(0),
		RunE: func(c *cobra.Command, _ []string) error {
			if !c.Flags().Changed("log-level") {
				a.defaultLevel = "info"
			}
			ctx := c.Context()
			// SIGHUP reloads the config rather than ending the process.
			hup, stopHUP := notifyReload()
			defer stopHUP()
			a.daemon = true
			svc, err := a.open(ctx)
			if err != nil {
				return err
			}
			if err := svc.Load(ctx); err != nil {
				return err
			}
			adminPath := filepath.Join(a.homeDir, adminTokenFile)
			admin, err := server.LoadOrCreateAdminToken(adminPath)
			if err != nil {
				return err
			}
			devices, err := a.devices(c, "")
			if err != nil {
				return err
			}
			srv, err := server.New(ctx, server.Options{Pairing: svc, Devices: devices, Store: a.st, AdminToken: admin, Logger: a.log})
			if err != nil {
				return err
			}
			if listen == "" {
				listen = a.cfg.Server.Listen
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("listen on %s: %w (choose another address with --listen or server.listen)", listen, err)
			}
			hs := &http.Server{
				Handler:           srv.Handler(),
				ReadHeaderTimeout: readHeaderTimeout,
				ReadTimeout:       readTimeout,
				WriteTimeout:      writeTimeout,
				IdleTimeout:       idleTimeout,
				MaxHeaderBytes:    16 << 10,
				ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelDebug),
			}
			runCtx, stopRun := context.WithCancel(context.WithoutCancel(ctx))
			ran := make(chan struct{})
			go func() { srv.Run(runCtx); close(ran) }()
			served := make(chan error, 1)
			go func() { served <- hs.Serve(ln) }()

			url, others, exposed := listenURLs(ln.Addr(), net.InterfaceAddrs)
			fmt.Fprintf(a.stdout, "pairgate serving on %s\n", url)
			for _, u := range others {
				fmt.Fprintf(a.stdout, "  also at:     %s\n", u)
			}
			fmt.Fprintf(a.stdout, "  home:        %s\n  database:    %s\n  admin token: %s (may call every API; keep it private)\n",
				a.homeDir, a.storeName(), adminPath)
			if exposed {
				fmt.Fprintln(a.stdout, tlsWarning(listen))
				a.log.Warn("listening beyond this machine without TLS", "listen", listen)
			}
			fmt.Fprintf(a.stdout, "Next: give your gateway a token of its own, which may only call POST /v1/admit:\n  pairgate tokens create --scope gateway --name my-gateway\n")
			a.log.Info("serving", "addr", ln.Addr().String())

		wait:
			for {
				select {
				case err := <-served:
					stopRun()
					<-ran
					return fmt.Errorf("serve: %w", err)
				case <-ctx.Done():
					break wait
				case <-hup:
					a.reloadConfig(svc)
				}
			}
			// Finish the requests in flight, then stop following the
			// change log; a.close closes the store after both.
			a.log.Info("shutting down: draining requests", "timeout_ms", shutdownTimeout.Milliseconds())
			sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
			defer cancel()
			err = hs.Shutdown(sctx)
			stopRun()
			<-ran
			if err != nil {
				return fmt.Errorf("shutdown: %w", err)
			}
			if err := <-served; !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			a.log.Info("stopped cleanly")
			return nil
		},
	}
	c.Flags().StringVar(&listen, "listen", "", "address to listen on (default server.listen, 127.0.0.1:7420)")
	return c
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
			if _, err := a.open(c.Context()); err != nil {
				return err
			}
			m, err := server.MintToken(c.Context(), a.st, store.TokenScope(scope), name, actor(), time.Now())
			if err != nil {
				return err
			}
			if quiet {
				_, err := fmt.Fprintln(a.stdout, m.Token)
				return err
			}
			return a.print(m, func(w io.Writer) {
				fmt.Fprintf(w, "Created %s token %s (%s). It is shown only now:\n\n  %s\n\n", m.Scope, cell(m.ID), cell(m.Name), m.Token)
				if m.Scope == store.ScopeGateway {
					fmt.Fprintf(w, "It may only call POST /v1/admit. A running daemon accepts it at once.\n")
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
			if _, err := a.open(c.Context()); err != nil {
				return err
			}
			toks, err := a.st.ListTokens(c.Context(), all)
			if err != nil {
				return err
			}
			type row struct {
				ID        string           `json:"id"`
				Name      string           `json:"name"`
				Scope     store.TokenScope `json:"scope"`
				CreatedAt time.Time        `json:"created_at"`
				CreatedBy string           `json:"created_by"`
				RevokedAt *time.Time       `json:"revoked_at,omitempty"`
			}
			rows := make([]row, len(toks))
			for i, t := range toks {
				rows[i] = row{ID: t.ID, Name: t.Name, Scope: t.Scope, CreatedAt: t.CreatedAt, CreatedBy: t.CreatedBy}
				if !t.RevokedAt.IsZero() {
					rows[i].RevokedAt = &toks[i].RevokedAt
				}
			}
			return a.print(map[string]any{"tokens": rows}, func(w io.Writer) {
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
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", cell(r.ID), cell(r.Name), cell(string(r.Scope)), r.CreatedAt.Local().Format(time.DateTime), cell(r.CreatedBy), rev)
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
			if _, err := a.open(c.Context()); err != nil {
				return err
			}
			t, err := a.st.RevokeToken(c.Context(), args[0], actor(), time.Now())
			if err != nil {
				return fmt.Errorf("%w\nsee the tokens with: pairgate tokens list", err)
			}
			return a.print(map[string]any{"revoked": t.ID}, func(w io.Writer) {
				fmt.Fprintf(w, "Revoked %s token %s (%s).\n", cell(string(t.Scope)), cell(t.ID), cell(t.Name))
			})
		},
	}
	c.AddCommand(create, list, revoke)
	return c
}
