package server_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestExpectContinueOverTheLimit: a client that announces a body over the
// limit and asks to be told before sending it gets 413 at once, and never
// "100 Continue" (after which the server used to wait 15 s for a body the
// client was right not to send). A body within the limit still gets its
// 100 Continue, so the test would see one.
func TestExpectContinueOverTheLimit(t *testing.T) {
	e := newRobustEnv(t, robustOptions{})
	routes := []struct{ path, token, body string }{
		{"/v1/admit", e.gateway, `{"channel":"telegram","sender":"1"}`},
		{"/v1/pairing/approve", robustAdmin, `{"channel":"telegram","request_id":"req_none"}`},
		{"/v1/pairing/allow", robustAdmin, `{"channel":"telegram","sender":"2"}`},
	}
	for _, rt := range routes {
		t.Run(strings.TrimPrefix(rt.path, "/v1/"), func(t *testing.T) {
			conn, br := expectContinue(t, e.addr, rt.path, rt.token, 70_000)
			defer conn.Close()
			status := readLine(t, br)
			if !strings.HasPrefix(status, "HTTP/1.1 413 ") {
				t.Fatalf("first response line %q, want HTTP/1.1 413 at once", status)
			}
			resp, err := http.ReadResponse(bufio.NewReader(io.MultiReader(strings.NewReader(status+"\r\n"), br)), nil)
			if err != nil {
				t.Fatal(err)
			}
			data, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			wantError(t, "POST "+rt.path+" announcing 70000 bytes", resp.StatusCode, resp.Header, data, 413, "too_large", "65536")
		})
	}

	t.Run("within the limit", func(t *testing.T) {
		rt := routes[0]
		conn, br := expectContinue(t, e.addr, rt.path, rt.token, len(rt.body))
		defer conn.Close()
		if line := readLine(t, br); !strings.HasPrefix(line, "HTTP/1.1 100 ") {
			t.Fatalf("first line %q, want HTTP/1.1 100 Continue", line)
		}
		readLine(t, br) // the blank line after 100 Continue
		if _, err := io.WriteString(conn, rt.body); err != nil {
			t.Fatal(err)
		}
		if line := readLine(t, br); !strings.HasPrefix(line, "HTTP/1.1 200 ") {
			t.Fatalf("after the body: %q, want HTTP/1.1 200", line)
		}
	})
}

// expectContinue sends the headers of a POST that announces length bytes
// of body with Expect: 100-continue, and none of the body.
func expectContinue(t *testing.T, addr, path, token string, length int) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	// Far less than the 15 s the server waited for the body.
	conn.SetDeadline(time.Now().Add(2 * time.Second))
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\n"+
		"Content-Length: %d\r\nExpect: 100-continue\r\n\r\n", path, addr, token, length)
	return conn, bufio.NewReader(conn)
}

func readLine(t *testing.T, br *bufio.Reader) string {
	t.Helper()
	line, err := br.ReadString('\n')
	if err != nil {
		t.Fatalf("reading the response: %v (got %q)", err, line)
	}
	return strings.TrimRight(line, "\r\n")
}
