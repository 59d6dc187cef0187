package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"time"

	opaversion "github.com/open-policy-agent/opa/v1/version"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
)

// Release builds (goreleaser, the Dockerfile) stamp the version, and the
// revision and time when the build has no VCS information of its own:
//
//	go build -ldflags "-X main.version=v1.2.3 -X main.revision=<commit> -X main.buildTime=<RFC 3339>" ./cmd/regoguard
//
// When version is empty, the module version from the build information is
// used: v1.2.3 after `go install ...@v1.2.3`, "(devel)" in a work tree; the
// revision and time come from Go's VCS stamping.
var (
	version   = ""
	revision  = ""
	buildTime = ""
)

// stamps are the values set with -ldflags -X.
type stamps struct{ version, revision, time string }

// buildInfo says what this binary is: its version, the VCS revision and
// time it was built from, and the Go and OPA versions in it.
type buildInfo struct {
	Version   string `json:"version"`
	Revision  string `json:"revision,omitempty"`
	Time      string `json:"time,omitempty"`
	Modified  bool   `json:"modified,omitempty"`
	GoVersion string `json:"go"`
	OPA       string `json:"opa"`
}

// currentBuild reads the binary's build information.
func currentBuild() buildInfo {
	bi, _ := debug.ReadBuildInfo()
	return describeBuild(bi, stamps{version, revision, buildTime})
}

// describeBuild turns Go's build information (nil when the binary has
// none) and the -ldflags stamp into a buildInfo.
func describeBuild(bi *debug.BuildInfo, st stamps) buildInfo {
	b := describeModule(bi, st.version)
	// goreleaser stamps "none" and the zero time when it has no commit
	// (a snapshot outside a git checkout): those say nothing.
	if st.revision != "" && st.revision != "none" {
		b.Revision, b.Modified = st.revision, false
	}
	if t, err := time.Parse(time.RFC3339, st.time); err == nil && !t.IsZero() && t.Year() > 1 {
		b.Time = st.time
	}
	return b
}

func describeModule(bi *debug.BuildInfo, stamp string) buildInfo {
	b := buildInfo{Version: stamp, GoVersion: runtime.Version(), OPA: opaversion.Version}
	if bi == nil {
		if b.Version == "" {
			b.Version = "unknown"
		}
		return b
	}
	if b.Version == "" {
		b.Version = bi.Main.Version
	}
	if b.Version == "" {
		b.Version = "(devel)"
	}
	if bi.GoVersion != "" {
		b.GoVersion = bi.GoVersion
	}
	for _, d := range bi.Deps {
		if d.Path == "github.com/open-policy-agent/opa" {
			b.OPA = d.Version
			if d.Replace != nil && d.Replace.Version != "" {
				b.OPA = d.Replace.Version
			}
		}
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Revision = s.Value
		case "vcs.time":
			b.Time = s.Value
		case "vcs.modified":
			b.Modified = s.Value == "true"
		}
	}
	return b
}

// String is the one-line form printed by --version.
func (b buildInfo) String() string {
	s := "regoguard " + b.Version
	if b.Revision != "" {
		s += " (" + b.Revision
		if b.Modified {
			s += "-dirty"
		}
		if b.Time != "" {
			s += ", " + b.Time
		}
		s += ")"
	}
	return s + ", " + b.GoVersion + ", OPA " + b.OPA
}

// logAttrs are the start-up log line's attributes.
func (b buildInfo) logAttrs() []any {
	return []any{"version", b.Version, "revision", b.revisionLabel(), "go", b.GoVersion, "opa", b.OPA}
}

func (b buildInfo) revisionLabel() string {
	if b.Modified {
		return b.Revision + "-dirty"
	}
	return b.Revision
}

// write prints the build information, one field a line.
func (b buildInfo) write(w io.Writer) error {
	rev := b.revisionLabel()
	if rev == "" {
		rev = "unknown"
	}
	t := b.Time
	if t == "" {
		t = "unknown"
	}
	_, err := fmt.Fprintf(w, "regoguard %s\nrevision:  %s\nbuilt:     %s\ngo:        %s\nopa:       %s\nplatform:  %s/%s\n",
		b.Version, rev, t, b.GoVersion, b.OPA, runtime.GOOS, runtime.GOARCH)
	return err
}

// collector is the regoguard_build_info gauge: always 1, the build in its
// labels, as Prometheus' own go_build_info.
func (b buildInfo) collector() prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "regoguard_build_info",
		Help: "Build information of the running regoguard (value 1): version, VCS revision, Go and OPA versions.",
		ConstLabels: prometheus.Labels{
			"version": b.Version, "revision": b.revisionLabel(), "goversion": b.GoVersion, "opa_version": b.OPA,
		},
	})
	g.Set(1)
	return g
}

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, VCS revision, and Go and OPA versions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return currentBuild().write(cmd.OutOrStdout())
		},
	}
}
