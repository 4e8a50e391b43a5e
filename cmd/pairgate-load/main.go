// Command pairgate-load measures POST /v1/admit of a running pairgate daemon:
// c connections, kept alive, send admit requests for allowed senders (the
// hot path: answered from memory) mixed with a fraction of unknown senders
// (each one new, so the gate goes to the store: a challenge while the cap of
// pending requests allows, then max_pending drops), until a duration or a
// request count is reached. It prints throughput, latency percentiles,
// errors by kind and the mix of verdicts.
//
// It only ever sends to the -url given (default loopback): no proxy from
// the environment, no redirects followed.
//
// Usage:
//
//	pairgate-load [flags]
//
// Examples:
//
//	pairgate-load -token-file ~/.pairgate/admin.token -seed -allowed 10000
//	PAIRGATE_TOKEN=$(cat gateway.token) pairgate-load -c 128 -d 30s -unknown-ratio 0 -json
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/pairgate/pairgate/channel"
	"github.com/pairgate/pairgate/client"
)

// Exit codes, as the pairgate CLI uses them.
const (
	exitOK     = 0
	exitFailed = 1 // the target refused the token, was unreachable, or no request succeeded
	exitUsage  = 2
)

const userAgent = "pairgate-load"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// config is the parsed command line.
type config struct {
	url          string
	token        string // for /v1/admit: a gateway or the admin token
	adminToken   string // for -seed; "" means token
	conns        int
	duration     time.Duration
	requests     int64 // 0: no count limit
	allowed      uint64
	unknownRatio float64
	channel      string
	account      string
	seed         bool
	timeout      time.Duration
	json         bool
}

// run is the program; main only wires it to the process.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	cfg, err := parseFlags(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintln(stderr, "pairgate-load:", err)
		return exitUsage
	}
	if err := warnCleartext(cfg.url, stderr); err != nil {
		fmt.Fprintln(stderr, "pairgate-load:", err)
		return exitUsage
	}

	tr := newTransport(cfg.conns)
	defer tr.CloseIdleConnections()
	hc := &http.Client{
		Transport: tr,
		// Only ever the URL given.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	gw, err := client.New(cfg.url, cfg.token, client.WithHTTPClient(hc), client.WithUserAgent(userAgent))
	if err != nil {
		fmt.Fprintln(stderr, "pairgate-load:", err)
		return exitUsage
	}
	if cfg.seed {
		admin, err := client.New(cfg.url, cmp.Or(cfg.adminToken, cfg.token), client.WithHTTPClient(hc), client.WithUserAgent(userAgent))
		if err != nil {
			fmt.Fprintln(stderr, "pairgate-load:", err)
			return exitUsage
		}
		if err := seed(ctx, admin, cfg, stderr); err != nil {
			fmt.Fprintln(stderr, "pairgate-load: seeding:", err)
			return exitFailed
		}
	}
	g := newGenerator(cfg, time.Now())
	if err := preflight(ctx, gw, cfg, g, stderr); err != nil {
		fmt.Fprintln(stderr, "pairgate-load: first request:", err)
		return exitFailed
	}

	fmt.Fprintf(stderr, "pairgate-load: POST %s/v1/admit on %s/%s, %d connections, %s\n",
		strings.TrimRight(cfg.url, "/"), cfg.channel, accountName(cfg.account), cfg.conns, limits(cfg))
	res := load(ctx, gw, cfg, g)

	if cfg.json {
		err = res.writeJSON(stdout)
	} else {
		err = res.writeText(stdout)
	}
	if err != nil {
		fmt.Fprintln(stderr, "pairgate-load:", err)
		return exitFailed
	}
	if res.OK == 0 {
		fmt.Fprintln(stderr, "pairgate-load: no request succeeded")
		return exitFailed
	}
	return exitOK
}

func accountName(a string) string { return cmp.Or(a, "default") }

func limits(cfg config) string {
	if cfg.requests > 0 {
		return fmt.Sprintf("%d requests or %s, whichever comes first", cfg.requests, cfg.duration)
	}
	return cfg.duration.String()
}

func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	cfg := config{}
	var tokenFile, adminTokenFile string
	fs := flag.NewFlagSet("pairgate-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.url, "url", "http://127.0.0.1:7420", "base `URL` of the pairgate daemon; requests go there and nowhere else")
	fs.StringVar(&cfg.token, "token", "", "API `token` for /v1/admit (visible in ps: prefer -token-file or $PAIRGATE_TOKEN)")
	fs.StringVar(&tokenFile, "token-file", "", "read the API token from `FILE` (e.g. $PAIRGATE_HOME/admin.token)")
	fs.StringVar(&adminTokenFile, "admin-token-file", "", "admin token `FILE` for -seed when -token is a gateway token (or $PAIRGATE_ADMIN_TOKEN)")
	fs.IntVar(&cfg.conns, "c", 64, "concurrent `connections`, one worker each")
	fs.DurationVar(&cfg.duration, "d", 10*time.Second, "stop after this `duration` (always applies, also with -n)")
	fs.Int64Var(&cfg.requests, "n", 0, "stop after this many `requests` (0: only -d limits the run)")
	fs.Uint64Var(&cfg.allowed, "allowed", 1000, "use allowed senders 1..`N` of the channel")
	fs.Float64Var(&cfg.unknownRatio, "unknown-ratio", 0.1, "`fraction` of requests from unknown senders, each new; these hit the store")
	fs.StringVar(&cfg.channel, "channel", "telegram", "`channel` of every request")
	fs.StringVar(&cfg.account, "account", "", "`account` on the channel (default: the default account)")
	fs.BoolVar(&cfg.seed, "seed", false, "first put senders 1..N on the allowlist with /v1/pairing/allow (needs an admin token)")
	fs.DurationVar(&cfg.timeout, "timeout", 5*time.Second, "`timeout` of each request")
	fs.BoolVar(&cfg.json, "json", false, "print the result as JSON")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: pairgate-load [flags]

Sends POST /v1/admit to a pairgate daemon from -c kept-alive connections for
-d (or -n requests), a fraction -unknown-ratio of them from new senders, the
rest from senders 1..N of -allowed, and prints throughput, latency
percentiles, errors by kind and the verdicts. Unknown senders leave up to
max_pending (3) pending requests behind per run; remove them with
"pairgate pairing clear-pending <channel>".

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q: everything is a flag (see -h)", fs.Arg(0))
	}

	var problems []string
	bad := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }
	var err error
	switch {
	case cfg.token != "" && tokenFile != "":
		bad("-token and -token-file: give one")
	case tokenFile != "":
		if cfg.token, err = readToken(tokenFile); err != nil {
			bad("-token-file: %v", err)
		}
	case cfg.token == "":
		cfg.token = strings.TrimSpace(getenv("PAIRGATE_TOKEN"))
		if cfg.token == "" {
			bad("no token: use -token-file FILE (the admin token is $PAIRGATE_HOME/admin.token), $PAIRGATE_TOKEN or -token")
		}
	}
	if adminTokenFile != "" {
		if cfg.adminToken, err = readToken(adminTokenFile); err != nil {
			bad("-admin-token-file: %v", err)
		}
	} else {
		cfg.adminToken = strings.TrimSpace(getenv("PAIRGATE_ADMIN_TOKEN"))
	}
	if adminTokenFile != "" && !cfg.seed {
		bad("-admin-token-file is only used with -seed")
	}
	if u, err := url.Parse(cfg.url); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("-url %q: want a URL such as http://127.0.0.1:7420", cfg.url)
	}
	if cfg.conns < 1 || cfg.conns > 4096 {
		bad("-c %d: want 1 to 4096 connections", cfg.conns)
	}
	if cfg.duration <= 0 {
		bad("-d %s: want a positive duration; every run is bounded in time", cfg.duration)
	}
	if cfg.requests < 0 {
		bad("-n %d: want 0 (no count limit) or more", cfg.requests)
	}
	if cfg.allowed > maxAllowed {
		bad("-allowed %d: at most %d", cfg.allowed, uint64(maxAllowed))
	}
	if !(cfg.unknownRatio >= 0 && cfg.unknownRatio <= 1) { // also refuses NaN
		bad("-unknown-ratio %v: want a fraction from 0 to 1", cfg.unknownRatio)
	}
	if cfg.allowed == 0 && cfg.unknownRatio < 1 {
		bad("-allowed 0 means every sender is unknown: set -unknown-ratio 1 too")
	}
	if cfg.seed && cfg.allowed == 0 {
		bad("-seed with -allowed 0 has nothing to seed")
	}
	if !slices.Contains(channel.Names(), cfg.channel) {
		bad("-channel %q: want one of %s", cfg.channel, strings.Join(channel.Names(), ", "))
	}
	if cfg.timeout <= 0 {
		bad("-timeout %s: want a positive duration", cfg.timeout)
	}
	switch len(problems) {
	case 0:
		return cfg, nil
	case 1:
		return cfg, errors.New(problems[0])
	default:
		return cfg, errors.New("invalid flags:\n  " + strings.Join(problems, "\n  "))
	}
}

// readToken reads a token file as the daemon writes it: the token and a
// newline.
func readToken(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 4<<10+1))
	if err != nil {
		return "", err
	}
	if len(b) > 4<<10 {
		return "", fmt.Errorf("%s: larger than 4 KiB, not a token file", path)
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "", fmt.Errorf("%s: empty", path)
	}
	return t, nil
}

// warnCleartext says when the token would cross the network unencrypted.
func warnCleartext(raw string, stderr io.Writer) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		fmt.Fprintf(stderr, "pairgate-load: warning: %s is not loopback and the token goes over plain http\n", u.Host)
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// newTransport is the one transport of the run: c connections to the one
// host, all kept alive between requests, HTTP/1.1 (HTTP/2 would multiplex
// the workers onto one connection), no proxy from the environment.
func newTransport(conns int) *http.Transport {
	return &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
		DisableCompression:  true,
	}
}
