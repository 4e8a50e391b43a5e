package cli

import (
	"fmt"
	"io"
	"time"

	"github.com/pairgate/pairgate/api"
	"github.com/pairgate/pairgate/pairing"
)

// printAlready tells the operator that the request was approved before:
// by whom and when, and whether the sender is still admitted.
func printAlready(w io.Writer, ap api.Approval) {
	e := ap.Allowed
	fmt.Fprintf(w, "Already approved: %s on %s/%s was approved by %s at %s", who(e.Sender, e.Name), cell(e.Channel), cell(e.Account),
		cell(e.ApprovedBy), e.ApprovedAt.Local().Format(time.DateTime))
	if e.RevokedAt == nil {
		fmt.Fprintln(w, "; nothing to do.")
		return
	}
	acct := ""
	if e.Account != pairing.DefaultAccount {
		acct = " --account " + cell(e.Account)
	}
	fmt.Fprintf(w, ", but was revoked since by %s at %s: they are not admitted.\nLet them in again with: pairgate pairing allow %s %s%s\n",
		cell(e.RevokedBy), e.RevokedAt.Local().Format(time.DateTime), cell(e.Channel), cell(e.Sender), acct)
}
