package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/pairgate/pairgate/api"
	"github.com/pairgate/pairgate/client"
)

// A gateway asks the daemon about every inbound message and fails closed:
// when the daemon cannot be asked, the message is dropped.
func ExampleClient_Admit() {
	c, err := client.New("http://127.0.0.1:7420", os.Getenv("PAIRGATE_TOKEN"))
	if err != nil {
		log.Fatal(err)
	}
	d, err := c.Admit(context.Background(), api.AdmitRequest{Channel: "telegram", Sender: "123456789", SenderName: "Alice"})
	if err != nil {
		log.Printf("pairgate: %v; dropping the message", err)
		return
	}
	if d.Reply != "" {
		fmt.Println("reply to the sender:", d.Reply)
	}
	if d.Verdict == api.Admit {
		fmt.Println("hand the message to the assistant")
	}
}

// An operator tool tells a wrong code from a lockout.
func ExampleIsLockedOut() {
	c, err := client.New("http://127.0.0.1:7420", os.Getenv("PAIRGATE_ADMIN_TOKEN"))
	if err != nil {
		log.Fatal(err)
	}
	a, err := c.Approve(context.Background(), api.ApproveRequest{Channel: "telegram", Code: "ABCD-2345", Notify: true})
	switch {
	case client.IsNotFound(err):
		fmt.Println("no pending request has that code; check it (wrong codes count towards a lockout)")
	case client.IsLockedOut(err):
		var e *client.APIError
		errors.As(err, &e)
		fmt.Printf("approvals are locked for %s; allow a sender you know instead\n", e.RetryAfter)
	case err != nil:
		log.Fatal(err)
	default:
		fmt.Println("approved", a.Allowed.Sender)
	}
}
