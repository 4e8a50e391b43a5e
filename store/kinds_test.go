package store

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestChangeKindsComplete reads the ChangeKind constants declared in this
// package's source and checks that ChangeKinds lists each once: the audit
// API refuses a kind it does not list, so one left out could never be
// filtered for.
func TestChangeKindsComplete(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var declared []ChangeKind
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "ChangeKind" {
					continue
				}
				for _, v := range vs.Values {
					lit, ok := v.(*ast.BasicLit)
					if !ok {
						t.Fatalf("a ChangeKind constant is not a string literal: %T", v)
					}
					s, err := strconv.Unquote(lit.Value)
					if err != nil {
						t.Fatal(err)
					}
					declared = append(declared, ChangeKind(s))
				}
			}
		}
	}
	if len(declared) == 0 {
		t.Fatal("found no ChangeKind constants")
	}
	listed := ChangeKinds()
	for _, k := range declared {
		if !slices.Contains(listed, k) {
			t.Errorf("ChangeKinds() leaves out %q", k)
		}
	}
	for i, k := range listed {
		if !slices.Contains(declared, k) {
			t.Errorf("ChangeKinds() lists %q, which is not declared", k)
		}
		if slices.Contains(listed[:i], k) {
			t.Errorf("ChangeKinds() lists %q twice", k)
		}
	}
}
