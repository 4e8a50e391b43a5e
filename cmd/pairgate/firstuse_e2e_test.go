package main_test

import (
	"net/http"
	"testing"
	"time"
)

// A provisioning script mints a gateway token with the CLI while the daemon
// runs and uses it at once: the very first request succeeds.
func TestTokenFromTheCLIWorksAtOnce(t *testing.T) {
	home := t.TempDir()
	d := startServe(t, home)
	client := &http.Client{Timeout: 5 * time.Second}
	for i := range 3 {
		var gw mintedToken
		runJSON(t, home, &gw, "tokens", "create", "--scope", "gateway", "--name", "provisioned")
		status, body, err := d.do(client, "POST", "/v1/admit", gw.Token, `{"channel":"telegram","sender":"123456789"}`)
		if err != nil || status != http.StatusOK {
			t.Fatalf("token %d: the first request right after tokens create: %d %s %v, want 200", i+1, status, body, err)
		}
	}
}
