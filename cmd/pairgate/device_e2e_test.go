package main_test

// End-to-end tests of device pairing (SPEC sections 3 and 4): the real
// pairgate binary as the daemon (`serve`), as the operator's CLI and as the
// reference companion device, each in its own process and the device in a
// home of its own, talking over 127.0.0.1 only.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	_ "image/png"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/makiuchi-d/gozxing"
	zxqr "github.com/makiuchi-d/gozxing/qrcode"

	"github.com/pairgate/pairgate/device"
	"github.com/pairgate/pairgate/device/companion"
)

// devCLITimeout bounds every one-shot CLI process in these tests.
const devCLITimeout = 20 * time.Second

// devEnv is the environment of the processes these tests start: the
// test's own, without any PAIRGATE_* variable that could change the URL
// resolution or the home, with debug logs, plus extra.
func devEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PAIRGATE_") {
			env = append(env, kv)
		}
	}
	env = append(env, "PAIRGATE_LOG_LEVEL=debug")
	return append(env, extra...)
}

// devRun runs pairgate --home home args with env (devEnv() when nil),
// killed after devCLITimeout.
func devRun(t *testing.T, home string, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), devCLITimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, append([]string{"--home", home}, args...)...)
	if env == nil {
		env = devEnv()
	}
	cmd.Env = env
	cmd.WaitDelay = time.Second
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	if ctx.Err() != nil {
		t.Fatalf("pairgate %v: still running after %v\nstdout:\n%s\nstderr:\n%s", args, devCLITimeout, r.stdout, r.stderr)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("pairgate %v: %v", args, err)
	}
	return r
}

// devStrict decodes data as exactly one JSON object with no field that v
// does not name.
func devStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("data after the JSON object")
	}
	return nil
}

// devRunJSON runs a command with --json, requires exit 0 and decodes its
// stdout strictly into v.
func devRunJSON(t *testing.T, home string, env []string, v any, args ...string) result {
	t.Helper()
	r := devRun(t, home, env, append(args, "--json")...)
	if r.code != 0 {
		t.Fatalf("pairgate %v --json: exit %d\nstdout:\n%s\nstderr:\n%s", args, r.code, r.stdout, r.stderr)
	}
	if err := devStrict([]byte(r.stdout), v); err != nil {
		t.Fatalf("pairgate %v --json: %v\n%s", args, err, r.stdout)
	}
	return r
}

// devSetup is the JSON of `setup-code --json` and POST /v1/setup-codes.
type devSetup struct {
	SetupCode string    `json:"setup_code"`
	URL       string    `json:"url"`
	URLSource string    `json:"url_source"`
	ExpiresAt time.Time `json:"expires_at"`
}

// devRequest and devDevice are the SPEC's shapes of `devices list --json`
// and GET /v1/devices.
type devRequest struct {
	RequestID string    `json:"request_id"`
	DeviceID  string    `json:"device_id"`
	Name      string    `json:"name"`
	Platform  string    `json:"platform"`
	Role      string    `json:"role"`
	Label     string    `json:"label"`
	CheckCode string    `json:"check_code"`
	Remote    string    `json:"remote"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

type devDevice struct {
	DeviceID   string     `json:"device_id"`
	Name       string     `json:"name"`
	Platform   string     `json:"platform"`
	Role       string     `json:"role"`
	Scopes     []string   `json:"scopes"`
	Label      string     `json:"label"`
	PairedAt   time.Time  `json:"paired_at"`
	LastSeenAt time.Time  `json:"last_seen_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
}

type devListing struct {
	Requests []devRequest `json:"requests"`
	Devices  []devDevice  `json:"devices"`
}

type devRotated struct {
	DeviceID    string `json:"device_id"`
	DeviceToken string `json:"device_token"`
}

// devAddr is the host:port of a running daemon.
func devAddr(d *serveProc) string { return strings.TrimPrefix(d.url, "http://") }

// devCompanionProc is a running `pairgate companion pair`.
type devCompanionProc struct {
	cmd            *exec.Cmd
	home           string
	stdout, stderr *serveBuf
	checkCode      chan string // the check code it printed (once)
	deviceID       chan string // the device id it announced (once)
	exited         chan struct{}
	exitCode       int
}

var (
	devCheckCodeLine = regexp.MustCompile(`^Check code: (\d{6}) `)
	devDeviceIDLine  = regexp.MustCompile(`as device ([0-9a-f]{64})$`)
)

// startCompanion starts `pairgate --home home companion pair code --name
// name`, reading its stderr line by line for the device id and the check
// code. The process is killed after 40 s at the latest.
func startCompanion(t *testing.T, home, code, name string) *devCompanionProc {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	c := &devCompanionProc{home: home, stdout: &serveBuf{}, stderr: &serveBuf{},
		checkCode: make(chan string, 1), deviceID: make(chan string, 1), exited: make(chan struct{})}
	c.cmd = exec.CommandContext(ctx, binary, "--home", home, "companion", "pair", code, "--name", name)
	c.cmd.Env = devEnv()
	c.cmd.WaitDelay = time.Second
	c.cmd.Stdout = c.stdout
	pipe, err := c.cmd.StderrPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	go func() {
		defer cancel()
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			line := sc.Text()
			c.stderr.Write([]byte(line + "\n"))
			if m := devCheckCodeLine.FindStringSubmatch(line); m != nil {
				select {
				case c.checkCode <- m[1]:
				default:
				}
			}
			if m := devDeviceIDLine.FindStringSubmatch(line); m != nil {
				select {
				case c.deviceID <- m[1]:
				default:
				}
			}
		}
		// Wait only after every read from the pipe is done.
		c.cmd.Wait()
		c.exitCode = c.cmd.ProcessState.ExitCode()
		close(c.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-c.exited:
		default:
			c.cmd.Process.Kill()
			<-c.exited
		}
	})
	return c
}

// waitCheckCode returns the check code the companion printed.
func (c *devCompanionProc) waitCheckCode(t *testing.T) string {
	t.Helper()
	select {
	case code := <-c.checkCode:
		return code
	case <-c.exited:
		t.Fatalf("companion exited with %d before printing a check code\nstdout:\n%s\nstderr:\n%s", c.exitCode, c.stdout, c.stderr)
	case <-time.After(20 * time.Second):
		t.Fatalf("companion printed no check code within 20 s\nstderr:\n%s", c.stderr)
	}
	return ""
}

// wait waits for the companion to exit and returns its exit code.
func (c *devCompanionProc) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-c.exited:
		return c.exitCode
	case <-time.After(30 * time.Second):
		t.Fatalf("companion still running 30 s after the decision\nstderr:\n%s", c.stderr)
	}
	return 0
}

// pollRequests runs list (a CLI or an API call) until a pending request
// shows, and returns the listing.
func pollRequests(t *testing.T, list func() devListing) devListing {
	t.Helper()
	var l devListing
	for start := time.Now(); time.Since(start) < 10*time.Second; time.Sleep(50 * time.Millisecond) {
		if l = list(); len(l.Requests) > 0 {
			return l
		}
	}
	t.Fatalf("no pending device request listed within 10 s: %+v", l)
	return l
}

// devAuthErr authenticates and returns the protocol error code of the
// refusal ("" on success); any other failure is fatal.
func devAuthErr(t *testing.T, url, keyFile, deviceID, token string) (string, string) {
	t.Helper()
	key, err := companion.LoadKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	role, _, err := companion.Auth(ctx, url, key, deviceID, token)
	if err == nil {
		return role, ""
	}
	var pe *companion.ProtocolError
	if !errors.As(err, &pe) {
		t.Fatalf("auth: %v (%T), want success or a *companion.ProtocolError", err, err)
	}
	return "", pe.Code
}

// devOutput is one process's output, for the leak checks.
type devOutput struct{ what, text string }

// noLeaks fails if any secret appears in any output, except in the outputs
// named in allowed[secret] (where the product prints it on purpose).
func noLeaks(t *testing.T, outputs []devOutput, secrets map[string]string, allowed map[string][]string) {
	t.Helper()
	for name, s := range secrets {
		if s == "" {
			t.Errorf("secret %s is empty: the test did not capture it", name)
			continue
		}
		for _, o := range outputs {
			if strings.Contains(o.text, s) && !slices.Contains(allowed[name], o.what) {
				t.Errorf("the %s appears in the output of %s", name, o.what)
			}
		}
	}
}

// TestDevicePairingEndToEnd: the daemon, the operator's CLI and a companion
// in another home pair a device by comparing check codes; the setup code is
// single use; the saved token authenticates, a rotation retires it and a
// revocation disables the device; no secret reaches a log or output it
// should not.
func TestDevicePairingEndToEnd(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	d := startServe(t, home)
	var outputs []devOutput
	add := func(what string, r result) result {
		outputs = append(outputs, devOutput{what + " stdout", r.stdout}, devOutput{what + " stderr", r.stderr})
		return r
	}

	var setup devSetup
	add("setup-code", devRunJSON(t, home, nil, &setup, "setup-code", "--public-url", "ws://"+devAddr(d)))
	wantURL := "ws://" + devAddr(d) + "/pair"
	if setup.URL != wantURL || setup.URLSource != "flag" || setup.SetupCode == "" {
		t.Fatalf("setup-code: %+v, want url %s from flag", setup, wantURL)
	}
	sc, err := device.DecodeSetupCode(setup.SetupCode)
	if err != nil || sc.Token == "" || sc.URL != wantURL {
		t.Fatalf("the setup code does not decode: %+v %v", sc, err)
	}

	// The device, in a home of its own, pairs and shows its check code.
	devHome := t.TempDir()
	comp := startCompanion(t, devHome, setup.SetupCode, "E2E Phone")
	shown := comp.waitCheckCode(t)
	var announced string
	select {
	case announced = <-comp.deviceID:
	default:
		t.Errorf("the companion did not say which device it pairs as:\n%s", comp.stderr)
	}

	// The operator, in a third process, sees the same code beside the request.
	l := pollRequests(t, func() devListing {
		var l devListing
		add("devices list", devRunJSON(t, home, nil, &l, "devices", "list"))
		return l
	})
	if len(l.Requests) != 1 || len(l.Devices) != 0 {
		t.Fatalf("devices list while pending: %+v", l)
	}
	req := l.Requests[0]
	if req.CheckCode != shown {
		t.Fatalf("the operator sees check code %q, the device shows %q", req.CheckCode, shown)
	}
	keyFile := filepath.Join(devHome, "companion", "device.key")
	key, err := companion.LoadKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	deviceID := companion.DeviceID(key.Public().(ed25519.PublicKey))
	if req.DeviceID != deviceID || announced != deviceID || req.Name != "E2E Phone" || req.Platform != runtime.GOOS || req.Role != "node" ||
		!strings.HasPrefix(req.RequestID, "dreq_") {
		t.Errorf("pending request %+v: want device %s (announced %s), name E2E Phone, platform %s, role node", req, deviceID, announced, runtime.GOOS)
	}
	if req.Remote != "127.0.0.1" {
		t.Errorf("pending request from %q, want the companion's address 127.0.0.1", req.Remote)
	}
	if exp := req.ExpiresAt.Sub(req.CreatedAt); exp < 9*time.Minute || exp > 11*time.Minute {
		t.Errorf("pending request lives %v, want 10 min", exp)
	}

	r := add("devices approve", devRun(t, home, nil, "devices", "approve", req.RequestID))
	if r.code != 0 || !strings.Contains(r.stdout, "Approved "+req.RequestID) || !strings.Contains(r.stdout, shown) {
		t.Fatalf("devices approve: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	code := comp.wait(t)
	outputs = append(outputs, devOutput{"companion pair stdout", comp.stdout.String()}, devOutput{"companion pair stderr", comp.stderr.String()})
	tokenFile := keyFile + ".token"
	if code != 0 || !strings.Contains(comp.stdout.String(), "Paired and authenticated as device "+deviceID) ||
		!strings.Contains(comp.stdout.String(), tokenFile) {
		t.Fatalf("companion pair: exit %d\nstdout:\n%s\nstderr:\n%s", code, comp.stdout, comp.stderr)
	}
	for _, f := range []string{keyFile, tokenFile} {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %04o, want 0600", f, fi.Mode().Perm())
		}
	}
	raw, err := os.ReadFile(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	var creds companion.Credentials
	if err := devStrict(raw, &creds); err != nil {
		t.Fatalf("token file is not one credentials object: %v\n%s", err, raw)
	}
	if creds.Version != 1 || creds.URL != wantURL || creds.DeviceID != deviceID || creds.Role != "node" || creds.Scopes == nil ||
		len(creds.DeviceToken) != 43 || creds.PairedAt.IsZero() {
		t.Fatalf("credentials %+v", creds)
	}

	var after devListing
	add("devices list", devRunJSON(t, home, nil, &after, "devices", "list"))
	if len(after.Requests) != 0 || len(after.Devices) != 1 {
		t.Fatalf("devices list after approval: %+v", after)
	}
	if dv := after.Devices[0]; dv.DeviceID != deviceID || dv.Name != "E2E Phone" || dv.Role != "node" || dv.RevokedAt != nil || dv.PairedAt.IsZero() {
		t.Errorf("paired device %+v", dv)
	}

	// The setup code is single use, whoever presents it.
	r = add("companion pair (replay)", devRun(t, t.TempDir(), nil, "companion", "pair", setup.SetupCode, "--name", "Thief"))
	if r.code != 1 || !strings.Contains(r.stderr, "token_used") {
		t.Fatalf("replayed setup code: exit %d, stderr %q; want exit 1 with token_used", r.code, r.stderr)
	}
	add("devices list", devRunJSON(t, home, nil, &after, "devices", "list"))
	if len(after.Requests) != 0 || len(after.Devices) != 1 {
		t.Fatalf("a replayed code changed the devices: %+v", after)
	}

	// The saved token authenticates over the real socket.
	if role, perr := devAuthErr(t, creds.URL, keyFile, deviceID, creds.DeviceToken); perr != "" || role != "node" {
		t.Fatalf("auth with the saved token: role %q, refusal %q", role, perr)
	}

	// Rotation: the old token is refused at once, the new one works.
	var rot devRotated
	rr := devRunJSON(t, home, nil, &rot, "devices", "rotate", deviceID)
	add("devices rotate", rr)
	if rot.DeviceID != deviceID || len(rot.DeviceToken) != 43 || rot.DeviceToken == creds.DeviceToken {
		t.Fatalf("devices rotate: %+v", rot)
	}
	if _, perr := devAuthErr(t, creds.URL, keyFile, deviceID, creds.DeviceToken); perr != "not_paired" {
		t.Errorf("auth with the token before rotation: refusal %q, want not_paired", perr)
	}
	if role, perr := devAuthErr(t, creds.URL, keyFile, deviceID, rot.DeviceToken); perr != "" || role != "node" {
		t.Errorf("auth with the rotated token: role %q, refusal %q", role, perr)
	}

	// Revocation disables the device at once.
	r = add("devices revoke", devRun(t, home, nil, "devices", "revoke", deviceID))
	if r.code != 0 {
		t.Fatalf("devices revoke: exit %d %s", r.code, r.stderr)
	}
	if _, perr := devAuthErr(t, creds.URL, keyFile, deviceID, rot.DeviceToken); perr != "revoked" {
		t.Errorf("auth after revocation: refusal %q, want revoked", perr)
	}
	add("devices list", devRunJSON(t, home, nil, &after, "devices", "list"))
	if len(after.Devices) != 1 || after.Devices[0].RevokedAt == nil {
		t.Errorf("devices list after revoke: %+v", after)
	}

	if code, _ := d.stop(10 * time.Second); code != 0 {
		t.Errorf("serve exited %d after SIGTERM", code)
	}
	log := d.stderr.String()
	if !strings.Contains(log, "level=DEBUG") {
		t.Errorf("expected debug lines in the daemon's log:\n%s", serveTail(log, 10))
	}
	if !strings.Contains(log, deviceID) {
		t.Errorf("the daemon's log does not mention the device at all:\n%s", serveTail(log, 20))
	}
	outputs = append(outputs, devOutput{"serve stderr", log}, devOutput{"serve stdout", d.stdout.String()})
	noLeaks(t, outputs, map[string]string{
		"setup code":           setup.SetupCode,
		"setup token":          sc.Token,
		"device token":         creds.DeviceToken,
		"rotated device token": rot.DeviceToken,
	}, map[string][]string{
		"setup code":           {"setup-code stdout"},
		"rotated device token": {"devices rotate stdout"},
	})
}

// TestDeviceRejectAndExpire: a rejected device learns it on its open
// socket and gets no token; the setup code stays spent. (A request's
// 10-minute expiry is covered by the unit tests with a fake clock.)
func TestDeviceRejectAndExpire(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	d := startServe(t, home)
	var setup devSetup
	devRunJSON(t, home, nil, &setup, "setup-code", "--public-url", "ws://"+devAddr(d), "--label", "reject me")

	devHome := t.TempDir()
	comp := startCompanion(t, devHome, setup.SetupCode, "Unwanted")
	shown := comp.waitCheckCode(t)
	l := pollRequests(t, func() devListing {
		var l devListing
		devRunJSON(t, home, nil, &l, "devices", "list")
		return l
	})
	if len(l.Requests) != 1 || l.Requests[0].CheckCode != shown {
		t.Fatalf("devices list: %+v, want one request with check code %s", l, shown)
	}
	id := l.Requests[0].RequestID
	if r := devRun(t, home, nil, "devices", "reject", id); r.code != 0 || !strings.Contains(r.stdout, "Rejected "+id) || strings.Contains(r.stdout, "token") {
		t.Fatalf("devices reject: exit %d, want 0 saying it rejected %s and nothing of a token\nstdout:\n%s\nstderr:\n%s", r.code, id, r.stdout, r.stderr)
	}
	if code := comp.wait(t); code != 1 || !strings.Contains(comp.stderr.String(), "rejected") {
		t.Fatalf("companion after rejection: exit %d, want 1 mentioning rejected\nstdout:\n%s\nstderr:\n%s", code, comp.stdout, comp.stderr)
	}
	if comp.stdout.String() != "" {
		t.Errorf("a rejected companion printed on stdout: %q", comp.stdout)
	}
	if _, err := os.Stat(filepath.Join(devHome, "companion", "device.key.token")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a rejected companion has a token file (stat: %v)", err)
	}
	var after devListing
	devRunJSON(t, home, nil, &after, "devices", "list")
	if len(after.Requests) != 0 || len(after.Devices) != 0 {
		t.Errorf("devices list after rejection: %+v", after)
	}
	// A rejected request cannot be approved afterwards...
	if r := devRun(t, home, nil, "devices", "approve", id); r.code != 1 || !strings.Contains(r.stderr, "pairgate devices list") {
		t.Errorf("approving a rejected request: exit %d, stderr %q; want exit 1 pointing at devices list", r.code, r.stderr)
	}
	// ...and its setup code was spent by the pairing attempt.
	if r := devRun(t, t.TempDir(), nil, "companion", "pair", setup.SetupCode); r.code != 1 || !strings.Contains(r.stderr, "token_used") {
		t.Errorf("setup code after rejection: exit %d, stderr %q; want exit 1 with token_used", r.code, r.stderr)
	}
}

// TestDeviceKeysAndForeignCodes: across processes, `keys rotate` makes key
// 2 sign while a code of key 1 is outstanding, and both codes pair at once
// with the running daemon (it needs no reload to know a key); a code another
// home issued for this daemon's URL, and a code whose token has one bit
// flipped, are refused with invalid_token.
func TestDeviceKeysAndForeignCodes(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	d := startServe(t, home)
	url := "ws://" + devAddr(d)
	kidOf := func(code string) byte {
		t.Helper()
		sc, err := device.DecodeSetupCode(code)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(sc.Token, "pg2_"))
		if err != nil || len(raw) != 33 {
			t.Fatalf("token %q is not pg2_ and 33 bytes: %v", sc.Token, err)
		}
		return raw[0]
	}
	var before, after devSetup
	devRunJSON(t, home, nil, &before, "setup-code", "--public-url", url)
	var rotated struct {
		KID int `json:"kid"`
	}
	devRunJSON(t, home, nil, &rotated, "keys", "rotate")
	devRunJSON(t, home, nil, &after, "setup-code", "--public-url", url)
	if k1, k2 := kidOf(before.SetupCode), kidOf(after.SetupCode); k1 != 1 || rotated.KID != 2 || k2 != 2 {
		t.Errorf("codes signed by keys %d and %d around a rotation to key %d; want 1, 2 and 2", k1, k2, rotated.KID)
	}
	if r := devRun(t, home, nil, "keys", "rotate"); r.code != 0 || !strings.Contains(r.stdout, "signing key 3.") {
		t.Errorf("keys rotate: exit %d, stdout %q; want the new key 3", r.code, r.stdout)
	}
	for i, code := range []string{before.SetupCode, after.SetupCode} {
		comp := startCompanion(t, t.TempDir(), code, fmt.Sprint("Rotated ", i))
		comp.waitCheckCode(t)
	}

	other := t.TempDir()
	var foreign devSetup
	devRunJSON(t, other, nil, &foreign, "setup-code", "--public-url", url)
	var fresh devSetup
	devRunJSON(t, home, nil, &fresh, "setup-code", "--public-url", url)
	// The last character holds the tag's last bits: flip the lowest.
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	sc, _ := device.DecodeSetupCode(fresh.SetupCode)
	end := len(sc.Token) - 1
	sc.Token = sc.Token[:end] + string(alphabet[strings.IndexByte(alphabet, sc.Token[end])^1])
	retagged, err := device.EncodeSetupCode(sc)
	if err != nil {
		t.Fatal(err)
	}
	for what, code := range map[string]string{"another home's code": foreign.SetupCode, "a retagged code": retagged} {
		if r := devRun(t, t.TempDir(), nil, "companion", "pair", code); r.code != 1 || !strings.Contains(r.stderr, "invalid_token") {
			t.Errorf("%s: exit %d, stderr %q; want exit 1 with invalid_token", what, r.code, r.stderr)
		}
	}
	// The refusals left the fresh code unused.
	comp := startCompanion(t, t.TempDir(), fresh.SetupCode, "After forgeries")
	comp.waitCheckCode(t)
}

// TestSetupCodeFitsTerminal: for a 40-character URL the QR code that
// `setup-code` prints is at most 80 columns wide, quiet zone included (a
// JWT setup code made it 89-93, and it wrapped), and both that text,
// turned back into an image, and the --png file decode with an independent
// decoder to exactly the setup code printed above them.
func TestSetupCodeFitsTerminal(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	png := filepath.Join(t.TempDir(), "setup.png")
	r := devRun(t, home, nil, "setup-code", "--public-url", "wss://gateway-home.example.com:7420", "--png", png)
	if r.code != 0 {
		t.Fatalf("setup-code: exit %d\n%s", r.code, r.stderr)
	}
	out := strings.Split(r.stdout, "\n")
	if len(out) < 3 {
		t.Fatalf("setup-code printed %q", r.stdout)
	}
	code := out[2] // after the heading and a blank line
	sc, err := device.DecodeSetupCode(code)
	if err != nil || len(sc.URL) != 40 {
		t.Fatalf("the printed code %q: %+v, %v; want one for a 40-character URL", code, sc, err)
	}
	// The QR code: the lines drawn only with half blocks and spaces.
	var qrLines []string
	for _, l := range out {
		if l != "" && strings.Trim(l, " ▀▄█") == "" {
			qrLines = append(qrLines, l)
		}
	}
	width := 0
	for _, l := range qrLines {
		width = max(width, utf8.RuneCountInString(l))
	}
	t.Logf("%d-character setup code: QR %d columns by %d lines", len(code), width, len(qrLines))
	if width == 0 || width > 80 {
		t.Fatalf("the QR code is %d columns wide; want at most 80, quiet zone included", width)
	}
	if got := decodeQR(t, terminalImage(t, qrLines)); got != code {
		t.Errorf("the terminal QR code reads %q; setup-code printed %q", got, code)
	}
	data, err := os.ReadFile(png)
	if err != nil {
		t.Fatal(err)
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if got := decodeQR(t, img); got != code {
		t.Errorf("the PNG reads %q; setup-code printed %q", got, code)
	}
}

// terminalImage draws half-block lines as a picture, 4 pixels per module:
// a character is two modules, its glyph's ink (top, bottom or both halves)
// dark, the rest light, as the terminal shows them (the escapes make it
// black on white; here stdout is no terminal, so there are none).
func terminalImage(t *testing.T, lines []string) image.Image {
	t.Helper()
	const px = 4
	cols := utf8.RuneCountInString(lines[0])
	img := image.NewGray(image.Rect(0, 0, cols*px, 2*len(lines)*px))
	for i := range img.Pix {
		img.Pix[i] = 0xff
	}
	for row, l := range lines {
		if utf8.RuneCountInString(l) != cols {
			t.Fatalf("QR line %d is %d columns wide, line 0 is %d", row, utf8.RuneCountInString(l), cols)
		}
		for col, r := range []rune(l) {
			top, bottom := r == '█' || r == '▀', r == '█' || r == '▄'
			for half, dark := range []bool{top, bottom} {
				if !dark {
					continue
				}
				y0 := (2*row + half) * px
				for y := y0; y < y0+px; y++ {
					for x := col * px; x < (col+1)*px; x++ {
						img.SetGray(x, y, color.Gray{})
					}
				}
			}
		}
	}
	return img
}

// decodeQR reads a rendered QR code with gozxing. PURE_BARCODE: the image
// is a code we rendered, upright and unskewed; gozxing's finder-pattern
// search (for photos) misses about 1.5% of such codes, which phone scanners
// read, and the pure path reads them all.
func decodeQR(t *testing.T, img image.Image) string {
	t.Helper()
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	res, err := zxqr.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_PURE_BARCODE: true})
	if err != nil {
		t.Fatalf("gozxing cannot read the QR code: %v", err)
	}
	return res.GetText()
}

// TestSetupCodePNG: --png writes a private PNG whose QR code decodes (with
// an independent decoder) to exactly the printed setup code, and never
// overwrites; the public URL comes from the first of the four sources set,
// is refused when none is, and cleartext to a public host is refused.
func TestSetupCodePNG(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	png := filepath.Join(t.TempDir(), "setup.png")
	var setup devSetup
	devRunJSON(t, home, nil, &setup, "setup-code", "--public-url", "wss://gw.example.com", "--png", png)
	if setup.URL != "wss://gw.example.com/pair" || setup.URLSource != "flag" {
		t.Errorf("setup-code: %+v", setup)
	}
	if left := time.Until(setup.ExpiresAt); left < 9*time.Minute || left > 10*time.Minute+time.Second {
		t.Errorf("setup code expires in %v, want 10 min", left)
	}
	fi, err := os.Stat(png)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %04o, want 0600", png, fi.Mode().Perm())
	}
	data, err := os.ReadFile(png)
	if err != nil {
		t.Fatal(err)
	}
	img, format, err := image.Decode(bytes.NewReader(data))
	if err != nil || format != "png" {
		t.Fatalf("%s is not a PNG image: %v (%s)", png, err, format)
	}
	text := decodeQR(t, img)
	if text != setup.SetupCode {
		t.Fatalf("the PNG holds %q, setup-code printed %q", text, setup.SetupCode)
	}
	if sc, err := device.DecodeSetupCode(text); err != nil || sc.URL != setup.URL {
		t.Errorf("the scanned code decodes to %+v, %v", sc, err)
	}

	r := devRun(t, home, nil, "setup-code", "--public-url", "wss://gw.example.com", "--png", png, "--json")
	if r.code != 1 || !strings.Contains(r.stderr, png) || r.stdout != "" {
		t.Errorf("a second --png to the same file: exit %d, stdout %q, stderr %q; want exit 1 naming the file, no output", r.code, r.stdout, r.stderr)
	}
	if again, err := os.ReadFile(png); err != nil || !bytes.Equal(again, data) {
		t.Errorf("the existing PNG was changed (err %v)", err)
	}

	// No URL from anywhere: refused, naming the four ways to set one.
	bare := t.TempDir()
	r = devRun(t, bare, nil, "setup-code", "--json")
	tunnelFile := filepath.Join(bare, "state", "tunnel.url")
	for _, want := range []string{"--public-url", "public_url", "PAIRGATE_TUNNEL_URL", tunnelFile} {
		if r.code != 1 || !strings.Contains(r.stderr, want) {
			t.Errorf("setup-code without a URL: exit %d, stderr %q; want exit 1 naming %q", r.code, r.stderr, want)
		}
	}
	if r.stdout != "" {
		t.Errorf("setup-code without a URL printed %q", r.stdout)
	}

	// The environment.
	envT := devEnv("PAIRGATE_TUNNEL_URL=https://t.example.com")
	devRunJSON(t, bare, envT, &setup, "setup-code")
	if setup.URL != "wss://t.example.com/pair" || setup.URLSource != "env" {
		t.Errorf("with PAIRGATE_TUNNEL_URL: %+v, want wss://t.example.com/pair from env", setup)
	}

	// The tunnel file, behind the environment and the flag.
	if err := os.MkdirAll(filepath.Dir(tunnelFile), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tunnelFile, []byte("https://tunnel.example.net\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	devRunJSON(t, bare, nil, &setup, "setup-code")
	if setup.URL != "wss://tunnel.example.net/pair" || setup.URLSource != "tunnel_file" {
		t.Errorf("with %s: %+v, want wss://tunnel.example.net/pair from tunnel_file", tunnelFile, setup)
	}
	devRunJSON(t, bare, envT, &setup, "setup-code")
	if setup.URLSource != "env" {
		t.Errorf("the environment must win over the tunnel file: %+v", setup)
	}
	devRunJSON(t, bare, envT, &setup, "setup-code", "--public-url", "wss://[::1]:7420")
	if setup.URLSource != "flag" || setup.URL != "wss://[::1]:7420/pair" {
		t.Errorf("the flag must win over the rest: %+v", setup)
	}

	// Cleartext to a public host carries the setup token in the clear.
	r = devRun(t, bare, nil, "setup-code", "--public-url", "ws://203.0.113.5", "--json")
	if r.code != 1 || !strings.Contains(r.stderr, "203.0.113.5") || !strings.Contains(r.stderr, "wss://") || r.stdout != "" {
		t.Errorf("ws://203.0.113.5: exit %d, stdout %q, stderr %q; want exit 1 suggesting wss://", r.code, r.stdout, r.stderr)
	}
}

// TestDeviceAPI: the device routes of the HTTP API with the admin token,
// refused to a gateway token, and the device metrics.
func TestDeviceAPI(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	var gw mintedToken
	runJSON(t, home, &gw, "tokens", "create", "--scope", "gateway", "--name", "device-api")
	d := startServe(t, home)
	admin := d.adminToken()
	client := &http.Client{Timeout: 10 * time.Second}
	call := func(method, path, token, body string, want int) []byte {
		t.Helper()
		status, data, err := d.do(client, method, path, token, body)
		if err != nil || status != want {
			t.Fatalf("%s %s: %d %s (err %v), want %d", method, path, status, data, err, want)
		}
		return data
	}
	listAPI := func() devListing {
		t.Helper()
		var l devListing
		if err := devStrict(call("GET", "/v1/devices", admin, "", 200), &l); err != nil {
			t.Fatalf("GET /v1/devices: %v", err)
		}
		return l
	}

	// A request that cannot be right is refused naming the field, before
	// the URL is looked at.
	for body, names := range map[string]string{
		`{"ttl":"2h"}`: "at most 1h", `{"ttl":"0s"}`: `field \"ttl\"`, `{"ttl":"soon"}`: `field \"ttl\"`, `{"role":"admin"}`: "node or operator",
	} {
		data := call("POST", "/v1/setup-codes", admin, body, http.StatusBadRequest)
		if !strings.Contains(string(data), `"invalid_input"`) || !strings.Contains(string(data), names) {
			t.Errorf("POST /v1/setup-codes %s: %s, want invalid_input naming %s", body, data, names)
		}
	}
	// Without a public URL the daemon refuses to guess one.
	data := call("POST", "/v1/setup-codes", admin, `{"role":"operator","ttl":"5m"}`, http.StatusConflict)
	if !strings.Contains(string(data), `"not_configured"`) {
		t.Errorf("setup code without a public URL: %s", data)
	}
	// A tunnel keeps state/tunnel.url current; the daemon reads it each time.
	if err := os.MkdirAll(filepath.Join(home, "state"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, "state", "tunnel.url"), []byte("ws://"+devAddr(d)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	before := time.Now()
	var setup devSetup
	if err := devStrict(call("POST", "/v1/setup-codes", admin, `{"role":"operator","ttl":"5m"}`, 200), &setup); err != nil {
		t.Fatalf("POST /v1/setup-codes: %v", err)
	}
	wantURL := "ws://" + devAddr(d) + "/pair"
	if setup.SetupCode == "" || setup.URL != wantURL || setup.URLSource != "tunnel_file" {
		t.Errorf("POST /v1/setup-codes: %+v, want url %s from tunnel_file", setup, wantURL)
	}
	if setup.ExpiresAt.Before(before.Add(5*time.Minute-2*time.Second)) || setup.ExpiresAt.After(time.Now().Add(5*time.Minute+time.Second)) {
		t.Errorf("expires_at %v, want about 5 min after %v", setup.ExpiresAt, before)
	}
	sc, err := device.DecodeSetupCode(setup.SetupCode)
	if err != nil {
		t.Fatal(err)
	}

	var raw map[string]json.RawMessage
	if err := json.Unmarshal(call("GET", "/v1/devices", admin, "", 200), &raw); err != nil ||
		string(raw["requests"]) != "[]" || string(raw["devices"]) != "[]" || len(raw) != 2 {
		t.Errorf("GET /v1/devices on an empty store: %v %v; want {\"requests\":[],\"devices\":[]}", raw, err)
	}

	// A gateway token may only admit; no token at all is 401.
	gwRoutes := [][2]string{
		{"POST", "/v1/setup-codes"}, {"GET", "/v1/devices"},
		{"POST", "/v1/devices/requests/dreq_x/approve"}, {"POST", "/v1/devices/requests/dreq_x/reject"},
	}
	for _, rt := range gwRoutes {
		body := ""
		if rt[0] == "POST" {
			body = "{}"
		}
		call(rt[0], rt[1], gw.Token, body, http.StatusForbidden)
		call(rt[0], rt[1], "", body, http.StatusUnauthorized)
	}

	devHome := t.TempDir()
	comp := startCompanion(t, devHome, setup.SetupCode, "API Tablet")
	shown := comp.waitCheckCode(t)
	l := pollRequests(t, listAPI)
	if len(l.Requests) != 1 || l.Requests[0].CheckCode != shown || l.Requests[0].Role != "operator" || l.Requests[0].Name != "API Tablet" {
		t.Fatalf("GET /v1/devices while pending: %+v, want one operator request with check code %s", l, shown)
	}
	req := l.Requests[0]
	call("POST", "/v1/devices/requests/"+req.RequestID+"/approve", gw.Token, "", http.StatusForbidden)
	call("POST", "/v1/devices/requests/dreq_nosuchrequest/approve", admin, "", http.StatusNotFound)
	var approved struct {
		Approved devRequest `json:"approved"`
	}
	if err := devStrict(call("POST", "/v1/devices/requests/"+req.RequestID+"/approve", admin, "", 200), &approved); err != nil {
		t.Fatal(err)
	}
	if approved.Approved.RequestID != req.RequestID || approved.Approved.CheckCode != shown {
		t.Errorf("approve answered %+v", approved)
	}
	if code := comp.wait(t); code != 0 || !strings.Contains(comp.stdout.String(), "(role operator)") {
		t.Fatalf("companion: exit %d\nstdout:\n%s\nstderr:\n%s", code, comp.stdout, comp.stderr)
	}
	keyFile := filepath.Join(devHome, "companion", "device.key")
	creds, err := companion.ReadCredentials(keyFile + ".token")
	if err != nil {
		t.Fatal(err)
	}
	if creds.DeviceID != req.DeviceID || creds.Role != "operator" {
		t.Fatalf("credentials %+v", creds)
	}
	l = listAPI()
	if len(l.Requests) != 0 || len(l.Devices) != 1 || l.Devices[0].DeviceID != req.DeviceID || l.Devices[0].Role != "operator" {
		t.Fatalf("GET /v1/devices after approval: %+v", l)
	}

	// Metrics follow the change log: the setup code, the paired device.
	metric := func(ok func(map[string]float64) bool) map[string]float64 {
		t.Helper()
		var got map[string]float64
		for start := time.Now(); time.Since(start) < 3*time.Second; time.Sleep(50 * time.Millisecond) {
			got = promSamples(t, string(call("GET", "/metrics", "", "", 200)))
			if ok(got) {
				break
			}
		}
		return got
	}
	issued := promKey("pairing_bootstrap_tokens_issued_total", map[string]string{"profile": "operator"})
	paired := promKey("pairgate_devices_paired", nil)
	got := metric(func(m map[string]float64) bool { return m[issued] >= 1 && m[paired] == 1 })
	if got[issued] < 1 {
		t.Errorf("%s = %v, want ≥ 1", issued, got[issued])
	}
	if v, ok := got[paired]; !ok || v != 1 {
		t.Errorf("%s = %v (present %t), want 1", paired, v, ok)
	}

	// Rotate and revoke: refused to the gateway token (and nothing changes),
	// done with the admin token.
	call("POST", "/v1/devices/"+req.DeviceID+"/rotate", gw.Token, "", http.StatusForbidden)
	call("POST", "/v1/devices/"+req.DeviceID+"/revoke", gw.Token, "", http.StatusForbidden)
	if role, perr := devAuthErr(t, creds.URL, keyFile, req.DeviceID, creds.DeviceToken); perr != "" || role != "operator" {
		t.Fatalf("auth after refused rotate/revoke: role %q, refusal %q", role, perr)
	}
	var rot devRotated
	if err := devStrict(call("POST", "/v1/devices/"+req.DeviceID+"/rotate", admin, "", 200), &rot); err != nil {
		t.Fatal(err)
	}
	if rot.DeviceID != req.DeviceID || len(rot.DeviceToken) != 43 || rot.DeviceToken == creds.DeviceToken {
		t.Fatalf("rotate answered %+v", rot)
	}
	if _, perr := devAuthErr(t, creds.URL, keyFile, req.DeviceID, creds.DeviceToken); perr != "not_paired" {
		t.Errorf("auth with the old token after rotate: refusal %q, want not_paired", perr)
	}
	if role, perr := devAuthErr(t, creds.URL, keyFile, req.DeviceID, rot.DeviceToken); perr != "" || role != "operator" {
		t.Errorf("auth with the rotated token: role %q, refusal %q", role, perr)
	}
	var revoked struct {
		Revoked devDevice `json:"revoked"`
	}
	if err := devStrict(call("POST", "/v1/devices/"+req.DeviceID+"/revoke", admin, "", 200), &revoked); err != nil {
		t.Fatal(err)
	}
	if revoked.Revoked.DeviceID != req.DeviceID || revoked.Revoked.RevokedAt == nil {
		t.Errorf("revoke answered %+v", revoked)
	}
	if _, perr := devAuthErr(t, creds.URL, keyFile, req.DeviceID, rot.DeviceToken); perr != "revoked" {
		t.Errorf("auth after revoke: refusal %q, want revoked", perr)
	}
	call("POST", "/v1/devices/0000000000000000000000000000000000000000000000000000000000000000/rotate", admin, "", http.StatusNotFound)
	got = metric(func(m map[string]float64) bool { return m[paired] == 0 })
	if v, ok := got[paired]; !ok || v != 0 {
		t.Errorf("%s after revoke = %v (present %t), want 0", paired, v, ok)
	}

	if code, _ := d.stop(10 * time.Second); code != 0 {
		t.Errorf("serve exited %d after SIGTERM", code)
	}
	noSecretsIn(t, d.stderr.String(), "secret", []string{sc.Token, setup.SetupCode, creds.DeviceToken, rot.DeviceToken, admin, gw.Token})
	if s := comp.stdout.String() + comp.stderr.String(); strings.Contains(s, creds.DeviceToken) || strings.Contains(s, sc.Token) {
		t.Errorf("the companion printed a token:\n%s", s)
	}
}
