package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/pairgate/pairgate/api"
	"github.com/pairgate/pairgate/device"
	"github.com/pairgate/pairgate/qr"
)

// urlInputs are where a setup code's URL may come from (SPEC section 3):
// publicURL is --public-url, if the command has it.
func (a *app) urlInputs(publicURL string) device.URLInputs {
	return device.URLInputs{
		Flag:           publicURL,
		Config:         a.cfg.Pairing.PublicURL,
		Env:            os.Getenv("PAIRGATE_TUNNEL_URL"),
		TunnelFile:     filepath.Join(a.homeDir, "state", "tunnel.url"),
		CleartextAllow: a.cfg.Pairing.WSCleartextAllow,
	}
}

// devices builds the device-pairing service over the open store. publicURL
// is --public-url, if the command has it.
func (a *app) devices(c *cobra.Command, publicURL string) (*device.Service, error) {
	if _, err := a.open(c.Context()); err != nil {
		return nil, err
	}
	in := a.urlInputs(publicURL)
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
		Args: exactArgs(0),
		RunE: func(c *cobra.Command, _ []string) error {
			if c.Flags().Changed("ttl") && ttl == 0 {
				return usageError{errors.New("--ttl 0s: want a lifetime above 0s (leave --ttl out for the default)")}
			}
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
			if ie, ok := errors.AsType[*device.InputError](err); ok {
				return usageError{fmt.Errorf("--%s %s: want %s", ie.Field, ie.Value, ie.Want)}
			}
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
	c.RegisterFlagCompletionFunc("role", fixed(device.RoleNode, device.RoleOperator))
	c.Flags().StringVar(&label, "label", "", "a note kept with the code and shown beside the device's request, e.g. whose device")
	c.Flags().DurationVar(&ttl, "ttl", 0, "lifetime, at most 1h (default pairing.setup_code.default_ttl_secs, 10m)")
	c.RegisterFlagCompletionFunc("ttl", fixed("5m", "10m", "30m", "1h"))
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
		Args:  exactArgs(0),
		RunE: func(c *cobra.Command, _ []string) error {
			svc, err := a.devices(c, "")
			if err != nil {
				return err
			}
			l, err := svc.List(c.Context())
			if err != nil {
				return err
			}
			return a.print(l, func(w io.Writer) { printDevices(w, l, time.Now()) })
		},
	}
	var latest bool
	approve := &cobra.Command{
		Use:               "approve <REQUEST_ID> | --latest",
		Short:             "Approve a device request (check its code first)",
		ValidArgsFunction: positional(a.fromStore(a.deviceRequests)),
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
		Use:               "reject <REQUEST_ID>",
		Short:             "Reject a device request",
		Args:              exactArgs(1),
		ValidArgsFunction: positional(a.fromStore(a.deviceRequests)),
		RunE:              func(c *cobra.Command, args []string) error { return a.decide(c, args[0], false) },
	}
	revoke := &cobra.Command{
		Use:               "revoke <DEVICE_ID>",
		Short:             "Disable a device at once; its open sessions are closed",
		Args:              exactArgs(1),
		ValidArgsFunction: positional(a.fromStore(a.devicesToComplete(false))),
		RunE: func(c *cobra.Command, args []string) error {
			svc, err := a.devices(c, "")
			if err != nil {
				return err
			}
			d, err := svc.Revoke(c.Context(), args[0], actor())
			if err != nil {
				return err
			}
			return a.print(api.DeviceRevokeResponse{Revoked: d}, func(w io.Writer) {
				fmt.Fprintf(w, "Revoked device %s (%s). Its token is refused from now on.\n", cell(d.DeviceID), cell(d.Name))
			})
		},
	}
	rotate := &cobra.Command{
		Use:               "rotate <DEVICE_ID>",
		Short:             "Give a device a new token (printed once); the old one is refused at once",
		Args:              exactArgs(1),
		ValidArgsFunction: positional(a.fromStore(a.devicesToComplete(false))),
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
		Use:               "remove <DEVICE_ID>",
		Short:             "Forget a device",
		Args:              exactArgs(1),
		ValidArgsFunction: positional(a.fromStore(a.devicesToComplete(true))),
		RunE: func(c *cobra.Command, args []string) error {
			svc, err := a.devices(c, "")
			if err != nil {
				return err
			}
			id, err := svc.Remove(c.Context(), args[0], actor())
			if err != nil {
				return err
			}
			return a.print(map[string]any{"removed": id}, func(w io.Writer) {
				fmt.Fprintf(w, "Removed device %s.\n", cell(id))
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
	out, verb, next := api.DeviceDecision{Rejected: &v}, "Rejected", "The device is told on its open connection or when it resumes."
	if approve {
		out, verb, next = api.DeviceDecision{Approved: &v}, "Approved", "The device gets its token on its open connection or when it resumes."
	}
	return a.print(out, func(w io.Writer) {
		fmt.Fprintf(w, "%s %s (%s, check code %s). %s\n", verb, cell(v.RequestID), cell(v.Name), cell(v.CheckCode), next)
	})
}

// Widths of the devices list's cells, chosen so that a line fits 100
// columns whatever a device calls itself (--json has everything in full).
const (
	listIDLen       = 12 // a device id's start: a prefix the other commands take
	listNameLen     = 16
	listPlatformLen = 10
	listRoleLen     = 8
	listLabelLen    = 14
)

// printDevices writes `devices list`: pending requests with their check
// codes, then paired devices.
func printDevices(w io.Writer, l api.DeviceList, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if len(l.Requests) == 0 {
		fmt.Fprintln(w, "No pending device requests.")
	} else {
		fmt.Fprintln(tw, "REQUEST ID\tCHECK CODE\tNAME\tPLATFORM\tROLE\tLABEL\tEXPIRES")
		for _, r := range l.Requests {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", cell(r.RequestID), cell(r.CheckCode), fit(r.Name, listNameLen),
				fit(r.Platform, listPlatformLen), fit(r.Role, listRoleLen), fit(r.Label, listLabelLen), ago(r.ExpiresAt.Sub(now)))
		}
		tw.Flush()
		fmt.Fprintln(w, "\nApprove only if the device shows the same check code: pairgate devices approve <REQUEST ID>")
	}
	fmt.Fprintln(w)
	if len(l.Devices) == 0 {
		fmt.Fprintln(w, "No paired devices.")
		return
	}
	fmt.Fprintln(tw, "DEVICE ID\tNAME\tPLATFORM\tROLE\tLABEL\tPAIRED\tLAST SEEN\tSTATUS")
	for _, d := range l.Devices {
		status := "active"
		if d.RevokedAt != nil {
			status = "revoked"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", shortID(d.DeviceID),
			fit(d.Name, listNameLen), fit(d.Platform, listPlatformLen), fit(d.Role, listRoleLen), fit(d.Label, listLabelLen),
			d.PairedAt.Local().Format(time.DateOnly), since(now.Sub(d.LastSeenAt)), status)
	}
	tw.Flush()
}

// shortID is the start of a device id, as a prefix the other commands take
// (no ellipsis: it is typed back).
func shortID(id string) string {
	c := []rune(cell(id))
	return string(c[:min(len(c), listIDLen)])
}

// fit is cell(s) cut to at most n characters, the last an ellipsis when cut.
func fit(s string, n int) string {
	c := []rune(cell(s))
	if len(c) <= n {
		return string(c)
	}
	return string(c[:n-1]) + "…"
}

// since says how long ago something was, coarsely: 45s ago, 12m ago, 5h
// ago, 3d ago.
func since(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", max(0, int(d/time.Second)))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d/time.Hour))
	}
	return fmt.Sprintf("%dd ago", int(d/(24*time.Hour)))
}

func (a *app) keysRotateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "rotate",
		Short: "Sign new setup codes with a new key; codes already issued keep working until they expire",
		Args:  exactArgs(0),
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
