package config

import (
	"cmp"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/token"
)

// fileError is one problem in a file: "name:line:col: msg". line and col
// order the problems of one file; they are 0 when the problem has no place.
type fileError struct {
	msg       string
	line, col int
}

func (e *fileError) Error() string { return e.msg }
func (e *fileError) Unwrap() error { return ErrInvalid }

func invalidf(format string, args ...any) error {
	return &fileError{msg: sanitize(fmt.Sprintf(format, args...))}
}

// invalidAt is a problem at tok in the file called name: the message is
// prefixed with "name:line:col: ".
func invalidAt(name string, tok *token.Token, format string, args ...any) error {
	e := &fileError{msg: sanitize(name + ":" + at(tok) + ": " + fmt.Sprintf(format, args...))}
	if tok != nil && tok.Position != nil {
		e.line, e.col = tok.Position.Line, tok.Position.Column
	}
	return e
}

// inFileOrder joins problems, ordered by where they are in the file; those
// without a place come first, in the order given.
func inFileOrder(errs []error) error {
	pos := func(err error) (int, int) {
		var fe *fileError
		if errors.As(err, &fe) {
			return fe.line, fe.col
		}
		return 0, 0
	}
	errs = slices.Clone(errs)
	slices.SortStableFunc(errs, func(a, b error) int {
		al, ac := pos(a)
		bl, bc := pos(b)
		return cmp.Or(cmp.Compare(al, bl), cmp.Compare(ac, bc))
	})
	return errors.Join(errs...)
}

// at formats a token's position as "line:col".
func at(tok *token.Token) string {
	if tok == nil || tok.Position == nil {
		return "?"
	}
	return fmt.Sprintf("%d:%d", tok.Position.Line, tok.Position.Column)
}

// sanitize keeps a message on one line: YAML errors quote the offending
// character raw, which may be a tab, a newline or worse.
func sanitize(s string) string {
	if !strings.ContainsFunc(s, unicode.IsControl) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if unicode.IsControl(r) {
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// decodeError turns an error from goccy's parser or decoder into one line
// "name:line:col: path: message", with the token it is at (nil when it has
// none). goccy's own text spans several lines (it quotes the source)
// and names Go types ("cannot unmarshal string into Go struct field
// Config.Pairing of type int"), which means nothing to an operator.
func decodeError(name string, err error, body ast.Node) (*token.Token, error) {
	var ne *nodeError
	if errors.As(err, &ne) {
		return ne.tok, invalidAt(name, ne.tok, "%s%s", pathPrefix(body, ne.tok), ne.msg)
	}
	var ye yaml.Error
	if !errors.As(err, &ye) || ye.GetToken() == nil {
		return nil, invalidf("%s: %v", name, err)
	}
	tok := ye.GetToken()
	msg := ye.GetMessage()
	var (
		te  *yaml.TypeError
		nte *yaml.UnexpectedNodeTypeError
		oe  *yaml.OverflowError
	)
	switch {
	case errors.As(err, &te):
		msg = fmt.Sprintf("expected %s, got %s", describeType(te.DstType), describeTok(body, tok))
	case errors.As(err, &nte):
		msg = fmt.Sprintf("expected %s, got %s", describeNodeType(nte.Expected), describeTok(body, tok))
	case errors.As(err, &oe):
		msg = fmt.Sprintf("%s is out of range for %s", oe.SrcNum, describeType(oe.DstType))
	}
	return tok, invalidAt(name, tok, "%s%s", pathPrefix(body, tok), msg)
}

// pathPrefix returns "key.path: " for the node holding tok, or "" if tok is
// not in the tree.
func pathPrefix(body ast.Node, tok *token.Token) string {
	path, _, ok := find(body, tok, nil)
	if !ok {
		return ""
	}
	return pathOrTop(path) + ": "
}

func pathOrTop(path []string) string {
	if len(path) == 0 {
		return "top level"
	}
	return joinPath(path)
}

func describeTok(body ast.Node, tok *token.Token) string {
	if _, n, ok := find(body, tok, nil); ok {
		return describeNode(n)
	}
	return strconv.Quote(tok.Value)
}

// find returns the key path to the node whose token is tok, and that node.
// Children are searched before their parent because a mapping shares its
// token with its first key.
func find(n ast.Node, tok *token.Token, path []string) ([]string, ast.Node, bool) {
	if n == nil {
		return nil, nil, false
	}
	switch v := n.(type) {
	case *ast.MappingNode:
		for _, mv := range v.Values {
			if p, f, ok := find(mv, tok, path); ok {
				return p, f, true
			}
		}
	case *ast.MappingValueNode:
		p := append(slices.Clip(path), keyText(v.Key))
		if v.Key.GetToken() == tok {
			return p, v.Key, true
		}
		if p, f, ok := find(v.Value, tok, p); ok {
			return p, f, true
		}
	case *ast.SequenceNode:
		for i, item := range v.Values {
			if p, f, ok := find(item, tok, append(slices.Clip(path), index(i))); ok {
				return p, f, true
			}
		}
	case *ast.AnchorNode:
		if p, f, ok := find(v.Value, tok, path); ok {
			return p, f, true
		}
	case *ast.TagNode:
		if p, f, ok := find(v.Value, tok, path); ok {
			return p, f, true
		}
	}
	if n.GetToken() == tok {
		return path, n, true
	}
	return nil, nil, false
}

func describeNode(n ast.Node) string {
	switch n.Type() {
	case ast.MappingType:
		return "a mapping"
	case ast.SequenceType:
		return "a list"
	case ast.NullType:
		return "null"
	}
	if tok := n.GetToken(); tok != nil {
		if n.Type() == ast.StringType {
			return strconv.Quote(tok.Value)
		}
		return tok.Value
	}
	return describeNodeType(n.Type())
}

func describeNodeType(t ast.NodeType) string {
	switch t {
	case ast.MappingType:
		return "a mapping"
	case ast.SequenceType:
		return "a list"
	case ast.StringType:
		return "a string"
	case ast.IntegerType:
		return "a whole number"
	case ast.BoolType:
		return "true or false"
	}
	return t.YAMLName()
}

func describeType(t reflect.Type) string {
	if t == nil {
		return "a value"
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.String:
		return "a string"
	case reflect.Slice:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "a mapping"
	case reflect.Bool:
		return "true or false"
	}
	return t.String()
}

// locate prefixes each of Validate's problems with the file name and, when
// the key (or failing that, its nearest parent) is written in the file, its
// line and column.
func (w *walker) locate(err error) []error {
	probs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		probs = j.Unwrap()
	}
	out := make([]error, 0, len(probs))
	for _, p := range probs {
		var pe *problem
		if !errors.As(p, &pe) {
			out = append(out, invalidf("%s: %v", w.name, p))
			continue
		}
		var tok *token.Token
		for path := pe.path; len(path) > 0 && tok == nil; path = path[:len(path)-1] {
			tok = w.keys[joinPath(path)]
		}
		if tok == nil || tok.Position == nil {
			out = append(out, invalidf("%s: %v", w.name, pe))
			continue
		}
		out = append(out, invalidAt(w.name, tok, "%v", pe))
	}
	return out
}
