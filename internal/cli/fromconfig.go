package cli

import (
	"errors"
	"fmt"

	"github.com/pairgate/pairgate/pairing"
)

// configName names the config file for messages: the file read, or where
// one would be read from.
func (a *app) configName() string {
	if a.cfgFile != "" {
		return a.cfgFile
	}
	path, _ := a.configFile(a.homeDir)
	return path
}

// explainConfig adds the file to the refusal to revoke a sender whom
// allow_from admits.
func (a *app) explainConfig(err error) error {
	var ce *pairing.ConfigAllowedError
	if !errors.As(err, &ce) {
		return err
	}
	return fmt.Errorf("%w\nthe configuration file: %s", err, a.configName())
}
