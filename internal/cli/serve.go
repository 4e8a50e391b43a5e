package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/pairgate/pairgate/apitoken"
	"github.com/pairgate/pairgate/server"
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
			admin, err := apitoken.LoadOrCreateAdmin(adminPath)
			if err != nil {
				return err
			}
			devices, err := a.devices(c, "")
			if err != nil {
				return err
			}
			tokens, err := apitoken.New(apitoken.Options{Store: a.st, Logger: a.log}).Authenticator(ctx, admin)
			if err != nil {
				return err
			}
			srv, err := server.New(server.Options{Pairing: svc, Devices: devices, Store: a.st, Tokens: tokens, Logger: a.log})
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
			go func() {
				var wg sync.WaitGroup
				wg.Go(func() { svc.Run(runCtx) })
				wg.Go(func() { devices.Run(runCtx) })
				wg.Go(func() { tokens.Run(runCtx) })
				wg.Go(func() { srv.Run(runCtx) })
				wg.Wait()
				close(ran)
			}()
			served := make(chan error, 1)
			go func() { served <- hs.Serve(ln) }()

			url, others, exposed := listenURLs(ln.Addr(), net.InterfaceAddrs)
			fmt.Fprintf(a.stdout, "pairgate serving on %s\n", url)
			for _, u := range others {
				fmt.Fprintf(a.stdout, "  also at:     %s\n", u)
			}
			fmt.Fprintf(a.stdout, "  home:        %s\n  database:    %s\n  admin token: %s (may call every API; keep it private)\n",
				a.homeDir, a.dbPath, adminPath)
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
