package cli

import (
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/pairgate/pairgate/config"
	"github.com/pairgate/pairgate/internal/daemon"
	"github.com/pairgate/pairgate/natsbus"
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
			// SIGHUP reloads the config rather than ending the process,
			// from the start: a reload asked for while the store opens
			// waits for the daemon.
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			a.daemon = true
			if err := a.openStore(ctx, false); err != nil {
				return err
			}
			if err := a.loadSecret(ctx); err != nil {
				return err
			}
			adminPath := filepath.Join(a.homeDir, adminTokenFile)
			d, err := daemon.New(ctx, daemon.Options{
				Config:         a.cfg,
				Store:          a.st,
				Secret:         a.sec,
				AdminTokenPath: adminPath,
				PublicURL:      a.urlInputs(""),
				Reload:         hup,
				LoadConfig: func() (*config.Config, string, error) {
					cfg, err := a.loadConfig(a.homeDir)
					if err != nil {
						return nil, a.configName(), err
					}
					return cfg, a.cfgFile, nil
				},
				Logger: a.log,
			})
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

			url, others, exposed := listenURLs(ln.Addr(), net.InterfaceAddrs)
			fmt.Fprintf(a.stdout, "pairgate serving on %s\n", url)
			for _, u := range others {
				fmt.Fprintf(a.stdout, "  also at:     %s\n", u)
			}
			fmt.Fprintf(a.stdout, "  home:        %s\n  database:    %s\n  admin token: %s (may call every API; keep it private)\n",
				a.homeDir, a.storeName(), adminPath)
			if a.cfg.NATS.URL != "" {
				fmt.Fprintf(a.stdout, "  nats:        %s (%s, %s, %s>)\n", natsbus.Redact(a.cfg.NATS.URL), natsbus.AdmitSubject,
					natsbus.CommandSubject, natsbus.OutboundSubjectPrefix)
			}
			if exposed {
				fmt.Fprintln(a.stdout, tlsWarning(listen))
				a.log.Warn("listening beyond this machine without TLS", "listen", listen)
			}
			fmt.Fprintf(a.stdout, "Next: give your gateway a token of its own, which may only call POST /v1/admit, POST /v1/command and GET /v1/outbound:\n  pairgate tokens create --scope gateway --name my-gateway\n")
			// The store is closed once Run has returned (Main), after the
			// requests in flight and the followers.
			return d.Run(ctx, ln)
		},
	}
	c.Flags().StringVar(&listen, "listen", "", "address to listen on (default server.listen, 127.0.0.1:7420)")
	return c
}
