package authzen_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/authz"
	"github.com/regoguard/regoguard/authzen"
	"github.com/regoguard/regoguard/policy"
)

const pdpPolicy = `package authzen

default decision := false

decision if {
	input.subject.id == "alice"
	input.action.name == "read"
}

decision if input.subject.properties.role == "admin"

result := {"decision": true} if decision

result := {"decision": false, "context": {"reason": "only alice reads"}} if not decision
`

const pepKey = "pep-key-0123456789abcdef"

type events struct {
	mu  sync.Mutex
	evs []policy.DecisionEvent
}

func (e *events) LogDecision(_ context.Context, ev policy.DecisionEvent) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.evs = append(e.evs, ev)
	return nil
}

func pdp(t *testing.T, cfg authzen.Config) (*httptest.Server, *events) {
	t.Helper()
	p, err := policy.Parse(map[string]string{"p.rego": pdpPolicy}, nil)
	if err != nil {
		t.Fatal(err)
	}
	engine, err := policy.New(context.Background(), policy.Config{Decision: "authzen/result", ResultParser: authzen.ParseResult}, p)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := authn.NewAPIKeys(authn.APIKeyConfig{Keys: []authn.APIKey{{Key: pepKey, Subject: "pep"}}})
	if err != nil {
		t.Fatal(err)
	}
	ev := &events{}
	guard, err := authz.New(authz.Config{Authenticator: keys, Evaluator: engine, DecisionLogger: ev, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Guard = guard
	h, err := authzen.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, ev
}

func post(t *testing.T, url, body string, headers ...string) (int, map[string]any, http.Header) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", pepKey)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return resp.StatusCode, out, resp.Header
}

func decisions(t *testing.T, out map[string]any) []bool {
	t.Helper()
	evs, ok := out["evaluations"].([]any)
	if !ok {
		t.Fatalf("no evaluations in %v", out)
	}
	var got []bool
	for _, e := range evs {
		got = append(got, e.(map[string]any)["decision"].(bool))
	}
	return got
}

func TestEvaluation(t *testing.T) {
	srv, ev := pdp(t, authzen.Config{})
	status, out, h := post(t, srv.URL+authzen.EvaluationPath,
		`{"subject":{"type":"user","id":"alice"},"resource":{"type":"doc","id":"1"},"action":{"name":"read"}}`, "X-Request-ID", "req-7")
	if status != 200 || out["decision"] != true || h.Get("X-Request-ID") != "req-7" {
		t.Fatalf("allow: %d %v, X-Request-ID %q", status, out, h.Get("X-Request-ID"))
	}
	status, out, _ = post(t, srv.URL+authzen.EvaluationPath,
		`{"subject":{"type":"user","id":"bob"},"resource":{"type":"doc","id":"1"},"action":{"name":"read"},"context":{"ip":"10.0.0.1"}}`)
	want := map[string]any{"decision": false, "context": map[string]any{"reason": "only alice reads"}}
	if status != 200 || !reflect.DeepEqual(out, want) {
		t.Fatalf("a denial is 200 with decision false and the policy's context: got %d %v", status, out)
	}
	if len(ev.evs) != 2 || ev.evs[0].BatchID != "" {
		t.Fatalf("%d decision events (batch %q), want 2 without batch", len(ev.evs), ev.evs[0].BatchID)
	}

	for name, body := range map[string]string{
		"not JSON":                   `{"subject":`,
		"no subject":                 `{"resource":{"type":"doc","id":"1"},"action":{"name":"read"}}`,
		"a subject without id":       `{"subject":{"type":"user"},"resource":{"type":"doc","id":"1"},"action":{"name":"read"}}`,
		"an action without name":     `{"subject":{"type":"user","id":"a"},"resource":{"type":"doc","id":"1"},"action":{}}`,
		"a subject that is a string": `{"subject":"alice","resource":{"type":"doc","id":"1"},"action":{"name":"read"}}`,
		"properties not an object":   `{"subject":{"type":"user","id":"a","properties":[1]},"resource":{"type":"doc","id":"1"},"action":{"name":"read"}}`,
		"two values":                 `{"subject":{"type":"user","id":"a"},"resource":{"type":"doc","id":"1"},"action":{"name":"read"}} {}`,
	} {
		if status, out, _ := post(t, srv.URL+authzen.EvaluationPath, body); status != 400 {
			t.Errorf("%s: %d %v, want 400", name, status, out)
		}
	}

	req, _ := http.NewRequest("POST", srv.URL+authzen.EvaluationPath, strings.NewReader(`{}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("an anonymous PEP: %d, want 401", resp.StatusCode)
	}
}

func TestEvaluationsSemantics(t *testing.T) {
	srv, ev := pdp(t, authzen.Config{MaxEvaluations: 5})
	// bob is denied, alice allowed, and carol allowed as an admin: the
	// items replace the top-level subject, and inherit its action.
	body := func(semantic string) string {
		opt := ""
		if semantic != "" {
			opt = `"options":{"evaluations_semantic":"` + semantic + `"},`
		}
		return `{"subject":{"type":"user","id":"bob"},"action":{"name":"read"},"resource":{"type":"doc","id":"1"},` + opt + `
		"evaluations":[
			{"resource":{"type":"doc","id":"2"}},
			{"subject":{"type":"user","id":"alice"}},
			{"subject":{"type":"user","id":"carol","properties":{"role":"admin"}},"action":{"name":"delete"}},
			{"subject":{"type":"user","id":"alice"},"action":{"name":"delete"}}]}`
	}
	for _, c := range []struct {
		semantic string
		want     []bool
	}{
		{"", []bool{false, true, true, false}},
		{authzen.ExecuteAll, []bool{false, true, true, false}},
		{authzen.DenyOnFirstDeny, []bool{false}},
		{authzen.PermitOnFirstPermit, []bool{false, true}},
	} {
		status, out, _ := post(t, srv.URL+authzen.EvaluationsPath, body(c.semantic))
		if status != 200 {
			t.Fatalf("%q: status %d %v", c.semantic, status, out)
		}
		if got := decisions(t, out); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q: decisions %v, want %v", c.semantic, got, c.want)
		}
	}
	// Each decision is its own event; those of one call share a batch ID.
	batches := map[string]int{}
	ids := map[string]bool{}
	for _, e := range ev.evs {
		batches[e.BatchID]++
		ids[e.ID] = true
	}
	if len(ev.evs) != 4+4+1+2 || len(ids) != len(ev.evs) || len(batches) != 4 || batches[""] != 0 {
		t.Errorf("events %d, distinct IDs %d, batches %v", len(ev.evs), len(ids), batches)
	}

	// Without evaluations: one evaluation, answered as such.
	status, out, _ := post(t, srv.URL+authzen.EvaluationsPath, `{"subject":{"type":"user","id":"alice"},"action":{"name":"read"},"resource":{"type":"doc","id":"1"},"evaluations":[]}`)
	if status != 200 || out["decision"] != true {
		t.Errorf("no evaluations: %d %v, want a single decision", status, out)
	}
	for name, c := range map[string]struct {
		body   string
		status int
	}{
		"an unknown semantic":       {`{"options":{"evaluations_semantic":"first"},"evaluations":[{}]}`, 400},
		"an incomplete item":        {`{"subject":{"type":"user","id":"a"},"evaluations":[{"action":{"name":"read"}}]}`, 400},
		"too many items":            {`{"evaluations":[{},{},{},{},{},{}]}`, 413},
		"an item that is no object": {`{"subject":{"type":"user","id":"a"},"action":{"name":"r"},"evaluations":[{"resource":"doc"}]}`, 400},
	} {
		if status, out, _ := post(t, srv.URL+authzen.EvaluationsPath, c.body); status != c.status {
			t.Errorf("%s: %d %v, want %d", name, status, out, c.status)
		}
	}
}

func TestMetadata(t *testing.T) {
	srv, _ := pdp(t, authzen.Config{BaseURL: "https://pdp.example/"})
	resp, err := http.Get(srv.URL + authzen.MetadataPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var md map[string]string
	if err := json.NewDecoder(resp.Body).Decode(&md); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"policy_decision_point":       "https://pdp.example",
		"access_evaluation_endpoint":  "https://pdp.example/access/v1/evaluation",
		"access_evaluations_endpoint": "https://pdp.example/access/v1/evaluations",
	}
	if !reflect.DeepEqual(md, want) {
		t.Errorf("metadata %v, want %v", md, want)
	}
}
