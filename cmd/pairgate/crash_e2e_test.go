package main_test

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/pairgate/pairgate/store"
	"github.com/pairgate/pairgate/store/sqlite"
)

var crashRounds = flag.Int("crash-rounds", 36, "kill -9 rounds of TestAllowIsAllOrNothingUnderKill (the attack ran 36)")

// TestAllowIsAllOrNothingUnderKill kills `pairing allow` with 36 senders at
// random moments: every round leaves all 36 allowed or none, never a part.
func TestAllowIsAllOrNothingUnderKill(t *testing.T) {
	home := t.TempDir()
	if r := run(t, home, "pairing", "list"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	senders := func(round int) []string {
		out := make([]string, 36)
		for i := range out {
			out[i] = fmt.Sprint(round*1000 + 100 + i)
		}
		return out
	}
	allowCmd := func(round int) *exec.Cmd {
		return exec.Command(binary, append([]string{"--home", home, "pairing", "allow", "telegram", "--account", fmt.Sprint("r", round)}, senders(round)...)...)
	}
	// How long a whole run takes here: kills land anywhere within it.
	start := time.Now()
	if out, err := allowCmd(0).CombinedOutput(); err != nil {
		t.Fatalf("pairing allow: %v\n%s", err, out)
	}
	full := time.Since(start)

	st, err := sqlite.Open(context.Background(), sqlite.Options{Path: filepath.Join(home, "pairgate.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	count := func(round int) int {
		t.Helper()
		l, err := st.ListAllowed(context.Background(), store.RequestFilter{Channel: "telegram", Account: fmt.Sprint("r", round)}, false)
		if err != nil {
			t.Fatal(err)
		}
		return len(l)
	}
	if n := count(0); n != 36 {
		t.Fatalf("an uninterrupted run allowed %d of 36", n)
	}
	rng := rand.New(rand.NewPCG(7, uint64(time.Now().UnixNano())))
	var none, whole int
	for round := 1; round <= *crashRounds; round++ {
		cmd := allowCmd(round)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(rng.Int64N(int64(full))))
		cmd.Process.Kill() // SIGKILL
		cmd.Wait()
		switch n := count(round); n {
		case 0:
			none++
		case 36:
			whole++
		default:
			t.Errorf("round %d: killed `pairing allow` of 36 senders left %d allowed", round, n)
		}
	}
	t.Logf("%d rounds of kill -9 within a %v run: %d left none allowed, %d all", *crashRounds, full.Round(time.Millisecond), none, whole)
}
