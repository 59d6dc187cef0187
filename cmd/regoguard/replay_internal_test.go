package main

import (
	"encoding/json"
	"encoding/xml"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestReadEventsFormatsAndNotReplayable(t *testing.T) {
	dir := t.TempDir()
	// An indented collector upload, holding a masked event, an erased one,
	// one without input and a shadow policy's event.
	upload := `[
  {"decision_id": "1", "input": {"method": "GET", "path": "/a/1"}, "result": true},
  {"decision_id": "2", "input": {"method": "GET"}, "masked": ["/input/user/claims/email"], "result": true},
  {"decision_id": "3", "erased": ["/input"], "result": true},
  {"decision_id": "4", "result": false},
  {"decision_id": "5", "input": {}, "result": true, "custom": {"regoguard_shadow": {"result": "allow_to_deny"}}},
  {"decision_id": "6", "input": {}, "error": {"code": "internal_error", "message": "x"}},
  {"not": "an event"}
]`
	path := filepath.Join(dir, "upload.json")
	if err := os.WriteFile(path, []byte(upload), 0o600); err != nil {
		t.Fatal(err)
	}
	r := &replayer{o: &checkOptions{}, routes: map[string]*replayGroup{}, users: map[string]*replayGroup{},
		rep: replayReport{NotReplayable: map[string]int{}, Skipped: map[string]int{}, ByDirection: map[string]int{}}}
	var ids []string
	err := readEvents(path, func(ev map[string]any) {
		ids = append(ids, ev["decision_id"].(string))
		if custom, ok := ev["custom"].(map[string]any); ok && custom["regoguard_shadow"] != nil {
			r.rep.Skipped["shadow policy events"]++
			return
		}
		if reason, _, _ := r.recorded(ev); reason != "" {
			r.rep.NotReplayable[reason]++
		}
	}, func(reason string) { r.rep.Skipped[reason]++ })
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 6 || r.rep.Skipped["not a decision event"] != 1 || r.rep.Skipped["shadow policy events"] != 1 {
		t.Errorf("events %v, skipped %v", ids, r.rep.Skipped)
	}
	want := map[string]int{"input masked by decision-log masking": 1, "input erased by decision-log masking": 1,
		"no input recorded": 1, "the recorded decision failed": 1}
	for k, v := range want {
		if r.rep.NotReplayable[k] != v {
			t.Errorf("not replayable %v, want %v", r.rep.NotReplayable, want)
			break
		}
	}
}

func TestPathPattern(t *testing.T) {
	for in, want := range map[string]string{
		"/docs/123":          "/docs/{id}",
		"/docs/a1b2/history": "/docs/{id}/history",
		"/public/index.html": "/public/index.html",
		"":                   "(no path)",
	} {
		if got := pathPattern(in); got != want {
			t.Errorf("pathPattern(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestReplayDirectionsAndStatuses(t *testing.T) {
	dir := t.TempDir()
	// The candidate refuses /secret with 404 and lets anyone POST.
	candidate := "package httpapi.authz\n\nallow if input.method == \"POST\"\n\nstatus := 404 if startswith(input.path, \"/secret\")\n"
	if err := os.WriteFile(filepath.Join(dir, "p.rego"), []byte(candidate), 0o600); err != nil {
		t.Fatal(err)
	}
	events := `{"decision_id": "a", "input": {"method": "GET", "path": "/secret/1", "user": {"authenticated": true, "sub": "alice"}}, "result": {"allow": false}}
{"decision_id": "b", "input": {"method": "POST", "path": "/x", "user": {"authenticated": false}}, "result": {"allow": false}}
{"decision_id": "c", "input": {"method": "GET", "path": "/x", "user": {"authenticated": true, "sub": "bob"}}, "result": {"allow": true}}
{"decision_id": "d", "input": {"method": "GET", "path": "/y", "user": {"authenticated": false}}, "result": false}
`
	path := filepath.Join(dir, "events.jsonl")
	if err := os.WriteFile(path, []byte(events), 0o600); err != nil {
		t.Fatal(err)
	}
	o := &checkOptions{policyOptions: policyOptions{policies: []string{dir}, decision: "httpapi/authz", denyStatus: 403, layout: "regoguard"},
		checkExtras: checkExtras{replay: path}}
	var out strings.Builder
	o.format = "json"
	if err := o.runReplay(t.Context(), &out); err != nil {
		t.Fatal(err)
	}
	var rep replayReport
	if err := json.Unmarshal([]byte(out.String()), &rep); err != nil {
		t.Fatal(err)
	}
	// a: deny 403 → deny 404 (status); b: anonymous deny 401 → allow;
	// c: allow → deny 403; d: anonymous deny 401 → deny 401 (no change).
	want := map[string]int{changeStatus: 1, changeDenyToAllow: 1, changeAllowToDeny: 1}
	if rep.Replayed != 4 || rep.Changed != 3 || !maps.Equal(rep.ByDirection, want) {
		t.Errorf("replayed %d, changed %d, %v; want 4, 3, %v", rep.Replayed, rep.Changed, rep.ByDirection, want)
	}
	for _, e := range rep.Examples {
		if e.DecisionID == "a" && (e.Before != "deny 403" || e.After != "deny 404") {
			t.Errorf("example %+v", e)
		}
		if e.DecisionID == "b" && (e.Before != "deny 401" || e.After != "allow") {
			t.Errorf("example %+v", e)
		}
	}

	out.Reset()
	o.format = "junit"
	if err := o.runReplay(t.Context(), &out); err != nil {
		t.Fatal(err)
	}
	var suite struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Cases    []struct {
			Name string `xml:"name,attr"`
			Time string `xml:"time,attr"`
		} `xml:"testcase"`
	}
	if err := xml.Unmarshal([]byte(out.String()), &suite); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	// Routes: GET /secret/{id} (changed), POST /x (changed), GET /x
	// (changed), GET /y (unchanged).
	if suite.Tests != 4 || suite.Failures != 3 {
		t.Errorf("junit: %d tests, %d failures; want 4 and 3\n%s", suite.Tests, suite.Failures, out.String())
	}
}

// Events record what decided them (layout, deny status, caller, decision
// path): a fastapi-opa-layout log is replayed as serve decided it with no
// layout flag, its API-key callers shown by name, and a flag that
// disagrees with the log is noted.
func TestReplayFollowsWhatTheEventsRecorded(t *testing.T) {
	dir := t.TempDir()
	// The candidate (package shop.authz, as the log's path says) lets
	// alice read the finance reports and nobody else.
	candidate := "package shop.authz\n\nallow if {\n\tinput.request_method == \"GET\"\n\tinput.request_path[0] == \"finance\"\n\tinput.user == \"alice\"\n}\n"
	if err := os.WriteFile(filepath.Join(dir, "p.rego"), []byte(candidate), 0o600); err != nil {
		t.Fatal(err)
	}
	rec := func(extra string) string {
		return `"path": "data.shop.authz", "custom": {"regoguard": {"input_layout": "fastapi-opa", "deny_status": 401` + extra + `}}`
	}
	events := `{"decision_id": "a", "input": {"user": "alice", "request_method": "GET", "request_path": ["finance", "q3"]}, "result": {"allow": true}, ` + rec(`, "sub": "alice", "auth_method": "apikey"`) + `}
{"decision_id": "b", "input": {"user": "bob", "request_method": "GET", "request_path": ["finance", "q3"]}, "result": {"allow": true}, ` + rec(`, "sub": "bob", "auth_method": "apikey"`) + `}
{"decision_id": "c", "input": {"user": "bob", "request_method": "DELETE", "request_path": ["finance", "q3"]}, "result": {"allow": false}, ` + rec(`, "sub": "bob", "auth_method": "apikey"`) + `}
{"decision_id": "d", "input": {"request_method": "GET", "request_path": ["finance"]}, "result": {"allow": false}, ` + rec(`, "anonymous": true`) + `}
{"decision_id": "e", "input": {"user": "bob", "request_method": "GET", "request_path": ["other"]}, "result": {"allow": false}, "path": "data.other.authz", "custom": {"regoguard": {"input_layout": "fastapi-opa", "deny_status": 401, "sub": "bob"}}}
`
	path := filepath.Join(dir, "events.jsonl")
	if err := os.WriteFile(path, []byte(events), 0o600); err != nil {
		t.Fatal(err)
	}
	replay := func(changed ...string) replayReport {
		t.Helper()
		// serve's defaults, as check's flags default: the log must win.
		o := &checkOptions{policyOptions: policyOptions{policies: []string{dir}, decision: "httpapi/authz", denyStatus: 403, layout: "regoguard"},
			checkExtras: checkExtras{replay: path}}
		o.format = "json"
		o.changed = func(name string) bool { return slices.Contains(changed, name) }
		for _, c := range changed {
			switch c {
			case "deny-status":
				o.denyStatus = 403
			case "input-layout":
				o.layout = "regoguard"
			}
		}
		var out strings.Builder
		if err := o.runReplay(t.Context(), &out); err != nil {
			t.Fatal(err)
		}
		var rep replayReport
		if err := json.Unmarshal([]byte(out.String()), &rep); err != nil {
			t.Fatal(err)
		}
		return rep
	}
	rep := replay()
	// a unchanged; b allow → deny 401; c deny 401 unchanged; d anonymous
	// deny 401 unchanged; e another decision path.
	if rep.Events != 5 || rep.Replayed != 4 || rep.Changed != 1 || rep.ByDirection[changeAllowToDeny] != 1 ||
		rep.NotReplayable["another decision path (data.other.authz)"] != 1 || len(rep.Notes) != 0 {
		t.Errorf("report %+v", rep)
	}
	users := map[string]int{}
	for _, g := range rep.ByIdentity {
		users[g.Key] = g.Total
	}
	if !maps.Equal(users, map[string]int{"alice": 1, "bob": 2, "anonymous": 1}) {
		t.Errorf("identities %v, want alice, bob and anonymous", users)
	}
	routes := map[string]int{}
	for _, g := range rep.ByRoute {
		routes[g.Key] = g.Total
	}
	if !maps.Equal(routes, map[string]int{"GET /finance/{id}": 2, "DELETE /finance/{id}": 1, "GET /finance": 1}) {
		t.Errorf("routes %v", routes)
	}
	if len(rep.Examples) != 1 || rep.Examples[0].User != "bob" || rep.Examples[0].Before != "allow" || rep.Examples[0].After != "deny 401" {
		t.Errorf("examples %+v, want bob's allow → deny 401", rep.Examples)
	}

	// Flags given on the command line that disagree: noted; the deny
	// status is the candidate's, the layout stays the recorded one.
	rep = replay("deny-status", "input-layout")
	notes := strings.Join(rep.Notes, "\n")
	if !strings.Contains(notes, "--deny-status 403 disagrees with the log (401)") || !strings.Contains(notes, "--input-layout regoguard disagrees with the log (fastapi-opa)") {
		t.Errorf("notes %q", rep.Notes)
	}
	// c (bob's DELETE) now answers 403 where 401 was recorded; b deny 403.
	if rep.Replayed != 4 || rep.ByDirection[changeStatus] != 1 || rep.ByDirection[changeAllowToDeny] != 1 {
		t.Errorf("with --deny-status 403: %+v", rep)
	}
}
