package cli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/pairgate/pairgate/device"
	"github.com/pairgate/pairgate/qr"
)

// devices builds the device-pairing service over the open store. publicURL
// is --public-url, if the command has it.
func (a *app) devices(c *cobra.Command, publicURL string) (*device.Service, error) {
	if _, err := a.open(c.Context()); err != nil {
		return nil, err
	}
	in := device.URLInputs{
		Flag:           publicURL,
		Config:         a.cfg.Pairing.PublicURL,
		Env:            os.Getenv("PAIRGATE_TUNNEL_URL"),
		TunnelFile:     filepath.Join(a.homeDir, "state", "tunnel.url"),
		CleartextAllow: a.cfg.Pairing.WSCleartextAllow,
	}
	return device.New(device.Options{
		Store: a.st, Secret: a.sec, Logger: a.log,
		URL: func() (string, device.URLSource, error) { return device.ResolveURL(in) },
	})
}

func (a *app) setupCodeCmd() *cobra.Command {
	var role, label, publicURL, pngPath string
	var ttl time.Duration
	c := &cobra.Command{
		Use:   "setup-code",
		Short: "Issue a single-use setup code for a companion device, with a QR code",
		Example: `  pairgate setup-code --public-url wss://gateway.example.com
  pairgate setup-code --role operator --label "Ana's phone" --png setup.png`,
		Args: args(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			// Refuse an occupied --png path before issuing: a refused
			// command must leave no setup code on record.
			if pngPath != "" {
				if _, err := os.Lstat(pngPath); err == nil {
					return fmt.Errorf("--png %s already exists; remove it or choose another name", pngPath)
				}
			}
			svc, err := a.devices(c, publicURL)
			if err != nil {
				return err
			}
			if ttl == 0 {
				ttl = time.Duration(a.cfg.Pairing.SetupCode.DefaultTTLSecs) * time.Second
			}
			setup, err := svc.IssueSetupCode(c.Context(), device.SetupParams{Role: role, Label: label, TTL: ttl}, actor())
			if err != nil {
				return err
			}
			if pngPath != "" {
				if err := qr.WritePNG(pngPath, setup.SetupCode, 0); err != nil {
					return err
				}
			}
			return a.print(setup, func(w io.Writer) {
				fmt.Fprintf(w, "Setup code for %s (from %s), single use, expires %s (in %s):\n\n%s\n\n",
					cell(setup.URL), setup.URLSource, setup.ExpiresAt.Local().Format(time.DateTime),
					time.Until(setup.ExpiresAt).Round(time.Second), setup.SetupCode)
				if err := qr.TerminalWithOptions(w, setup.SetupCode, qr.TerminalOptions{NoColor: !isTerminal(a.stdout)}); err != nil {
					fmt.Fprintf(w, "(no QR code: %v)\n", err)
				}
				if pngPath != "" {
					fmt.Fprintf(w, "\nQR code written to %s (mode 0600).\n", pngPath)
				}
				fmt.Fprintf(w, "\nOn the device: pairgate companion pair <SETUP_CODE>. Then compare its check code with:\n  pairgate devices list\n")
			})
		},
	}
	c.Flags().StringVar(&role, "role", device.RoleNode, "node or operator")
	c.Flags().StringVar(&label, "label", "", "a note kept with the code and shown beside the device's request, e.g. whose device")
	c.Flags().DurationVar(&ttl, "ttl", 0, "lifetime, at most 1h (default pairing.setup_code.default_ttl_secs, 10m)")
	c.Flags().StringVar(&publicURL, "public-url", "", "the gateway's URL as the device reaches it (else public_url, PAIRGATE_TUNNEL_URL, state/tunnel.url)")
	c.Flags().StringVar(&pngPath, "png", "", "also write the QR code to this PNG file (created 0600, never overwritten)")
	return c
}

// isTerminal reports whether w is a character device (a terminal), where
// the coloured QR code is safe to print.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func (a *app) devicesCmd() *cobra.Command {
	c := &cobra.Command{Use: "devices", Short: "Device pairing: list, approve, reject, revoke, rotate, remove"}
	list := &cobra.Command{
		Use:   "list",
		Short: "Pending device requests (with their check codes) and paired devices",
		Args:  args(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			svc, err := a.devices(c, "")
			if err != nil {
				return err
			}
			l, err := svc.List(c.Context())
			if err != nil {
				return err
			}
			return a.print(l, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
				if len(l.Requests) == 0 {
					fmt.Fprintln(w, "No pending device requests.")
				} else {
					fmt.Fprintln(tw, "REQUEST ID\tCHECK CODE\tNAME\tPLATFORM\tROLE\tDEVICE ID\tEXPIRES IN")
					for _, r := range l.Requests {
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", cell(r.RequestID), cell(r.CheckCode), cell(r.Name), cell(r.Platform),
							cell(r.Role), cell(shortID(r.DeviceID)), ago(time.Until(r.ExpiresAt)))
					}
					tw.Flush()
					fmt.Fprintln(w, "\nApprove only if the device shows the same check code: pairgate devices approve <REQUEST ID>")
				}
				fmt.Fprintln(w)
				if len(l.Devices) == 0 {
					fmt.Fprintln(w, "No paired devices.")
					return
				}
				fmt.Fprintln(tw, "DEVICE ID\tNAME\tPLATFORM\tROLE\tPAIRED\tLAST SEEN\tREVOKED")
				for _, d := range l.Devices {
					rev := "-"
					if d.RevokedAt != nil {
						rev = d.RevokedAt.Local().Format(time.DateTime)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", cell(d.DeviceID), cell(d.Name), cell(d.Platform), cell(d.Role),
						d.PairedAt.Local().Format(time.DateTime), d.LastSeenAt.Local().Format(time.DateTime), rev)
				}
				tw.Flush()
			})
		},
	}
	var latest bool
	approve := &cobra.Command{
		Use:   "approve <REQUEST_ID> | --latest",
		Short: "Approve a device request (check its code first)",
		RunE: func(c *cobra.Command, args []string) error {
			if latest == (len(args) == 1) || len(args) > 1 {
				return usageError{fmt.Errorf("give a request id or --latest (usage: %s)", c.UseLine())}
			}
			id := "latest"
			if !latest {
				id = args[0]
			}
			return a.decide(c, id, true)
		},
	}
	approve.Flags().BoolVar(&latest, "latest", false, "approve the newest pending request")
	reject := &cobra.Command{
		Use:   "reject <REQUEST_ID>",
		Short: "Reject a device request",
		Args:  args(cobra.ExactArgs(1)),
		RunE:  func(c *cobra.Command, args []string) error { return a.decide(c, args[0], false) },
	}
	revoke := &cobra.Command{
		Use:   "revoke <DEVICE_ID>",
		Short: "Disable a device at once; its open sessions are closed",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(c *cobra.Command, args []string) error {
			svc, err := a.devices(c, "")
			if err != nil {
				return err
			}
			d, err := svc.Revoke(c.Context(), args[0], actor())
			if err != nil {
				return err
			}
			return a.print(map[string]any{"revoked": d}, func(w io.Writer) {
				fmt.Fprintf(w, "Revoked device %s (%s). Its token is refused from now on.\n", cell(d.DeviceID), cell(d.Name))
			})
		},
	}
	rotate := &cobra.Command{
		Use:   "rotate <DEVICE_ID>",
		Short: "Give a device a new token (printed once); the old one is refused at once",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(c *cobra.Command, args []string) error {
			svc, err := a.devices(c, "")
			if err != nil {
				return err
			}
			r, err := svc.Rotate(c.Context(), args[0], actor())
			if err != nil {
				return err
			}
			return a.print(r, func(w io.Writer) {
				fmt.Fprintf(w, "New device token for %s, shown only now:\n\n  %s\n\nThe old token is refused from now on.\n", cell(r.DeviceID), r.DeviceToken)
			})
		},
	}
	remove := &cobra.Command{
		Use:   "remove <DEVICE_ID>",
		Short: "Forget a device",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(c *cobra.Command, args []string) error {
			svc, err := a.devices(c, "")
			if err != nil {
				return err
			}
			if err := svc.Remove(c.Context(), args[0], actor()); err != nil {
				return err
			}
			return a.print(map[string]any{"removed": args[0]}, func(w io.Writer) {
				fmt.Fprintf(w, "Removed device %s.\n", cell(args[0]))
			})
		},
	}
	c.AddCommand(list, approve, reject, revoke, rotate, remove)
	return c
}

func (a *app) decide(c *cobra.Command, id string, approve bool) error {
	svc, err := a.devices(c, "")
	if err != nil {
		return err
	}
	v, err := svc.Decide(c.Context(), id, approve, actor())
	if err != nil {
		return fmt.Errorf("%w\nsee what is pending with: pairgate devices list", err)
	}
	key, verb := "rejected", "Rejected"
	if approve {
		key, verb = "approved", "Approved"
	}
	return a.print(map[string]any{key: v}, func(w io.Writer) {
		fmt.Fprintf(w, "%s %s (%s, check code %s). The device gets its token on its open connection or when it resumes.\n",
			verb, cell(v.RequestID), cell(v.Name), cell(v.CheckCode))
	})
}

// shortID is the start of a device id, enough to tell devices apart in a
// table.
func shortID(id string) string {
	if len(id) <= 16 {
		return id
	}
	return id[:16] + "…"
}

func (a *app) keysRotateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "rotate",
		Short: "Sign new setup codes with a new key; codes already issued keep working until they expire",
		Args:  args(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			svc, err := a.devices(c, "")
			if err != nil {
				return err
			}
			kid, err := svc.RotateKey(c.Context(), actor())
			if err != nil {
				return err
			}
			return a.print(map[string]uint8{"kid": kid}, func(w io.Writer) {
				fmt.Fprintf(w, "New setup-code signing key %d. Older keys verify until their codes expire (at most 1h), then are dropped.\n", kid)
			})
		},
	}
}
