package config

import (
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/token"
)

// walker goes over the YAML tree alongside the Config type before decoding.
// It reports every unknown key in document order (goccy reports one, picked
// at random from a map when a mapping has several), with the valid keys;
// refuses a fraction where a whole number is expected (goccy truncates 3.5 to
// 3); and makes a plain scalar bound for a string keep its text as written
// (goccy would turn an unquoted 0123 into "83" and +5491155556666 into
// "5491155556666", which in allow_from admits someone else). It also records
// where each key is written so that Validate's problems get a line.
//
// What it reports it takes out of the tree (an unknown key, a value it
// refused: a list item is dropped, anything else is left at its default),
// so that decoding and Validate go on and report the rest of the file's
// problems too.
type walker struct {
	name string
	keys map[string]*token.Token // joinPath(path) → the key's token
	errs []error
}

var durationType = reflect.TypeFor[Duration]()

// refuse reports a problem at tok; the caller returns nil for the node.
func (w *walker) refuse(tok *token.Token, format string, args ...any) {
	w.errs = append(w.errs, invalidAt(w.name, tok, format, args...))
}

// walk checks n, to be decoded into a value of type t at path, and returns
// the node to decode in its place: nil when it refused n.
func (w *walker) walk(n ast.Node, t reflect.Type, path []string) ast.Node {
	switch v := n.(type) {
	case nil:
		return n
	case *ast.AnchorNode:
		v.Value = orNull(w.walk(v.Value, t, path), v.Value)
		return n
	case *ast.TagNode:
		return w.walkTag(v, t, path)
	}
	if t == durationType {
		return n // Duration.UnmarshalYAML checks it.
	}
	switch t.Kind() {
	case reflect.String:
		return literal(n)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		switch n.Type() {
		case ast.FloatType, ast.InfinityType, ast.NanType:
			w.refuse(n.GetToken(), "%s: expected a whole number, got %s", joinPath(path), n.GetToken().Value)
			return nil
		}
	case reflect.Slice:
		seq, ok := n.(*ast.SequenceNode)
		if !ok {
			return n
		}
		kept := seq.Values[:0]
		for i, item := range seq.Values {
			p := append(slices.Clip(path), index(i))
			w.keys[joinPath(p)] = item.GetToken()
			if item = w.walk(item, t.Elem(), p); item != nil {
				kept = append(kept, item)
			}
		}
		seq.Values = kept
	case reflect.Map:
		for _, mv := range mappingValues(n) {
			if mv.Key.IsMergeKey() {
				continue
			}
			if k, ok := literal(mv.Key).(ast.MapKeyNode); ok {
				mv.Key = k
			}
			p := append(slices.Clip(path), keyText(mv.Key))
			w.keys[joinPath(p)] = mv.Key.GetToken()
			mv.Value = orNull(w.walk(mv.Value, t.Elem(), p), mv.Value)
		}
	case reflect.Struct:
		var kept []*ast.MappingValueNode
		for _, mv := range mappingValues(n) {
			if mv.Key.IsMergeKey() {
				kept = append(kept, mv)
				continue
			}
			key := keyText(mv.Key)
			f, ok := fieldByKey(t, key)
			if !ok {
				in := ""
				if len(path) > 0 {
					in = " in " + joinPath(path)
				}
				w.refuse(mv.Key.GetToken(), "unknown key %q%s (valid: %s)", key, in, strings.Join(fieldKeys(t), ", "))
				continue
			}
			p := append(slices.Clip(path), key)
			w.keys[joinPath(p)] = mv.Key.GetToken()
			mv.Value = orNull(w.walk(mv.Value, f.Type, p), mv.Value)
			kept = append(kept, mv)
		}
		// Unknown keys leave the tree, so that strict decoding goes on
		// to the other problems.
		switch v := n.(type) {
		case *ast.MappingNode:
			v.Values = kept
		case *ast.MappingValueNode:
			if len(kept) == 0 {
				return ast.Null(nullToken(v.GetToken()))
			}
		}
	}
	return n
}

// orNull returns n, or for a refused node (nil) a null in place of was,
// which leaves the key at its default.
func orNull(n, was ast.Node) ast.Node {
	if n != nil {
		return n
	}
	return ast.Null(nullToken(was.GetToken()))
}

// nullToken is a null token at tok's place.
func nullToken(tok *token.Token) *token.Token {
	var pos *token.Position
	if tok != nil {
		pos = tok.Position
	}
	return token.New("null", "null", pos)
}

// walkTag handles an explicitly tagged node. goccy v1.19 panics on a tag
// over a scalar where a list or mapping is expected (goccy/go-yaml#735),
// refuses !!map over a mapping bound for a struct, and reads !!str 0123 as
// "83"; so the standard tags are applied here and the rest refused where
// they would do harm.
func (w *walker) walkTag(v *ast.TagNode, t reflect.Type, path []string) ast.Node {
	tag := v.Start.Value
	if t == durationType {
		return v // Duration.UnmarshalYAML looks through tags.
	}
	switch t.Kind() {
	case reflect.String:
		if tag == "!!str" && v.Value != nil {
			return literal(v.Value)
		}
	case reflect.Slice, reflect.Map, reflect.Struct:
		want, wantTag := ast.MappingType, "!!map"
		if t.Kind() == reflect.Slice {
			want, wantTag = ast.SequenceType, "!!seq"
		}
		inner := v.Value
		for a, ok := inner.(*ast.AnchorNode); ok; a, ok = inner.(*ast.AnchorNode) {
			inner = a.Value
		}
		switch {
		case inner == nil || inner.Type() != want:
			w.refuse(v.GetToken(), "%s: expected %s, got %s", pathOrTop(path), describeNodeType(want), describeNode(v))
			return nil
		case tag != wantTag:
			w.refuse(v.GetToken(), "%s: tag %s is not supported; remove it", pathOrTop(path), tag)
			return nil
		default:
			return w.walk(v.Value, t, path)
		}
	}
	return v
}

// mappingValues returns the entries of a mapping node, or nil for any other
// node (the decoder reports the type mismatch).
func mappingValues(n ast.Node) []*ast.MappingValueNode {
	switch v := n.(type) {
	case *ast.MappingNode:
		return v.Values
	case *ast.MappingValueNode:
		return []*ast.MappingValueNode{v}
	}
	return nil
}

// literal returns a string node with the source text of a plain scalar that
// YAML would read as a number or a boolean, and n itself otherwise.
func literal(n ast.Node) ast.Node {
	switch n.Type() {
	case ast.IntegerType, ast.FloatType, ast.BoolType, ast.InfinityType, ast.NanType:
		tok := *n.GetToken()
		tok.Type = token.StringType
		return ast.String(&tok)
	}
	return n
}

func fieldByKey(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if yamlKey(f) == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func fieldKeys(t reflect.Type) []string {
	keys := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		keys = append(keys, yamlKey(t.Field(i)))
	}
	return keys
}

func yamlKey(f reflect.StructField) string {
	k, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	return k
}

// keyText is the text of a mapping key as the decoder matches it.
func keyText(k ast.MapKeyNode) string {
	switch v := k.(type) {
	case *ast.StringNode:
		return v.Value
	case *ast.MappingKeyNode: // "? key"
		if inner, ok := v.Value.(ast.MapKeyNode); ok {
			return keyText(inner)
		}
	}
	if tok := k.GetToken(); tok != nil {
		return tok.Value
	}
	return k.String()
}

func index(i int) string { return "[" + strconv.Itoa(i) + "]" }

// joinPath writes a key path the way Validate names keys: dotted, with list
// indexes in brackets and odd keys quoted.
func joinPath(path []string) string {
	var b strings.Builder
	for i, p := range path {
		switch {
		case strings.HasPrefix(p, "["):
			b.WriteString(p)
			continue
		case i > 0:
			b.WriteByte('.')
		}
		b.WriteString(pathKey(p))
	}
	return b.String()
}

// pathKey quotes a key that would not read as one element of a dotted path.
func pathKey(k string) string {
	if k == "" || strings.ContainsFunc(k, func(r rune) bool {
		return r == '.' || r == '[' || r == '"' || unicode.IsSpace(r) || unicode.IsControl(r) || r == unicode.ReplacementChar
	}) {
		return strconv.Quote(k)
	}
	return k
}
