package main

import (
	"os"
	"path/filepath"
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
