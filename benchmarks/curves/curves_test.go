package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestMain lets the test binary be its own child process, as the curves
// command is: the driver runs os.Executable() with "engine" or
// "engine-activation".
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && (os.Args[1] == "engine" || os.Args[1] == "engine-activation") {
		main()
		return
	}
	os.Exit(m.Run())
}

// TestSmallRun runs every curve at its smallest size against a real OPA
// server: each point checks that both systems allow the reference request,
// and the chart and tables come out. Not timed.
func TestSmallRun(t *testing.T) {
	if _, err := exec.LookPath("opa"); err != nil {
		t.Skip("opa not on PATH (go install github.com/open-policy-agent/opa@v1.22.3)")
	}
	dir := t.TempDir()
	out, chart := filepath.Join(dir, "curves.json"), filepath.Join(dir, "curves.svg")
	args := []string{"-curves", "rules,scan,data,serve,activation", "-rules", "10,100", "-entries", "1000",
		"-serve-entries", "1000", "-act-entries", "1000", "-n", "50", "-opa-n", "20", "-out", out, "-chart", chart}
	if bin := os.Getenv("TEST_REGOGUARD_BINARY"); bin != "" {
		// .ci/run builds the command once; this module alone (GOWORK=off)
		// cannot build cmd/regoguard, a module it does not require.
		args = append(args, "-regoguard", bin)
	}
	err := runAll(args)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var res Results
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	// rules and scan at 2 sizes, data at 1 size in 3 stores, serve at 1
	// size; activation: engine and OPA in 3 stores.
	if len(res.Points) != 8 || len(res.Activation) != 6 {
		t.Fatalf("%d points and %d activation results, want 8 and 6", len(res.Points), len(res.Activation))
	}
	for _, p := range res.Points {
		if p.Curve == "serve" && (p.Serve == nil || p.Serve.Correct != 5 || p.Serve.RSSBytes <= 0 || p.Serve.P50Nanos <= 0) {
			t.Errorf("serve point: %+v", p.Serve)
		}
	}
	for _, p := range res.Points {
		if p.Curve != "serve" && p.Engine.RSSBytes <= 0 || p.OPA.RSSBytes <= 0 || p.Curve != "serve" && p.Engine.P50Nanos <= 0 || p.OPA.P50Nanos <= 0 {
			t.Errorf("%s %d %s: missing figures %+v", p.Curve, p.Size, p.Store, p)
		}
	}
	for _, a := range res.Activation {
		if a.Errors != 0 || a.SteadyN == 0 || a.SwapN == 0 {
			t.Errorf("activation %s %s: %+v", a.System, a.Store, a)
		}
	}
	svg, err := os.ReadFile(chart)
	if err != nil || !strings.HasPrefix(string(svg), "<svg") {
		t.Errorf("chart: %v %.40q", err, svg)
	}
}

// The owner of a document tells the revisions apart in the OPA activation.
func TestOwnerRev(t *testing.T) {
	for rev := range 2 {
		dir := t.TempDir()
		c, err := genData(dir, 10, rev)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dir, "data.json"))
		if err != nil {
			t.Fatal(err)
		}
		var data struct {
			ACL struct {
				Documents map[string]struct{ Owner string }
			}
		}
		if err := json.Unmarshal(b, &data); err != nil {
			t.Fatal(err)
		}
		id := c.input["path_segments"].([]any)[1].(string)
		if got := ownerRev(data.ACL.Documents[id].Owner, c.input); got != rev {
			t.Errorf("revision %d: ownerRev = %d (%s)", rev, got, fmt.Sprint(data.ACL.Documents[id]))
		}
	}
}
