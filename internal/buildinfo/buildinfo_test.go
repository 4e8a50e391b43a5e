package buildinfo

import (
	"runtime/debug"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestFromBuildInfo(t *testing.T) {
	vcs := []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "56bbe6e1f2a3"}, {Key: "vcs.modified", Value: "false"}}
	dirty := []debug.BuildSetting{{Key: "vcs.revision", Value: "56bbe6e1f2a3"}, {Key: "vcs.modified", Value: "true"}}
	tests := []struct {
		name string
		bi   debug.BuildInfo
		want Info
	}{
		{"release", debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: ModulePath, Version: "v1.2.0"}, Settings: vcs},
			Info{Version: "v1.2.0", Commit: "56bbe6e1f2a3", Go: "go1.26.8"}},
		{"source build without VCS", debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: ModulePath, Version: "(devel)"}},
			Info{Version: "(devel)", Commit: "", Go: "go1.26.8"}},
		{"no version at all", debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: ModulePath}},
			Info{Version: "(devel)", Go: "go1.26.8"}},
		{"modified checkout", debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: ModulePath, Version: "v0.0.0-20261124064604-56bbe6e1f2a3+dirty"}, Settings: dirty},
			Info{Version: "v0.0.0-20261124064604-56bbe6e1f2a3+dirty", Commit: "56bbe6e1f2a3-dirty", Go: "go1.26.8"}},
		// Embedded in a gateway: pairgate is a dependency, and the VCS
		// settings are the gateway's, not pairgate's.
		{"embedded", debug.BuildInfo{GoVersion: "go1.26.1", Main: debug.Module{Path: "example.com/gateway", Version: "v3.0.0"}, Settings: vcs,
			Deps: []*debug.Module{{Path: "golang.org/x/sync", Version: "v0.8.0"}, {Path: ModulePath, Version: "v1.4.1"}}},
			Info{Version: "v1.4.1", Go: "go1.26.1"}},
		{"embedded, replaced", debug.BuildInfo{GoVersion: "go1.26.1", Main: debug.Module{Path: "example.com/gateway"},
			Deps: []*debug.Module{{Path: ModulePath, Version: "v1.4.1", Replace: &debug.Module{Path: "../pairgate", Version: "(devel)"}}}},
			Info{Version: "(devel)", Go: "go1.26.1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, fromBuildInfo(&tt.bi)); diff != "" {
				t.Errorf("fromBuildInfo (-want +got):\n%s", diff)
			}
		})
	}
}
