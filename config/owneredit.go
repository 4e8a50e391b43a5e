package config

import (
	"bytes"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/token"

	"github.com/pairgate/pairgate/channel"
)

// AddOwner returns data, the text of a configuration file called name,
// with sender added to owner.senders.<ch>. The text is edited in place:
// the new entry is inserted and every other byte (comments, key order,
// quoting, blank lines) stays as it was. Levels that are missing (owner,
// senders, the channel's list) are created in the style of the level that
// holds them: block lines in a block mapping, {…} and […] in a flow one.
//
// sender must be canonical (the channel adapter's Normalize). When it is
// listed already, data is returned as it is.
//
// data must load (Parse; its error is returned otherwise), and the result is
// parsed again before it is returned: unless it loads and differs from data
// in owner.senders.<ch> alone, by exactly this sender, AddOwner fails
// rather than return it. A layout it cannot edit safely (an anchor, alias,
// tag or merge key on the way to the list) is refused with a message that
// says to edit the file by hand.
func AddOwner(data []byte, name, ch, sender string) ([]byte, error) {
	e, err := newOwnerEdit(data, name, ch)
	if err != nil {
		return nil, err
	}
	if slices.Contains(e.orig.Owner.Senders[ch], sender) {
		return data, nil
	}
	sp, err := e.add(strconv.Quote(sender))
	if err != nil {
		return nil, err
	}
	return e.finish([]splice{sp}, slices.Sorted(slices.Values(append(slices.Clone(e.orig.Owner.Senders[ch]), sender))))
}

// RemoveOwner returns data without the entries of owner.senders.<ch> that
// are sender, however they are spelled (tg:42 is 42), editing the text in
// place as AddOwner does. A list left empty is removed with its key; a
// block mapping left empty (senders:, then owner:) goes too, while a flow
// one stays, as {}. When sender is not listed, data is returned as it is.
// It checks its input and result as AddOwner does.
func RemoveOwner(data []byte, name, ch, sender string) ([]byte, error) {
	e, err := newOwnerEdit(data, name, ch)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(e.orig.Owner.Senders[ch], sender) {
		return data, nil
	}
	splices, err := e.remove(sender)
	if err != nil {
		return nil, err
	}
	return e.finish(splices, slices.DeleteFunc(slices.Clone(e.orig.Owner.Senders[ch]), func(s string) bool { return s == sender }))
}

// ownerPath is where owner add and remove edit: owner.senders.<channel>.
func ownerPath(ch string) []string { return []string{"owner", "senders", ch} }

// ownerEdit is one edit of owner.senders.<ch> in a file's text.
type ownerEdit struct {
	name string
	ch   string
	bom  []byte // a leading byte-order mark, kept as it was
	src  []byte // the text after it, which the tree's positions are in
	nl   string // the file's line break: "\n", or "\r\n" in a file that uses it
	// lines are the offsets at which the lines of src start.
	lines []int
	body  ast.Node // the document's top node; nil for an empty file
	orig  *Config
}

func newOwnerEdit(data []byte, name, ch string) (*ownerEdit, error) {
	if !slices.Contains(channels, ch) {
		return nil, fmt.Errorf("unknown channel %q (valid: %s)", ch, strings.Join(channels, ", "))
	}
	orig, err := Parse(data, name)
	if err != nil {
		return nil, err
	}
	e := &ownerEdit{name: name, ch: ch, orig: orig, nl: "\n"}
	e.src = bytes.TrimPrefix(data, []byte("\ufeff"))
	e.bom = data[:len(data)-len(e.src)]
	if bytes.Contains(e.src, []byte("\r\n")) {
		e.nl = "\r\n"
	}
	e.lines = []int{0}
	for i, b := range e.src {
		if b == '\n' {
			e.lines = append(e.lines, i+1)
		}
	}
	file, err := parse(e.src)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err) // Parse read it, so this does not happen
	}
	for _, doc := range file.Docs {
		if doc.Body != nil && doc.Body.Type() != ast.NullType {
			e.body = doc.Body
		}
	}
	return e, nil
}

// splice replaces src[start:end] with text.
type splice struct {
	start, end int
	text       string
}

// finish applies the splices and checks that the result loads and says
// what the original did, but with want for owner.senders.<ch> (nil or
// empty: no entry).
func (e *ownerEdit) finish(splices []splice, want []string) ([]byte, error) {
	slices.SortFunc(splices, func(a, b splice) int { return b.start - a.start })
	out := slices.Clone(e.src)
	for _, sp := range splices {
		out = slices.Concat(out[:sp.start], []byte(sp.text), out[sp.end:])
	}
	out = slices.Concat(e.bom, out)

	// The errors below report a mistake of this function, not of the
	// file, so they do not wrap Parse's error: wrapping ErrInvalid would
	// tell the caller that the configuration is wrong.
	got, err := Parse(out, e.name)
	if err != nil {
		return nil, fmt.Errorf("%s: editing %s in place would leave a file that does not load (%v), so it was not changed; edit it by hand", e.name, joinPath(ownerPath(e.ch)), err)
	}
	expect := maps.Clone(e.orig.Owner.Senders)
	if expect == nil {
		expect = map[string][]string{}
	}
	if len(want) == 0 {
		delete(expect, e.ch)
	} else {
		expect[e.ch] = want
	}
	before, after := *e.orig, *got
	before.Owner.Senders, after.Owner.Senders = nil, nil
	if !maps.EqualFunc(got.Owner.Senders, expect, slices.Equal) || !reflect.DeepEqual(before, after) {
		return nil, fmt.Errorf("%s: editing %s in place would change more than that list, so the file was not changed; edit it by hand", e.name, joinPath(ownerPath(e.ch)))
	}
	return out, nil
}

// add returns the splice that adds item (a quoted sender) to the list:
// after its last item, or as a new entry at the end of the deepest mapping
// on the way that exists, or at the end of the file.
func (e *ownerEdit) add(item string) (splice, error) {
	path := ownerPath(e.ch)
	if e.body == nil {
		return e.appendAtEnd(blockText(path, "", item, e.nl)), nil
	}
	node := e.body
	var key ast.MapKeyNode // the key whose value node is, nil at the top
	for depth := 0; ; depth++ {
		if err := e.plain(node, path[:depth]); err != nil {
			return splice{}, err
		}
		if depth == len(path) {
			return e.addItem(node, key, item)
		}
		if node.Type() == ast.NullType {
			return e.fillNull(node.(*ast.NullNode), key, path[depth:], item)
		}
		entries, flow, ok := mappingOf(node)
		if !ok {
			return splice{}, e.uneditable(path[:depth])
		}
		i, err := e.find(entries, path[depth], path[:depth])
		if err != nil {
			return splice{}, err
		}
		if i >= 0 {
			key, node = entries[i].Key, entries[i].Value
			continue
		}
		rest := path[depth:]
		switch {
		case flow:
			return e.appendToFlow(flowEnd(node), flowEntry(rest, item, quotedKeys(entries)))
		case depth == 0:
			// At the end of the file rather than after the last
			// top-level value, which may be a block scalar running on.
			indent, err := e.indent(entries[0].Key.GetToken(), path[:depth])
			if err != nil {
				return splice{}, err
			}
			return e.appendAtEnd(blockText(rest, indent, item, e.nl)), nil
		default:
			indent, err := e.indent(entries[0].Key.GetToken(), path[:depth])
			if err != nil {
				return splice{}, err
			}
			return e.insertAfter(lastToken(node), blockText(rest, indent, item, e.nl))
		}
	}
}

// addItem adds item to the channel's list, node.
func (e *ownerEdit) addItem(node ast.Node, key ast.MapKeyNode, item string) (splice, error) {
	path := ownerPath(e.ch)
	switch n := node.(type) {
	case *ast.NullNode:
		return e.fillNull(n, key, nil, item)
	case *ast.SequenceNode:
		if n.IsFlowStyle {
			return e.appendToFlow(n.End, item)
		}
		if len(n.Entries) == 0 {
			return splice{}, e.uneditable(path)
		}
		indent, err := e.indent(n.Entries[0].Start, path)
		if err != nil {
			return splice{}, err
		}
		return e.insertAfter(lastToken(n), indent+"- "+item+e.nl)
	}
	return splice{}, e.uneditable(path)
}

// fillNull gives a key whose value is null (written, as null or ~, or
// left out) the levels rest and the list holding item.
func (e *ownerEdit) fillNull(n *ast.NullNode, key ast.MapKeyNode, rest []string, item string) (splice, error) {
	if start, err := e.offset(n.GetToken()); err == nil && bytes.HasPrefix(e.src[start:], []byte(n.GetToken().Value)) {
		return splice{start, start + len(n.GetToken().Value), flowValue(rest, item, false)}, nil
	}
	at := ownerPath(e.ch)[:len(ownerPath(e.ch))-len(rest)]
	indent, err := e.indent(key.GetToken(), at)
	if err != nil {
		return splice{}, err
	}
	indent += "  "
	if len(rest) == 0 {
		return e.insertAfter(key.GetToken(), indent+"- "+item+e.nl)
	}
	return e.insertAfter(key.GetToken(), blockText(rest, indent, item, e.nl))
}

// level is a mapping on the way to the list and the entry in it that
// leads there.
type level struct {
	node    ast.Node
	entries []*ast.MappingValueNode
	flow    bool
	index   int
}

// remove returns the splices that take sender out of the list.
func (e *ownerEdit) remove(sender string) ([]splice, error) {
	path := ownerPath(e.ch)
	var levels []level
	node := e.body
	for depth := range path {
		if err := e.plain(node, path[:depth]); err != nil {
			return nil, err
		}
		entries, flow, ok := mappingOf(node)
		if !ok {
			return nil, e.uneditable(path[:depth])
		}
		i, err := e.find(entries, path[depth], path[:depth])
		if err != nil {
			return nil, err
		}
		if i < 0 {
			return nil, e.uneditable(path[:depth+1]) // listed, but not here: a merge or alias put it there
		}
		levels = append(levels, level{node: node, entries: entries, flow: flow, index: i})
		node = entries[i].Value
	}
	if err := e.plain(node, path); err != nil {
		return nil, err
	}
	seq, ok := node.(*ast.SequenceNode)
	if !ok {
		return nil, e.uneditable(path)
	}
	ad, err := channel.NewRegistry().Get(e.ch)
	if err != nil {
		return nil, err
	}
	var drop []int
	for i, v := range seq.Values {
		if s, ok := scalarText(v); ok {
			if canon, err := ad.Normalize(s); err == nil && canon == sender {
				drop = append(drop, i)
			}
		}
	}
	if len(drop) == 0 {
		return nil, e.uneditable(path)
	}
	if len(drop) < len(seq.Values) {
		return e.removeItems(seq, drop)
	}
	// The list goes with its key, and so does a block mapping left empty.
	l := len(levels) - 1
	for l > 0 && !levels[l].flow && len(levels[l].entries) == 1 {
		l--
	}
	return e.removeEntry(levels[l])
}

// removeItems takes the items drop (in order) out of a list that keeps
// others.
func (e *ownerEdit) removeItems(seq *ast.SequenceNode, drop []int) ([]splice, error) {
	if seq.IsFlowStyle {
		starts := make([]*token.Token, len(seq.Values))
		commas := make([]*token.Token, len(seq.Values))
		for i, v := range seq.Values {
			starts[i] = v.GetToken()
			if i < len(seq.Entries) {
				commas[i] = seq.Entries[i].Start
			}
		}
		return e.removeFromFlow(starts, commas, seq.End, drop)
	}
	var out []splice
	for _, i := range drop {
		if i >= len(seq.Entries) {
			return nil, e.uneditable(ownerPath(e.ch))
		}
		sp, err := e.removeLines(seq.Entries[i].Start, lastToken(seq.Values[i]), ownerPath(e.ch))
		if err != nil {
			return nil, err
		}
		out = append(out, sp)
	}
	return out, nil
}

// removeEntry takes the entry l.index out of the mapping l.
func (e *ownerEdit) removeEntry(l level) ([]splice, error) {
	mv := l.entries[l.index]
	if !l.flow {
		sp, err := e.removeLines(mv.Key.GetToken(), lastToken(mv), ownerPath(e.ch))
		return []splice{sp}, err
	}
	starts := make([]*token.Token, len(l.entries))
	commas := make([]*token.Token, len(l.entries))
	for i, v := range l.entries {
		starts[i], commas[i] = v.Key.GetToken(), v.CollectEntry
	}
	return e.removeFromFlow(starts, commas, flowEnd(l.node), []int{l.index})
}

// removeFromFlow takes the elements drop (in order) out of a flow
// collection whose elements start at starts, each after the comma
// commas[i] (none for the first), and which ends with end. A run of
// elements goes with the comma after it, or, at the end, the comma
// before it.
func (e *ownerEdit) removeFromFlow(starts, commas []*token.Token, end *token.Token, drop []int) ([]splice, error) {
	path := ownerPath(e.ch)
	var out []splice
	for len(drop) > 0 {
		a, b := drop[0], drop[0]
		for len(drop) > 1 && drop[1] == b+1 {
			drop, b = drop[1:], b+1
		}
		drop = drop[1:]
		var from, to *token.Token
		switch {
		case b+1 < len(starts):
			from, to = starts[a], starts[b+1]
		case a > 0:
			from, to = commas[a], end
		default:
			from, to = starts[0], end
		}
		if from == nil || to == nil {
			return nil, e.uneditable(path)
		}
		start, err := e.offset(from)
		if err != nil {
			return nil, err
		}
		stop, err := e.offset(to)
		if err != nil {
			return nil, err
		}
		if to == end {
			stop = e.trimBack(stop)
		}
		if stop < start {
			return nil, e.uneditable(path)
		}
		out = append(out, splice{start, stop, ""})
	}
	return out, nil
}

// removeLines removes the whole lines from first's to last's.
func (e *ownerEdit) removeLines(first, last *token.Token, path []string) (splice, error) {
	if _, err := e.indent(first, path); err != nil {
		return splice{}, err
	}
	start, err := e.offset(first)
	if err != nil {
		return splice{}, err
	}
	end, err := e.offset(last)
	if err != nil {
		return splice{}, err
	}
	return splice{e.lineStart(start), e.lineEnd(end), ""}, nil
}

// appendToFlow adds text as the last element of the flow collection that
// end closes: after the last element, with a comma unless it is the first
// or the collection ends with one.
func (e *ownerEdit) appendToFlow(end *token.Token, text string) (splice, error) {
	if end == nil {
		return splice{}, e.uneditable(ownerPath(e.ch))
	}
	p, err := e.offset(end)
	if err != nil {
		return splice{}, err
	}
	p = e.trimBack(p)
	switch {
	case p == 0:
		return splice{}, e.uneditable(ownerPath(e.ch))
	case e.src[p-1] == '[' || e.src[p-1] == '{':
	case e.src[p-1] == ',':
		text = " " + text
	default:
		text = ", " + text
	}
	return splice{p, p, text}, nil
}

// appendAtEnd adds lines at the end of the file.
func (e *ownerEdit) appendAtEnd(text string) splice {
	n := len(e.src)
	if n > 0 && e.src[n-1] != '\n' {
		text = e.nl + text
	}
	return splice{n, n, text}
}

// insertAfter adds lines after the line holding tok.
func (e *ownerEdit) insertAfter(tok *token.Token, text string) (splice, error) {
	off, err := e.offset(tok)
	if err != nil {
		return splice{}, err
	}
	p := e.lineEnd(off)
	if p == len(e.src) && (p == 0 || e.src[p-1] != '\n') {
		text = e.nl + text
	}
	return splice{p, p, text}, nil
}

// offset is the byte offset in src of tok, from its line and column (a
// count of runes; goccy's Offset is not a byte count).
func (e *ownerEdit) offset(tok *token.Token) (int, error) {
	if tok == nil || tok.Position == nil || tok.Position.Line < 1 || tok.Position.Line > len(e.lines) || tok.Position.Column < 1 {
		return 0, e.uneditable(ownerPath(e.ch))
	}
	off := e.lines[tok.Position.Line-1]
	for range tok.Position.Column - 1 {
		r, size := utf8.DecodeRune(e.src[off:])
		if size == 0 || r == '\n' {
			return 0, e.uneditable(ownerPath(e.ch))
		}
		off += size
	}
	return off, nil
}

// indent is the white space before tok on its line, which must be all
// there is before it.
func (e *ownerEdit) indent(tok *token.Token, path []string) (string, error) {
	off, err := e.offset(tok)
	if err != nil {
		return "", err
	}
	before := e.src[e.lineStart(off):off]
	if len(bytes.Trim(before, " ")) > 0 {
		return "", e.uneditable(path)
	}
	return string(before), nil
}

func (e *ownerEdit) lineStart(off int) int {
	return bytes.LastIndexByte(e.src[:off], '\n') + 1
}

// lineEnd is the offset after the line break that ends off's line, or the
// end of src.
func (e *ownerEdit) lineEnd(off int) int {
	if i := bytes.IndexByte(e.src[off:], '\n'); i >= 0 {
		return off + i + 1
	}
	return len(e.src)
}

// trimBack moves off back over white space.
func (e *ownerEdit) trimBack(off int) int {
	for off > 0 && strings.IndexByte(" \t\r\n", e.src[off-1]) >= 0 {
		off--
	}
	return off
}

// plain refuses a node on the way to the list that is not written out
// where it stands: an alias, an anchor (others may refer to it) or a tag.
func (e *ownerEdit) plain(n ast.Node, path []string) error {
	switch n.(type) {
	case *ast.AliasNode, *ast.AnchorNode, *ast.TagNode:
		return e.uneditable(path)
	}
	return nil
}

// find returns the index of key among entries, or -1. A merge key among
// them is refused: what it brings in cannot be edited here.
func (e *ownerEdit) find(entries []*ast.MappingValueNode, key string, path []string) (int, error) {
	found := -1
	for i, mv := range entries {
		if mv.Key.IsMergeKey() {
			return 0, e.uneditable(path)
		}
		if keyText(mv.Key) == key {
			found = i
		}
	}
	return found, nil
}

func (e *ownerEdit) uneditable(path []string) error {
	where := "the top of the file"
	if len(path) > 0 {
		where = joinPath(path)
	}
	return fmt.Errorf("%s: cannot edit %s in place: %s is written in a way this edit does not handle (an alias, anchor, tag or merge key, or an unusual layout); edit the file by hand",
		e.name, joinPath(ownerPath(e.ch)), where)
}

// mappingOf returns the entries of a mapping node and whether it is
// written in flow style; ok is false for any other node.
func mappingOf(n ast.Node) (entries []*ast.MappingValueNode, flow, ok bool) {
	switch v := n.(type) {
	case *ast.MappingNode:
		return v.Values, v.IsFlowStyle, true
	case *ast.MappingValueNode:
		return []*ast.MappingValueNode{v}, v.IsFlowStyle, true
	}
	return nil, false, false
}

// flowEnd is the closing brace of a flow mapping, or nil.
func flowEnd(n ast.Node) *token.Token {
	if m, ok := n.(*ast.MappingNode); ok {
		return m.End
	}
	return nil
}

// scalarText is the text of a list item as the walker reads it for a
// string: a plain scalar as written.
func scalarText(n ast.Node) (string, bool) {
	s, ok := literal(n).(*ast.StringNode)
	if !ok {
		return "", false
	}
	return s.Value, true
}

// quotedKeys reports whether a flow mapping's keys are written in double
// quotes, as in a JSON file; new keys are written the same way.
func quotedKeys(entries []*ast.MappingValueNode) bool {
	return len(entries) > 0 && entries[0].Key.GetToken() != nil && entries[0].Key.GetToken().Type == token.DoubleQuoteType
}

// lastToken is the token of n that comes last in the text, comments aside.
func lastToken(n ast.Node) *token.Token {
	var v lastTokenVisitor
	ast.Walk(&v, n)
	return v.last
}

type lastTokenVisitor struct{ last *token.Token }

func (v *lastTokenVisitor) Visit(n ast.Node) ast.Visitor {
	switch m := n.(type) {
	case *ast.CommentNode, *ast.CommentGroupNode:
		return nil
	case *ast.MappingNode:
		v.see(m.End)
	case *ast.SequenceNode:
		v.see(m.End)
	}
	v.see(n.GetToken())
	return v
}

func (v *lastTokenVisitor) see(t *token.Token) {
	if t == nil || t.Position == nil {
		return
	}
	if v.last == nil || t.Position.Line > v.last.Position.Line ||
		(t.Position.Line == v.last.Position.Line && t.Position.Column > v.last.Position.Column) {
		v.last = t
	}
}

// blockText writes the levels path as block mappings, each indented two
// spaces more than the last, holding a list of item.
func blockText(path []string, indent, item, nl string) string {
	var b strings.Builder
	for _, k := range path {
		b.WriteString(indent + k + ":" + nl)
		indent += "  "
	}
	b.WriteString(indent + "- " + item + nl)
	return b.String()
}

// flowValue writes the levels path as flow mappings holding a list of
// item: {senders: {telegram: ["42"]}}.
func flowValue(path []string, item string, quoted bool) string {
	if len(path) == 0 {
		return "[" + item + "]"
	}
	return "{" + flowEntry(path, item, quoted) + "}"
}

// flowEntry is flowValue's first key with its value: senders: {…}.
func flowEntry(path []string, item string, quoted bool) string {
	k := path[0]
	if quoted {
		k = strconv.Quote(k)
	}
	return k + ": " + flowValue(path[1:], item, quoted)
}
