package main_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// racerEnv holds the request a racer sends. The test binary started with it
// set is one racing client (a separate OS process), not the tests.
const racerEnv = "PAIRGATE_TEST_RACER"

// racerRequest is one POST a racer process sends.
type racerRequest struct {
	URL   string `json:"url"`
	Token string `json:"token"`
	Body  string `json:"body"`
}

// racerAnswer is what the racer got back.
type racerAnswer struct {
	Status int    `json:"status"`
	Body   string `json:"body"`
	Err    string `json:"err,omitempty"`
}

// racer is the racing client: it says "ready", waits for a line on stdin,
// sends its request at once and writes the answer as JSON.
func racer(spec string) int {
	var req racerRequest
	if err := json.Unmarshal([]byte(spec), &req); err != nil {
		fmt.Fprintf(os.Stderr, "racer: %s is not a request: %v\n", racerEnv, err)
		return 2
	}
	r, err := http.NewRequest("POST", req.URL, strings.NewReader(req.Body))
	if err != nil {
		fmt.Fprintln(os.Stderr, "racer:", err)
		return 2
	}
	r.Header.Set("Authorization", "Bearer "+req.Token)
	client := &http.Client{Timeout: 10 * time.Second}
	fmt.Println("ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		fmt.Fprintln(os.Stderr, "racer: no go:", err)
		return 1
	}
	var a racerAnswer
	resp, err := client.Do(r)
	if err == nil {
		var data []byte
		data, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		a.Status, a.Body = resp.StatusCode, string(data)
	}
	if err != nil {
		a.Err = err.Error()
	}
	if err := json.NewEncoder(os.Stdout).Encode(a); err != nil {
		return 1
	}
	return 0
}

// race runs one OS process per request, lets them all go at once (each is
// started and waiting before any is let go) and returns their answers in
// the order of reqs.
func race(t *testing.T, reqs []racerRequest) []racerAnswer {
	t.Helper()
	type proc struct {
		cmd   *exec.Cmd
		stdin io.WriteCloser
		out   *bufio.Reader
		err   bytes.Buffer
	}
	procs := make([]*proc, len(reqs))
	for i, req := range reqs {
		spec, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		p := &proc{cmd: exec.Command(os.Args[0])}
		p.cmd.Env = append(os.Environ(), racerEnv+"="+string(spec))
		p.cmd.Stderr = &p.err
		if p.stdin, err = p.cmd.StdinPipe(); err != nil {
			t.Fatal(err)
		}
		stdout, err := p.cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		p.out = bufio.NewReader(stdout)
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.cmd.Process.Kill(); p.cmd.Wait() })
		procs[i] = p
	}
	for i, p := range procs {
		if line, err := p.out.ReadString('\n'); line != "ready\n" {
			t.Fatalf("racer %d did not get ready: %q %v %s", i, line, err, p.err.String())
		}
	}
	for _, p := range procs {
		io.WriteString(p.stdin, "go\n")
	}
	answers := make([]racerAnswer, len(procs))
	for i, p := range procs {
		line, err := p.out.ReadString('\n')
		if err != nil || json.Unmarshal([]byte(line), &answers[i]) != nil {
			t.Fatalf("racer %d: no answer: %q %v %s", i, line, err, p.err.String())
		}
		if answers[i].Err != "" {
			t.Fatalf("racer %d: %s", i, answers[i].Err)
		}
		if err := p.cmd.Wait(); err != nil {
			t.Fatalf("racer %d: %v %s", i, err, p.err.String())
		}
	}
	return answers
}
