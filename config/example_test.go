package config

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// examplePath is the example shipped at the root of the repository.
var examplePath = filepath.Join("..", "pairgate.example.yaml")

// pairgate.example.yaml holds the true defaults: loading it gives exactly
// Default() (an empty list or mapping in the file is the unset default).
func TestExampleIsTheDefaults(t *testing.T) {
	got, err := Load(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Default(), got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("%s differs from Default() (-Default +file):\n%s", examplePath, diff)
	}
}

// Every key of the Config type is written in the example, so it is the
// reference of what a config can set.
func TestExampleHasEveryKey(t *testing.T) {
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	file, err := parser.ParseBytes(data, 0)
	if err != nil {
		t.Fatal(err)
	}
	w := walker{name: examplePath, keys: map[string]*token.Token{}}
	w.walk(file.Docs[0].Body, reflect.TypeFor[Config](), nil)
	var missing []string
	var visit func(t reflect.Type, path []string)
	visit = func(t reflect.Type, path []string) {
		if t.Kind() != reflect.Struct || t == durationType {
			return
		}
		for i := range t.NumField() {
			f := t.Field(i)
			p := append(slices.Clip(path), yamlKey(f))
			if _, ok := w.keys[joinPath(p)]; !ok {
				missing = append(missing, joinPath(p))
			}
			visit(f.Type, p) // maps (channels) hold no keys of their own here
		}
	}
	visit(reflect.TypeFor[Config](), nil)
	if len(missing) > 0 {
		t.Errorf("%s lacks keys %v", examplePath, missing)
	}
}
