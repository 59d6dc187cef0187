package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// serve --help lists every flag under its concern, once: a new flag that
// no group names would land under "Other", and this test says which.
func TestServeHelpGroupsEveryFlag(t *testing.T) {
	cmd := newServeCommand()
	titles, sets := groupFlags(cmd.LocalFlags(), serveFlagGroups)
	seen := map[string]string{}
	for i, title := range titles {
		sets[i].VisitAll(func(f *pflag.Flag) {
			if prev, ok := seen[f.Name]; ok {
				t.Errorf("--%s is under %q and %q", f.Name, prev, title)
			}
			seen[f.Name] = title
			if title == "Other" {
				t.Errorf("--%s is in no group of serveFlagGroups", f.Name)
			}
		})
	}
	total := 0
	cmd.LocalFlags().VisitAll(func(f *pflag.Flag) {
		if f.Name != "help" {
			total++
		}
	})
	if len(seen) != total {
		t.Errorf("%d flags grouped, %d flags", len(seen), total)
	}
	var out bytes.Buffer
	cmd.SetOut(&out)
	if err := cmd.Usage(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"\nProxy:\n", "\nAuthentication: OpenID Connect:\n", "--api-key-header", "\nDecision logs:\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("serve's usage lacks %q", want)
		}
	}
	_, flags, _ := strings.Cut(out.String(), "\nProxy:\n")
	if strings.Index(flags, "--listen") > strings.Index(flags, "--policy ") {
		t.Error("the proxy's flags do not come first")
	}
}
