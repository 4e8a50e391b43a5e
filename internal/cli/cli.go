// Package cli is the pairgate command line: thin cobra commands that parse
// flags, call the pairing library and print the result, as text for people
// or as JSON with --json.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pairgate/pairgate/api"
	"github.com/pairgate/pairgate/config"
	"github.com/pairgate/pairgate/internal/termtext"
	"github.com/pairgate/pairgate/pairing"
	"github.com/pairgate/pairgate/secret"
	"github.com/pairgate/pairgate/server"
	"github.com/pairgate/pairgate/store"
	"github.com/pairgate/pairgate/store/backends"
)

// Exit codes (SPEC section 4).
const (
	ExitOK      = 0
	ExitFailed  = 1 // the operation was refused or failed
	ExitUsage   = 2 // the command line was wrong
	defaultHome = ".pairgate"

	adminTokenFile = "admin.token"
)

// usageError marks an error as the caller's mistake (exit 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// inputError marks an error about values the rules refuse (exit 2, code
// invalid_input) that the CLI words itself, such as the lines of a file that
// hold senders which cannot be right.
type inputError struct{ err error }

func (e inputError) Error() string { return e.err.Error() }
func (e inputError) Unwrap() error { return e.err }

// Main runs the pairgate command line with args (without the program name)
// and returns the process exit code.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr}
	root := a.root()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	a.close()
	if err == nil {
		return ExitOK
	}
	return a.fail(err, args)
}

// fail reports err on stderr, as {"error":{"code","message"}} when --json
// was asked for, and returns the exit code its class calls for. --json is
// looked for in args too: a command line that failed to parse before the
// flag was reached still asked for JSON.
func (a *app) fail(err error, args []string) int {
	code, exit := classify(err)
	if a.jsonOut || jsonFlag(args) {
		enc := json.NewEncoder(a.stderr)
		enc.SetEscapeHTML(false) // messages quote usage lines: <channel>, not \u003cchannel\u003e
		enc.Encode(api.ErrorBody{Error: api.ErrorDetail{Code: code, Message: err.Error()}})
		return exit
	}
	fmt.Fprintln(a.stderr, "pairgate:", escapeMessage(err.Error()))
	return exit
}

// classify gives an error its code (one of the api.Code constants) and exit
// code: 2 for what the caller can fix in the command line or the config, 1
// for the rest. Library errors are classified by the same rule as the HTTP
// API's.
func classify(err error) (code string, exit int) {
	var ue usageError
	var ie inputError
	switch {
	case errors.As(err, &ue):
		return api.CodeUsage, ExitUsage
	case errors.As(err, &ie):
		return api.CodeInvalidInput, ExitUsage
	case errors.Is(err, config.ErrInvalid):
		return api.CodeInvalidConfig, ExitUsage
	}
	switch code := server.ErrorCode(err); code {
	case api.CodeInvalidInput:
		return code, ExitUsage
	case "", api.CodeInternal:
		return api.CodeFailed, ExitFailed
	default:
		return code, ExitFailed
	}
}

// jsonFlag reports whether args hold --json (or --json=true) before any
// "--".
func jsonFlag(args []string) bool {
	for _, arg := range args {
		switch {
		case arg == "--":
			return false
		case arg == "--json":
			return true
		case strings.HasPrefix(arg, "--json="):
			b, err := strconv.ParseBool(strings.TrimPrefix(arg, "--json="))
			return err == nil && b
		}
	}
	return false
}

// app holds what the commands share: global flags and, once opened, the
// config, the store and the pairing service.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer

	home       string
	configPath string
	jsonOut    bool
	logLevel   string
	logFormat  string

	defaultLevel string // log level when neither --log-level nor PAIRGATE_LOG_LEVEL says
	daemon       bool   // serve: check the database's integrity at open and on an interval
	homeDir      string
	dbPath       string
	cfgFile      string // the config file read, "" when none was

	cfg *config.Config
	sec secret.Secret
	st  store.Store
	svc *pairing.Service
	log *slog.Logger
}

func (a *app) root() *cobra.Command {
	root := &cobra.Command{
		Use:   "pairgate",
		Short: "Pairing for self-hosted AI-agent gateways",
		Long: `pairgate decides who may talk to your bot. Unknown senders get a one-time
pairing code; you approve it and they join the allowlist.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%w (see '%s --help')", err, c.CommandPath())}
	})
	f := root.PersistentFlags()
	f.StringVar(&a.home, "home", "", "pairgate's state directory (env PAIRGATE_HOME, then systemd's STATE_DIRECTORY; default ~/.pairgate)")
	f.StringVar(&a.configPath, "config", "", "config file (default $PAIRGATE_HOME/pairgate.yaml when present)")
	f.BoolVar(&a.jsonOut, "json", false, "print machine-readable JSON")
	f.StringVar(&a.logLevel, "log-level", "", "log level on stderr: debug, info, warn or error (env PAIRGATE_LOG_LEVEL; default error, info for serve)")
	f.StringVar(&a.logFormat, "log-format", "text", "log format: text or json")
	root.RegisterFlagCompletionFunc("log-level", fixed("debug", "info", "warn", "error"))
	root.RegisterFlagCompletionFunc("log-format", fixed("text", "json"))
	root.RegisterFlagCompletionFunc("home", func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return nil, cobra.ShellCompDirectiveFilterDirs
	})
	root.PersistentPreRunE = func(c *cobra.Command, _ []string) error {
		if c.Flags().Changed("home") && a.home == "" {
			return usageError{errors.New("--home is empty: give pairgate's state directory, or leave the flag out for $PAIRGATE_HOME or ~/.pairgate")}
		}
		return nil
	}
	// --version is the root's own flag rather than cobra's (which adds -v
	// and prints a fixed template), so that --json applies to it.
	version := root.Flags().Bool("version", false, "print pairgate's version, commit and Go version")
	root.AddCommand(a.webLinkCmd(), a.admitCmd(), a.pairingCmd(), a.keysCmd(), a.serveCmd(), a.tokensCmd(), a.setupCodeCmd(), a.devicesCmd(), a.companionCmd(), a.initCmd(),
		a.backupCmd(), a.versionCmd(), a.configCmd(), a.ownerCmd(), a.importCmd())
	root.InitDefaultCompletionCmd()
	root.SetHelpCommand(a.helpCmd(root))
	a.strictTree(root)
	root.RunE = func(c *cobra.Command, args []string) error {
		if *version {
			return a.printVersion()
		}
		return a.missingSubcommand(c, args)
	}
	return root
}

// strictTree makes every command that only groups others (the root,
// pairing, devices, completion, …) refuse what cobra would let pass: an
// unknown subcommand is a usage error naming it, with cobra's suggestions;
// the group alone shows its usage on stderr and exits 2, as git and kubectl
// do (asking for --help shows it on stdout and exits 0). Cobra's own
// completion commands get the same argument checks as ours.
func (a *app) strictTree(c *cobra.Command) {
	for _, sub := range c.Commands() {
		a.strictTree(sub)
	}
	if c.Name() == "completion" {
		for _, shell := range c.Commands() {
			shell.Args = exactArgs(0)
		}
	}
	if !c.HasSubCommands() {
		if c.ValidArgsFunction == nil {
			c.ValidArgsFunction = cobra.NoFileCompletions // no command takes a file name unless it says so
		}
		return
	}
	c.SuggestionsMinimumDistance = 2
	c.Args = subcommandArgs
	if c.RunE == nil && c.Run == nil {
		c.RunE = a.missingSubcommand
	}
}

// subcommandArgs is the positional check of a group: any argument is a
// subcommand it does not have.
func subcommandArgs(c *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], c.CommandPath())
	if s := c.SuggestionsFor(args[0]); len(s) > 0 {
		for i := range s {
			s[i] = strconv.Quote(s[i])
		}
		msg += "; did you mean " + strings.Join(s, " or ") + "?"
	}
	return usageError{fmt.Errorf("%s (see '%s --help')", msg, c.CommandPath())}
}

// missingSubcommand runs a group called without a subcommand.
func (a *app) missingSubcommand(c *cobra.Command, _ []string) error {
	if !a.jsonOut {
		fmt.Fprintln(a.stderr, c.UsageString())
	}
	var names []string
	for _, sub := range c.Commands() {
		if sub.IsAvailableCommand() {
			names = append(names, sub.Name())
		}
	}
	return usageError{fmt.Errorf("%s needs a subcommand: %s (see '%s --help')", c.CommandPath(), strings.Join(names, ", "), c.CommandPath())}
}

// helpCmd replaces cobra's help command, which answers an unknown topic
// with the root's usage and exit 0.
func (a *app) helpCmd(root *cobra.Command) *cobra.Command {
	return &cobra.Command{
		Use:   "help [command]",
		Short: "Help about any command",
		ValidArgsFunction: func(_ *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			cmd, rest, err := root.Find(args)
			if err != nil || len(rest) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			var out []cobra.Completion
			for _, sub := range cmd.Commands() {
				if sub.IsAvailableCommand() && strings.HasPrefix(sub.Name(), toComplete) {
					out = append(out, cobra.CompletionWithDesc(sub.Name(), sub.Short))
				}
			}
			return out, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(_ *cobra.Command, args []string) error {
			cmd, rest, err := root.Find(args)
			if err != nil {
				return usageError{err}
			}
			if len(rest) > 0 {
				return usageError{fmt.Errorf("unknown help topic %q: %q has no command %q (see 'pairgate --help')",
					strings.Join(args, " "), cmd.CommandPath(), rest[0])}
			}
			return cmd.Help()
		},
	}
}

// Positional-argument checks. Their errors are usage errors (exit 2) that
// name the argument: the one missing, as the command's usage line calls it,
// or the first one too many.
func exactArgs(n int) cobra.PositionalArgs { return argsBetween(n, n) }
func maxArgs(n int) cobra.PositionalArgs   { return argsBetween(0, n) }
func minArgs(n int) cobra.PositionalArgs   { return argsBetween(n, -1) }

// argsBetween checks for at least lo and, unless hi is negative, at most hi
// arguments.
func argsBetween(lo, hi int) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		switch {
		case len(args) < lo:
			names := argNames(c.Use)
			missing := "an argument"
			if len(names) >= lo {
				missing = strings.Join(names[len(args):lo], " ")
			}
			return usageError{fmt.Errorf("%s: missing %s (usage: %s)", c.CommandPath(), missing, c.UseLine())}
		case hi >= 0 && len(args) > hi:
			return usageError{fmt.Errorf("%s: unexpected argument %q (usage: %s)", c.CommandPath(), args[hi], c.UseLine())}
		}
		return nil
	}
}

// argNames are the positional arguments of a usage line: "approve
// <channel> <CODE|REQUEST_ID>" has <channel> and <CODE|REQUEST_ID>.
func argNames(use string) []string {
	var names []string
	fields := strings.Fields(use)
	if len(fields) == 0 {
		return nil
	}
	for _, f := range fields[1:] {
		if f = strings.Trim(f, "[]."); strings.HasPrefix(f, "<") {
			names = append(names, f)
		}
	}
	return names
}

// resolveHome picks the state directory: --home, then PAIRGATE_HOME, then
// the first of systemd's STATE_DIRECTORY (set by StateDirectory= in a unit,
// such as deploy/pairgate.service), then ~/.pairgate.
func (a *app) resolveHome() (string, error) {
	if a.home != "" {
		return a.home, nil
	}
	if h := os.Getenv("PAIRGATE_HOME"); h != "" {
		return h, nil
	}
	if dirs := os.Getenv("STATE_DIRECTORY"); dirs != "" {
		first, _, _ := strings.Cut(dirs, ":")
		return first, nil
	}
	dir, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no home directory to put ~/.pairgate in; set --home or PAIRGATE_HOME: %w", err)
	}
	return filepath.Join(dir, defaultHome), nil
}

// durationsInMS writes a time.Duration attribute as <key>_ms, a number of
// milliseconds, wherever it was logged from: slog would write nanoseconds
// (JSON) or Go's "1.5ms" (text), neither of which a log query can compare.
func durationsInMS(_ []string, attr slog.Attr) slog.Attr {
	if attr.Value.Kind() == slog.KindDuration {
		return slog.Float64(attr.Key+"_ms", float64(attr.Value.Duration().Microseconds())/1000)
	}
	return attr
}

func (a *app) logger() (*slog.Logger, error) {
	level := a.logLevel
	if level == "" {
		level = os.Getenv("PAIRGATE_LOG_LEVEL")
	}
	if level == "" {
		level = orDefault(a.defaultLevel, "error")
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, usageError{fmt.Errorf("--log-level %q: want debug, info, warn or error", level)}
	}
	opts := &slog.HandlerOptions{Level: l, ReplaceAttr: durationsInMS}
	switch a.logFormat {
	case "text", "":
		return slog.New(slog.NewTextHandler(a.stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(a.stderr, opts)), nil
	}
	return nil, usageError{fmt.Errorf("--log-format %q: want text or json", a.logFormat)}
}

// open loads the config, the store and the secret, and builds the service.
func (a *app) open(ctx context.Context) (*pairing.Service, error) {
	if a.svc != nil {
		return a.svc, nil
	}
	if err := a.openStore(ctx, false); err != nil {
		return nil, err
	}
	if err := a.loadSecret(ctx); err != nil {
		return nil, err
	}
	svc, err := pairing.New(pairing.Options{Store: a.st, Secret: a.sec, Config: a.cfg, Logger: a.log})
	if err != nil {
		return nil, err
	}
	a.svc = svc
	return svc, nil
}

// locate resolves the logger, the home directory, the config and the
// database's path, once, creating nothing.
func (a *app) locate() error {
	if a.cfg != nil {
		return nil
	}
	log, err := a.logger()
	if err != nil {
		return err
	}
	a.log = log
	home, err := a.resolveHome()
	if err != nil {
		return err
	}
	cfg, err := a.loadConfig(home)
	if err != nil {
		return err
	}
	a.homeDir = home
	a.cfg = cfg
	a.dbPath = orDefault(cfg.Pairing.Storage.Path, filepath.Join(home, "pairgate.db"))
	return nil
}

// setup is locate, and makes the home directory if it is missing.
func (a *app) setup() error {
	if err := a.locate(); err != nil {
		return err
	}
	if err := os.MkdirAll(a.homeDir, 0o700); err != nil {
		return fmt.Errorf("create home directory: %w", err)
	}
	return nil
}

// openStore opens the database, creating it on a fresh home. A database
// that is missing or empty in a home that was used before is refused unless
// force is set (pairgate init --force): starting anyway would silently
// begin with an empty allowlist.
func (a *app) openStore(ctx context.Context, force bool) error {
	if a.st != nil {
		return nil
	}
	if err := a.setup(); err != nil {
		return err
	}
	if !force && a.sqlite() {
		if err := a.refuseLostDatabase(); err != nil {
			return err
		}
	}
	c := a.storageConfig()
	if a.daemon {
		c.IntegrityCheck = integrityCheckEvery
	}
	st, err := backends.Open(ctx, c)
	if err != nil {
		return err
	}
	a.st = st
	return nil
}

// storageConfig is the store the config names.
func (a *app) storageConfig() backends.Config {
	s := a.cfg.Pairing.Storage
	return backends.Config{Driver: s.Driver, Path: a.dbPath, DSN: s.DSN, PollOnly: s.Notify != nil && !*s.Notify, Logger: a.log}
}

// sqlite reports whether the store is a SQLite file (a.dbPath).
func (a *app) sqlite() bool {
	d := a.cfg.Pairing.Storage.Driver
	return d == "" || d == "sqlite"
}

// storeName says where the store is, for messages: the SQLite file, or the
// PostgreSQL host and database (never the DSN, which may hold a password).
func (a *app) storeName() string { return backends.Describe(a.storageConfig()) }

// integrityCheckEvery is how often serve checks its whole database file
// (a quick_check of about 1 ms per 20,000 allowed senders).
const integrityCheckEvery = time.Minute

// refuseLostDatabase fails when the database is missing or empty but files
// that only a used home holds are there.
func (a *app) refuseLostDatabase() error {
	fi, err := os.Stat(a.dbPath)
	switch {
	case err == nil && fi.Size() > 0:
		return nil
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("database %s: %w", a.dbPath, err)
	}
	state := "missing"
	if err == nil {
		state = "empty (0 bytes)"
	}
	var found []string
	for _, p := range []string{a.secretPath(a.homeDir), filepath.Join(a.homeDir, adminTokenFile), filepath.Join(a.homeDir, "companion")} {
		if _, err := os.Lstat(p); err == nil {
			found = append(found, p)
		}
	}
	if len(found) == 0 {
		return nil // a fresh home
	}
	return fmt.Errorf("the database %s is %s, but this home was used before (%s): starting now would begin with an empty allowlist. "+
		"Restore the database from a backup (with its -wal file, if there is one), or start empty on purpose with: pairgate init --force",
		a.dbPath, state, strings.Join(found, ", "))
}

func (a *app) secretPath(home string) string {
	return orDefault(a.cfg.Pairing.SetupCode.SecretPath, filepath.Join(home, "pairing.key"))
}

// loadSecret reads the pairing secret, creating it on first use. A missing
// secret beside a database that already holds state (any change recorded)
// is an error, not a reason to make a new one: every pending code would
// silently stop working.
func (a *app) loadSecret(ctx context.Context) error {
	path := a.secretPath(a.homeDir)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		recent, err := a.st.RecentChanges(ctx, store.ChangeQuery{Limit: 1})
		if err != nil {
			return err
		}
		if len(recent) > 0 {
			return fmt.Errorf("pairing secret %s is missing, but the database %s already holds state: restore the key from a backup; if it is lost for good, create a new one with 'pairgate keys init' (pending pairing codes stop working, the allowlist is kept)", path, a.storeName())
		}
	}
	sec, err := secret.LoadOrCreate(path)
	if err != nil {
		return err
	}
	a.sec = sec
	return nil
}

// configFile is the config file to read: --config, or else pairgate.yaml
// in home; explicit says --config named it.
func (a *app) configFile(home string) (path string, explicit bool) {
	if a.configPath != "" {
		return a.configPath, true
	}
	return filepath.Join(home, "pairgate.yaml"), false
}

func (a *app) loadConfig(home string) (*config.Config, error) {
	path, explicit := a.configFile(home)
	cfg, err := config.Load(path)
	if errors.Is(err, fs.ErrNotExist) && !explicit {
		return config.Default(), nil
	}
	if err != nil {
		return nil, err
	}
	a.cfgFile = path
	// Relative paths in a config file mean relative to that file, not to
	// wherever the command happens to run.
	for _, p := range []*string{&cfg.Pairing.Storage.Path, &cfg.Pairing.SetupCode.SecretPath} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(filepath.Dir(path), *p)
		}
	}
	return cfg, nil
}

func (a *app) close() {
	if a.st != nil {
		a.st.Close()
	}
}

// actor names the person at the terminal for the audit log.
func actor() store.Actor {
	name := os.Getenv("USER")
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, _ := os.Hostname()
	return store.Actor{Name: "cli:" + name, Source: "cli@" + host}
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// print writes v as indented JSON with --json, or calls text otherwise.
func (a *app) print(v any, text func(w io.Writer)) error {
	if a.jsonOut {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	text(a.stdout)
	return nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// cell is text from outside (a sender, a device, anything read from the
// store) ready for the terminal, as a table cell or inline: control and bidi
// characters escaped, so it can neither drive the terminal nor forge a row;
// "-" when there is nothing to show.
func cell(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return termtext.Escape(s)
}

// escapeMessage escapes an error message for the terminal. Errors may quote
// text from outside, so every control character is escaped, except the line
// breaks of our own messages, which put the next step on a line of its own.
func escapeMessage(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = termtext.Escape(l)
	}
	return strings.Join(lines, "\n")
}
