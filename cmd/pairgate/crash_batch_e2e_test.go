package main_test

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pairgate/pairgate/api"
)

var batchKillRounds = flag.Int("batch-kill-rounds", 50, "kill -9 rounds of TestKilledDuringBatchedCommits")

// pairgate serve killed with kill -9 while 16 clients make challenges at
// once (their writes share commits, on SQLite and on PostgreSQL) loses
// nothing it acknowledged: every challenge that answered with a request id
// is pending when the daemon comes back.
func TestKilledDuringBatchedCommits(t *testing.T) {
	if testing.Short() {
		t.Skip("kill -9 rounds")
	}
	t.Run("sqlite", func(t *testing.T) { killDuringBatchedCommits(t, t.TempDir()) })
	t.Run("postgres", func(t *testing.T) { killDuringBatchedCommits(t, postgresHome(t)) })
}

func killDuringBatchedCommits(t *testing.T, home string) {
	var gw mintedToken
	runJSON(t, home, &gw, "tokens", "create", "--scope", "gateway", "--name", "gw")
	client := &http.Client{Timeout: 5 * time.Second}
	rng := rand.New(rand.NewPCG(13, uint64(time.Now().UnixNano())))
	acked := map[string]string{} // request id -> sender
	for round := range *batchKillRounds {
		victim := startServe(t, home)
		var mu sync.Mutex
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for c := range 16 {
			wg.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					// An account each: the pending cap never refuses.
					sender := fmt.Sprint(1_000_000*(round+1) + 1000*c + i)
					body := fmt.Sprintf(`{"channel":"telegram","account":"k%s","sender":%q}`, sender, sender)
					status, data, err := victim.do(client, "POST", "/v1/admit", gw.Token, body)
					if err != nil {
						return // killed
					}
					d, derr := strictDecision(data)
					if status == 200 && derr == nil && d.Verdict == api.Challenge {
						mu.Lock()
						acked[d.RequestID] = sender
						mu.Unlock()
					}
				}
			})
		}
		time.Sleep(20*time.Millisecond + time.Duration(rng.Int64N(int64(60*time.Millisecond))))
		victim.cmd.Process.Signal(syscall.SIGKILL)
		<-victim.exited
		close(stop)
		wg.Wait()
	}
	var list api.PendingList
	runJSON(t, home, &list, "pairing", "list")
	pending := map[string]bool{}
	for _, p := range list.Pending {
		pending[p.RequestID] = true
	}
	lost := 0
	for id, sender := range acked {
		if !pending[id] {
			lost++
			if lost <= 5 {
				t.Errorf("the challenge of %s (%s) was acknowledged and is not pending after kill -9", sender, id)
			}
		}
	}
	t.Logf("%d rounds of kill -9 under 16 clients: %d challenges acknowledged, %d lost", *batchKillRounds, len(acked), lost)
	if len(acked) < *batchKillRounds {
		t.Errorf("only %d challenges acknowledged in %d rounds: the test proves little", len(acked), *batchKillRounds)
	}
}
