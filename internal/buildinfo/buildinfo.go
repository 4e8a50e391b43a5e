// Package buildinfo says which pairgate this is, from what the Go toolchain
// recorded in the binary (runtime/debug.ReadBuildInfo): the module version,
// the commit and the Go version. `pairgate version` prints it and the
// daemon exports it as pairgate_build_info.
package buildinfo

import (
	"runtime"
	"runtime/debug"
)

// ModulePath is pairgate's module.
const ModulePath = "github.com/pairgate/pairgate"

// Info is the JSON of `pairgate version --json`.
type Info struct {
	// Version is pairgate's module version: a tag such as v1.2.0, a
	// pseudo-version for a build from a checkout (with +dirty when it had
	// changes), or "(devel)" when the toolchain recorded none.
	Version string `json:"version"`
	// Commit is the VCS revision of a build from a checkout, with -dirty
	// when it had changes; "" when it was not recorded (go install, a
	// tarball, pairgate embedded in another program).
	Commit string `json:"commit"`
	// Go is the toolchain that built the binary, e.g. go1.26.8.
	Go string `json:"go"`
}

// Read returns this binary's build information.
func Read() Info {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return Info{Version: "(devel)", Go: runtime.Version()}
	}
	return fromBuildInfo(bi)
}

func fromBuildInfo(bi *debug.BuildInfo) Info {
	info := Info{Version: "(devel)", Go: bi.GoVersion}
	if bi.Main.Path != ModulePath {
		// pairgate embedded in a gateway: its version is that of the
		// dependency, and the VCS settings describe the gateway.
		for _, d := range bi.Deps {
			if d.Path != ModulePath {
				continue
			}
			if d.Replace != nil {
				d = d.Replace
			}
			if d.Version != "" {
				info.Version = d.Version
			}
		}
		return info
	}
	if bi.Main.Version != "" {
		info.Version = bi.Main.Version
	}
	modified := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			info.Commit = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if modified && info.Commit != "" {
		info.Commit += "-dirty"
	}
	return info
}
