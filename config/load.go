package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
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

// Parse decodes a configuration from data on top of Default, validates it
// and returns it in canonical form (Config.Canonical). Empty data gives the
// defaults. Every problem is reported at once, one per line, in file order:
// unknown keys, values of the wrong type, allow_from entries the channel
// refuses and what Validate finds. name (usually the file's path) starts
// every line, followed where known by the line and column:
//
//	pairgate.yaml:4:3: unknown key "polcy" in pairing (valid: storage, ...)
//	pairgate.yaml:9:17: pairing.limits.code_ttl: must be positive, got -5m
//
// Only a file that is not YAML at all (or too big, too deep, or several
// documents) stops at its first problem. Every error wraps ErrInvalid.
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
		_, err := decodeError(name, err, nil)
		return nil, err
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
	if body == nil {
		// Decoding an empty document would zero the config, losing the
		// defaults.
		return Default(), nil
	}
	// Every problem is reported at once: the walker's, the decoder's (each
	// bad value is taken out and decoding goes on), then Validate's on
	// what decoded.
	w := walker{name: name, keys: map[string]*token.Token{}}
	body = w.walk(body, reflect.TypeFor[Config](), nil)
	errs := w.errs
	c, decoded := decodeAll(name, body, &errs)
	if !decoded {
		return nil, inFileOrder(errs)
	}
	canon, err := c.Canonical()
	if err != nil {
		errs = append(errs, w.locate(err)...)
	}
	if len(errs) > 0 {
		return nil, inFileOrder(errs)
	}
	return canon, nil
}

// maxDecodeErrors bounds how many bad values are reported (and decoding
// retried) for one file.
const maxDecodeErrors = 100

// decodeAll decodes body on top of Default. Each value the decoder refuses
// is reported into errs, taken out of the tree (left at its default) and
// decoding tried again; decoded is false when a problem could not be taken
// out, and then the configuration is not complete enough to validate.
func decodeAll(name string, body ast.Node, errs *[]error) (c *Config, decoded bool) {
	for range maxDecodeErrors {
		c = Default()
		if body == nil || body.Type() == ast.NullType {
			return c, true
		}
		err := decode(body, c)
		if err == nil {
			return c, true
		}
		tok, e := decodeError(name, err, body)
		*errs = append(*errs, e)
		if tok == nil || tok == body.GetToken() || !without(body, tok) {
			return nil, false
		}
	}
	return nil, false
}

// without takes the value whose token is tok out of the tree under n: a
// list item is dropped, a mapping value becomes null (its default). It
// reports whether it found one. A value is matched before its children, as
// a mapping shares its token with its first key.
func without(n ast.Node, tok *token.Token) bool {
	switch v := n.(type) {
	case *ast.MappingNode:
		for _, mv := range v.Values {
			if without(mv, tok) {
				return true
			}
		}
	case *ast.MappingValueNode:
		if v.Value != nil && v.Value.GetToken() == tok {
			v.Value = ast.Null(nullToken(tok))
			return true
		}
		return without(v.Value, tok)
	case *ast.SequenceNode:
		for i, item := range v.Values {
			if item != nil && item.GetToken() == tok {
				v.Values = slices.Delete(v.Values, i, i+1)
				return true
			}
			if without(item, tok) {
				return true
			}
		}
	case *ast.AnchorNode:
		return without(v.Value, tok)
	case *ast.TagNode:
		return without(v.Value, tok)
	}
	return false
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
