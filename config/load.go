package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"

	"github.com/pairgate/pairgate/channel"
)

// ErrInvalid is wrapped by every error that reports a configuration that
// cannot be used: bad YAML, an unknown key, a value of the wrong type, or a
// problem found by Validate.
var ErrInvalid = errors.New("invalid configuration")

const (
	// maxSize bounds the file. A real configuration is a few kilobytes; the
	// bound keeps a mistaken path (a log, a database) from being parsed.
	maxSize = 1 << 20
	// maxDepth bounds nesting. goccy's parser takes time quadratic in the
	// nesting depth (30,000 levels take seconds) and pairgate.yaml is at
	// most seven levels deep.
	maxDepth = 64
)

// Load reads and parses the configuration file at path. A missing file gives
// an error wrapping fs.ErrNotExist: the caller decides whether that is fine.
// Other errors wrap ErrInvalid, except errors reading the file.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(data, path)
}

// Parse decodes a configuration from data on top of Default and validates
// it. Empty data gives the defaults. name (usually the file's path) starts
// every line of an error, followed where known by the line and column:
//
//	pairgate.yaml:4:3: unknown key "polcy" in pairing (valid: storage, ...)
//	pairgate.yaml:9:17: pairing.limits.code_ttl: must be positive, got -5m
//
// Every error wraps ErrInvalid.
func Parse(data []byte, name string) (*Config, error) {
	if name == "" {
		name = "config"
	}
	// Some Windows editors start a file with a byte-order mark, which goccy
	// would read as part of the first key.
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	if len(data) > maxSize {
		return nil, invalidf("%s: file is larger than %d bytes; is it the right file?", name, maxSize)
	}
	if line := tooDeep(data); line > 0 {
		return nil, invalidf("%s:%d: nested more than %d levels deep", name, line, maxDepth)
	}
	file, err := parse(data)
	if err != nil {
		return nil, decodeError(name, err, nil)
	}
	var body ast.Node
	for _, doc := range file.Docs {
		if doc.Body == nil || doc.Body.Type() == ast.NullType {
			continue
		}
		if body != nil {
			// goccy decodes the first document and silently drops the rest.
			return nil, invalidf("%s:%s: more than one YAML document (---); put everything in one", name, at(doc.Body.GetToken()))
		}
		body = doc.Body
	}
	c := Default()
	if body == nil {
		// Decoding an empty document would zero c, losing the defaults.
		return c, nil
	}
	w := walker{name: name, keys: map[string]*token.Token{}}
	body = w.walk(body, reflect.TypeFor[Config](), nil)
	if len(w.errs) > 0 {
		return nil, errors.Join(w.errs...)
	}
	if err := decode(body, c); err != nil {
		return nil, decodeError(name, err, body)
	}
	if err := c.Validate(); err != nil {
		return nil, w.locate(err)
	}
	c.foldAccounts()
	return c, nil
}

// foldAccounts writes every account name in its canonical form. Account
// names are case-folded wherever they come in (SPEC section 1), and the
// file is one of those places: an operator who writes Work: means the
// account the gateway and --account call work, and refusing it would only
// make them retype it. It runs after Validate, which has refused names that
// do not fold and two keys that fold to one, and reported problems under
// the keys as written, where they have a line.
func (c *Config) foldAccounts() {
	for name, ch := range c.Pairing.Channels {
		if len(ch.Accounts) == 0 {
			continue
		}
		folded := make(map[string]Account, len(ch.Accounts))
		for key, acc := range ch.Accounts {
			canon, _ := channel.NormalizeAccount(key)
			folded[canon] = acc
		}
		ch.Accounts = folded
		c.Pairing.Channels[name] = ch
	}
	if c.Owner.Account != "" {
		c.Owner.Account, _ = channel.NormalizeAccount(c.Owner.Account)
	}
}

// parse and decode call goccy/go-yaml, turning a panic into an error: it
// has had several on malformed input (#274, #373, #735) and a configuration
// file must never crash pairgate.
func parse(data []byte) (f *ast.File, err error) {
	defer recoverTo(&err)
	return parser.ParseBytes(data, 0)
}

func decode(body ast.Node, c *Config) (err error) {
	defer recoverTo(&err)
	// Duplicate keys were refused by the parser. Allowing them in the
	// decoder lets a key override one brought in by a merge key (<<: *base),
	// which goccy otherwise reports as a duplicate.
	return yaml.NodeToValue(body, c, yaml.Strict(), yaml.AllowDuplicateMapKey())
}

func recoverTo(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("the YAML library failed on this file (%v); please report it with the file", r)
	}
}

// tooDeep returns the line on which flow brackets ([ {) or compact block
// entries ("- - -") nest deeper than maxDepth, or 0. It is a rough count
// (brackets inside quotes count too), which is fine for a bound this far
// above any real configuration.
func tooDeep(data []byte) int {
	depth := 0
	for i, line := range bytes.Split(data, []byte("\n")) {
		trimmed := bytes.TrimLeft(line, " \t")
		if bytes.HasPrefix(trimmed, []byte("#")) {
			continue
		}
		compact := 0
		for len(trimmed) > 1 && (trimmed[0] == '-' || trimmed[0] == '?') && (trimmed[1] == ' ' || trimmed[1] == '\t') {
			compact++
			trimmed = bytes.TrimLeft(trimmed[2:], " \t")
		}
		for _, b := range line {
			switch b {
			case '[', '{':
				depth++
			case ']', '}':
				depth = max(depth-1, 0)
			}
		}
		if depth > maxDepth || compact > maxDepth {
			return i + 1
		}
	}
	return 0
}
