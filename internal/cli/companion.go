package cli

import (
	"fmt"
	"io"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/pairgate/pairgate/device/companion"
)

func (a *app) companionCmd() *cobra.Command {
	c := &cobra.Command{Use: "companion", Short: "The reference companion device"}
	var name, keyFile, tokenFile string
	var allow []string
	pair := &cobra.Command{
		Use:   "pair <SETUP_CODE>",
		Short: "Pair this machine as a device: show the check code, wait for approval, save the device token",
		Args:  exactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if keyFile == "" {
				home, err := a.resolveHome()
				if err != nil {
					return err
				}
				keyFile = filepath.Join(home, "companion", "device.key")
			}
			res, err := companion.Pair(c.Context(), companion.Options{
				SetupCode: args[0], Name: name, KeyFile: keyFile, TokenFile: tokenFile,
				CleartextAllow: allow, Out: a.stderr,
			})
			if err != nil {
				return err
			}
			return a.print(map[string]any{"device_id": res.DeviceID, "role": res.Role, "scopes": res.Scopes, "token_file": res.TokenFile},
				func(w io.Writer) {
					fmt.Fprintf(w, "Paired and authenticated as device %s (role %s). Device token saved to %s (mode 0600).\n",
						cell(res.DeviceID), cell(res.Role), cell(res.TokenFile))
				})
		},
	}
	pair.Flags().StringVar(&name, "name", "", "the name the operator sees (default: this host's name)")
	pair.Flags().StringVar(&keyFile, "key", "", "Ed25519 key file, created 0600 if missing (default $PAIRGATE_HOME/companion/device.key)")
	pair.Flags().StringVar(&tokenFile, "token-file", "", "where to save the device token (default: the key file + .token)")
	pair.Flags().StringSliceVar(&allow, "ws-cleartext-allow", nil, "hosts that may be reached with ws:// although not local")
	c.AddCommand(pair)
	return c
}
