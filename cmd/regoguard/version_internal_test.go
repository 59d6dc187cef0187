package main

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestDescribeBuild(t *testing.T) {
	bi := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "github.com/regoguard/regoguard", Version: "v1.4.0"},
		Deps:      []*debug.Module{{Path: "github.com/open-policy-agent/opa", Version: "v1.22.3"}},
		Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef"}, {Key: "vcs.time", Value: "2026-11-30T10:00:00Z"}, {Key: "vcs.modified", Value: "true"},
		},
	}
	cases := []struct {
		name  string
		bi    *debug.BuildInfo
		stamp stamps
		want  string
	}{
		{"go install @version", bi, stamps{}, "regoguard v1.4.0 (0123456789abcdef-dirty, 2026-11-30T10:00:00Z), go1.26.8, OPA v1.22.3"},
		{"ldflags version stamp wins", bi, stamps{version: "v1.5.0-rc.1"}, "regoguard v1.5.0-rc.1 (0123456789abcdef-dirty, 2026-11-30T10:00:00Z), go1.26.8, OPA v1.22.3"},
		{"work tree without VCS stamping", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}}, stamps{}, "regoguard (devel), go1.26.8, OPA "},
		{"release build without VCS information", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}},
			stamps{"v1.5.0", "fedcba9876543210", "2026-12-01T00:00:00Z"}, "regoguard v1.5.0 (fedcba9876543210, 2026-12-01T00:00:00Z), go1.26.8, OPA "},
		{"snapshot without a commit", bi, stamps{"v0.0.1-next", "none", "0001-01-01T00:00:00Z"},
			"regoguard v0.0.1-next (0123456789abcdef-dirty, 2026-11-30T10:00:00Z), go1.26.8, OPA v1.22.3"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := describeBuild(c.bi, c.stamp).String(); !strings.HasPrefix(got, c.want) {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
	var b strings.Builder
	if err := describeBuild(bi, stamps{}).write(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"regoguard v1.4.0\n", "revision:  0123456789abcdef-dirty\n", "built:     2026-11-30T10:00:00Z\n", "go:        go1.26.8\n", "opa:       v1.22.3\n"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("version output lacks %q:\n%s", want, b.String())
		}
	}
}

func TestSuggest(t *testing.T) {
	known := []string{"policy", "decision", "decision-cache", "opa-url", "upstream"}
	for word, want := range map[string]string{"polcy": "policy", "decison": "decision", "opa_url": "opa-url", "upstrem": "upstream", "zzz": ""} {
		got := ""
		if s := suggest(word, known); len(s) > 0 {
			got = s[0]
		}
		if got != want {
			t.Errorf("suggest(%q) = %q, want %q", word, got, want)
		}
	}
}
