package pairing_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/pairgate/pairgate/config"
	"github.com/pairgate/pairgate/pairing"
	"github.com/pairgate/pairgate/secret"
	"github.com/pairgate/pairgate/store"
	"github.com/pairgate/pairgate/store/sqlite"
)

// Example embeds the gate in a Go gateway: open the store, build the
// service, keep it following changes other processes make, and ask it about
// every inbound message.
func Example() {
	ctx := context.Background()
	home, _ := os.MkdirTemp("", "pairgate-example-")
	defer os.RemoveAll(home)

	sec, err := secret.LoadOrCreate(filepath.Join(home, "pairing.key"))
	if err != nil {
		log.Fatal(err)
	}
	st, err := sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(home, "pairgate.db")})
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	gate, err := pairing.New(pairing.Options{Store: st, Secret: sec, Config: config.Default()})
	if err != nil {
		log.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go gate.Run(runCtx) // sees approvals made with the CLI within a second

	msg := pairing.Inbound{Channel: "telegram", Sender: "123456789", SenderName: "Alice"}
	d := gate.Admit(ctx, msg)
	fmt.Println(d.Verdict, d.Reason)
	// The gateway sends d.Reply to the sender; the owner approves the code.
	if _, err := gate.Approve(ctx, pairing.Target{Channel: "telegram", CodeOrID: d.Code}, false,
		store.Actor{Name: "owner", Source: "example"}); err != nil {
		log.Fatal(err)
	}
	d = gate.Admit(ctx, msg)
	fmt.Println(d.Verdict, d.Reason)
	// Output:
	// challenge challenged
	// admit allowed
}
