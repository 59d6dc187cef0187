package bundles_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/regoguard/regoguard/bundles"
	"github.com/regoguard/regoguard/policy"
)

func fileLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var ev map[string]any
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("%s: a line that is not one JSON object: %v: %q", path, err, sc.Text())
		}
		out = append(out, ev)
	}
	return out
}

func TestDecisionLogFileHoldsEveryEventAfterStop(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "decisions.jsonl")
	dl, err := bundles.NewDecisionLogger(ctx, bundles.DecisionLogConfig{File: path, QueueSize: 10000, Logger: quiet,
		Labels: map[string]string{"app": "demo"}})
	if err != nil {
		t.Fatal(err)
	}
	const n = 500
	for i := range n {
		in := ast.MustParseTerm(fmt.Sprintf(`{"method": "GET", "path": "/doc/%d"}`, i)).Value
		if err := dl.LogDecision(ctx, policy.DecisionEvent{ID: fmt.Sprint("dec-", i), Path: "httpapi/authz", Input: in,
			Result: map[string]any{"allow": i%2 == 0}, Revision: "rev1", Timestamp: time.Now(),
			Custom: map[string]any{"k": "v"}}); err != nil {
			t.Fatal(err)
		}
	}
	dl.Stop(ctx)
	events := fileLines(t, path)
	if len(events) != n {
		t.Fatalf("%d lines in the file after Stop, want %d", len(events), n)
	}
	ev := events[7]
	input, _ := ev["input"].(map[string]any)
	result, _ := ev["result"].(map[string]any)
	labels, _ := ev["labels"].(map[string]any)
	custom, _ := ev["custom"].(map[string]any)
	if ev["decision_id"] != "dec-7" || input["path"] != "/doc/7" || result["allow"] != false || ev["revision"] != "rev1" ||
		labels["app"] != "demo" || custom["k"] != "v" || ev["path"] != "httpapi/authz" {
		t.Errorf("event %v is not OPA's EventV1 of what was logged", ev)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v, want 0600: decision logs hold request inputs", info.Mode().Perm())
	}
	if err := dl.LogDecision(ctx, policy.DecisionEvent{ID: "late"}); err == nil {
		t.Error("an event logged after Stop was accepted")
	}
}

func TestDecisionLogFileRotatesWithinItsBound(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "decisions.jsonl")
	const maxBytes, keep = 4096, 2
	dl, err := bundles.NewDecisionLogger(ctx, bundles.DecisionLogConfig{File: path, FileMaxBytes: maxBytes, FileKeep: keep, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 300 {
		in := ast.MustParseTerm(fmt.Sprintf(`{"method": "GET", "path": "/doc/%d"}`, i)).Value
		if err := dl.LogDecision(ctx, policy.DecisionEvent{ID: fmt.Sprint("dec-", i), Input: in, Timestamp: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	dl.Stop(ctx)
	var total int64
	for _, p := range []string{path, path + ".1", path + ".2"} {
		info, err := os.Stat(p)
		if err != nil {
			t.Fatalf("rotation: %v", err)
		}
		if info.Size() > maxBytes {
			t.Errorf("%s is %d bytes, over the %d-byte bound", p, info.Size(), maxBytes)
		}
		total += info.Size()
		fileLines(t, p) // every file holds whole JSON lines
	}
	if _, err := os.Stat(path + ".3"); !os.IsNotExist(err) {
		t.Errorf("%s.3 exists: more files kept than FileKeep", path)
	}
	// The newest events are in the live file; its last line is the last event.
	events := fileLines(t, path)
	if last := events[len(events)-1]["decision_id"]; last != "dec-299" {
		t.Errorf("last event %v, want dec-299", last)
	}
}

func TestDecisionLogFileUnwritableFailsAtStart(t *testing.T) {
	_, err := bundles.NewDecisionLogger(context.Background(), bundles.DecisionLogConfig{
		File: filepath.Join(t.TempDir(), "no", "such", "dir", "d.jsonl"), Logger: quiet})
	if err == nil {
		t.Fatal("a decision log file in a missing directory was accepted")
	}
}

// A decision log file that is already there (made by the operator, by
// logrotate's "create 0644", by an older version) keeps its mode when it is
// opened for append: decision logs hold request inputs, so a file others may
// read or write is made owner-only before the first event, whatever its
// mode. Let through: files still open to others after start.
func TestDecisionLogFileAlreadyThereIsMadeOwnerOnly(t *testing.T) {
	ctx := context.Background()
	probes, through := 0, 0
	for _, mode := range []os.FileMode{0o644, 0o666, 0o640, 0o604, 0o660, 0o606, 0o777, 0o700, 0o600, 0o622} {
		probes++
		path := filepath.Join(t.TempDir(), "decisions.jsonl")
		if err := os.WriteFile(path, []byte("{}\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		dl, err := bundles.NewDecisionLogger(ctx, bundles.DecisionLogConfig{File: path, Logger: quiet})
		if err != nil {
			t.Fatalf("mode %v: %v", mode, err)
		}
		if err := dl.LogDecision(ctx, policy.DecisionEvent{ID: "d1", Path: "httpapi/authz", Input: ast.MustParseTerm(`{"path": "/x"}`).Value,
			Result: true, Timestamp: time.Now()}); err != nil {
			t.Fatal(err)
		}
		dl.Stop(ctx)
		info, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm()&0o077 != 0 {
			through++
			t.Errorf("a file of mode %v is %v after start: others may read the decision log", mode, info.Mode().Perm())
		}
		if got := fileLines(t, path); len(got) != 2 {
			t.Errorf("mode %v: %d lines, want the one already there and the new event", mode, len(got))
		}
	}
	t.Logf("decision log file modes: %d probes, let through: %d", probes, through)
	if through != 0 {
		t.Errorf("let through: %d (must be 0)", through)
	}
}

// What decided an event besides the policy (layout, deny status, caller)
// is written under custom.regoguard, beside the event's own custom fields,
// which are not written to.
func TestDecisionEventRecordsWhatDecidedIt(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "decisions.jsonl")
	dl, err := bundles.NewDecisionLogger(ctx, bundles.DecisionLogConfig{File: path, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	own := map[string]any{"k": "v"}
	in := ast.MustParseTerm(`{"request_method": "GET", "request_path": ["finance"], "user": "alice"}`).Value
	for _, ev := range []policy.DecisionEvent{
		{ID: "alice", Input: in, Result: true, InputLayout: "fastapi-opa", DenyStatus: 401,
			Caller: &policy.EventCaller{Subject: "alice", Method: "apikey"}, Custom: own},
		{ID: "anon", Input: in, Result: false, InputLayout: "regoguard", DenyStatus: 403, Caller: &policy.EventCaller{Anonymous: true}},
		{ID: "bare", Input: in, Result: false},
	} {
		if err := dl.LogDecision(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	dl.Stop(ctx)
	events := fileLines(t, path)
	if len(events) != 3 {
		t.Fatalf("%d events", len(events))
	}
	rec := func(ev map[string]any) map[string]any {
		custom, _ := ev["custom"].(map[string]any)
		r, _ := custom[policy.EventCustomKey].(map[string]any)
		return r
	}
	a := rec(events[0])
	if a["input_layout"] != "fastapi-opa" || a["deny_status"] != float64(401) || a["sub"] != "alice" || a["auth_method"] != "apikey" ||
		a["anonymous"] != nil || events[0]["custom"].(map[string]any)["k"] != "v" {
		t.Errorf("alice's event: %v", events[0]["custom"])
	}
	if b := rec(events[1]); b["anonymous"] != true || b["sub"] != nil || b["deny_status"] != float64(403) {
		t.Errorf("the anonymous event: %v", b)
	}
	if events[2]["custom"] != nil {
		t.Errorf("an event that records nothing has custom %v", events[2]["custom"])
	}
	if len(own) != 1 {
		t.Errorf("the event's own Custom map was written to: %v", own)
	}
}
