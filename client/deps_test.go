package client_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestDependencies keeps the client small for the programs that import it:
// besides the standard library it may depend only on package api, the
// wire types (itself a leaf). Not the store, the config or its YAML
// library, the pairing service or the server: a gateway that only calls
// the daemon must not compile SQLite. The message names the chain of
// imports that brought an unwanted package in.
func TestDependencies(t *testing.T) {
	const module = "github.com/pairgate/pairgate"
	allowed := []string{module + "/client", module + "/api"}
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{.Standard}} {{join .Imports \" \"}}", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	imports := map[string][]string{}
	var deps []string
	for line := range strings.Lines(strings.TrimSpace(string(out))) {
		f := strings.Fields(line)
		if f[1] == "true" {
			continue // the standard library
		}
		deps = append(deps, f[0])
		imports[f[0]] = f[2:]
	}
	if !slices.Contains(deps, module+"/api") {
		t.Fatalf("go list shows no dependency on %s/api; the check is not looking at the client:\n%s", module, out)
	}
	// The packages this test exists for, named so that widening allowed
	// cannot let them in.
	banned := []string{"github.com/goccy/go-yaml", module + "/config", module + "/pairing", module + "/store", module + "/server"}
	for _, dep := range deps {
		isBanned := slices.ContainsFunc(banned, func(b string) bool { return dep == b || strings.HasPrefix(dep, b+"/") })
		if isBanned || !slices.Contains(allowed, dep) {
			t.Errorf("the client depends on %s: %s", dep, strings.Join(chain(imports, module+"/client", dep), " → "))
		}
	}
}

// chain is a shortest path of imports from one package to another.
func chain(imports map[string][]string, from, to string) []string {
	prev := map[string]string{from: ""}
	queue := []string{from}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if p == to {
			var path []string
			for ; p != ""; p = prev[p] {
				path = append([]string{p}, path...)
			}
			return path
		}
		for _, next := range imports[p] {
			if _, seen := prev[next]; !seen {
				prev[next] = p
				queue = append(queue, next)
			}
		}
	}
	return []string{from, "…", to}
}
