package bundles_test

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/regoguard/regoguard/bundles"
	"github.com/regoguard/regoguard/policy"
)

// collector is a decision-log service on loopback: it gunzips and decodes
// OPA's uploads, as a real collector does.
type collector struct {
	*httptest.Server
	mu      sync.Mutex
	events  []map[string]any
	uploads []string // "method path content-type content-encoding authorization"
}

func newCollector(t *testing.T) *collector {
	c := &collector{}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.uploads = append(c.uploads, r.Method+" "+r.URL.Path+" "+r.Header.Get("Content-Type")+" "+
			r.Header.Get("Content-Encoding")+" "+r.Header.Get("Authorization"))
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			t.Errorf("collector: %v", err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		var batch []map[string]any
		if err := json.NewDecoder(zr).Decode(&batch); err != nil {
			t.Errorf("collector: %v", err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		c.events = append(c.events, batch...)
	}))
	t.Cleanup(c.Close)
	return c
}

func (c *collector) received() ([]map[string]any, []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.events), slices.Clone(c.uploads)
}

func TestDecisionLogsUploadedMasked(t *testing.T) {
	ctx := context.Background()
	col := newCollector(t)
	dl, err := bundles.NewDecisionLogger(ctx, bundles.DecisionLogConfig{
		Service:  &bundles.Service{URL: col.URL, BearerToken: "logs-token"},
		Manual:   true,
		ID:       "regoguard-test",
		Labels:   map[string]string{"app": "demo"},
		Logger:   quiet,
		Resource: "/logs/regoguard",
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dl.Stop(context.Background()) })

	// The masking rule comes from the bundle, as it would in OPA.
	dir := t.TempDir()
	path := filepath.Join(dir, "authz.tar.gz")
	if err := os.WriteFile(path, authzBundle(t, "rev1", authzV1, nil), 0o600); err != nil {
		t.Fatal(err)
	}
	e := newEngine(t)
	m, err := bundles.New(bundles.Config{Engine: e, Logger: quiet, DecisionLogger: dl,
		Bundles: []bundles.Source{{Name: "authz", Path: path}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}

	// What the middleware does after each decision.
	in := ast.NewObject(
		ast.Item(ast.StringTerm("method"), ast.StringTerm("GET")),
		ast.Item(ast.StringTerm("user"), ast.StringTerm("bob")),
		ast.Item(ast.StringTerm("password"), ast.StringTerm("hunter2")),
	)
	d, err := e.Eval(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	var logger policy.DecisionLogger = dl
	if err := logger.LogDecision(ctx, policy.DecisionEvent{
		ID: "dec-1", Path: "httpapi/authz", Input: in, Result: d.Result,
		Revision: d.Revision, Bundles: d.Bundles, Timestamp: time.Now(), Duration: time.Millisecond,
	}); err != nil {
		t.Fatal(err)
	}
	if err := logger.LogDecision(ctx, policy.DecisionEvent{
		ID: "dec-2", Path: "httpapi/authz", Input: in, Err: errors.New("evaluation failed"),
	}); err != nil {
		t.Fatal(err)
	}
	if err := dl.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	events, uploads := col.received()
	if len(events) != 2 {
		t.Fatalf("collector received %d events, want 2 (uploads %v)", len(events), uploads)
	}
	if e2, _ := events[1]["error"].(map[string]any); events[1]["decision_id"] != "dec-2" || e2["message"] != "evaluation failed" || e2["code"] != "internal_error" {
		t.Errorf("error event %v", events[1])
	}
	if ms, _ := events[0]["metrics"].(map[string]any); ms["timer_rego_query_eval_ns"] != float64(time.Millisecond) {
		t.Errorf("metrics %v, want timer_rego_query_eval_ns 1e6", events[0]["metrics"])
	}
	if want := "POST /logs/regoguard application/json gzip Bearer logs-token"; uploads[0] != want {
		t.Errorf("upload %q, want %q", uploads[0], want)
	}
	ev := events[0]
	input, _ := ev["input"].(map[string]any)
	if _, ok := input["password"]; ok || input["user"] != "bob" {
		t.Errorf("logged input %v: want user without password", input)
	}
	if erased, _ := ev["erased"].([]any); len(erased) != 1 || erased[0] != "/input/password" {
		t.Errorf("erased %v, want [/input/password]", ev["erased"])
	}
	result, _ := ev["result"].(map[string]any)
	bundleInfo, _ := ev["bundles"].(map[string]any)
	labels, _ := ev["labels"].(map[string]any)
	if ev["decision_id"] != "dec-1" || ev["path"] != "httpapi/authz" || result["allow"] != true ||
		bundleInfo["authz"].(map[string]any)["revision"] != "rev1" || labels["id"] != "regoguard-test" || labels["app"] != "demo" {
		t.Errorf("event %v", ev)
	}
}

func TestDecisionLogsDropRule(t *testing.T) {
	ctx := context.Background()
	col := newCollector(t)
	dl, err := bundles.NewDecisionLogger(ctx, bundles.DecisionLogConfig{
		Service: &bundles.Service{URL: col.URL}, Manual: true, Logger: quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dl.Stop(context.Background()) })
	p := policy.MustParse(map[string]string{"drop.rego": `package system.log

drop if input.input.method == "OPTIONS"
`}, nil)
	if err := dl.UsePolicy(ctx, p); err != nil {
		t.Fatal(err)
	}
	for i, method := range []string{"OPTIONS", "GET"} {
		in := ast.NewObject(ast.Item(ast.StringTerm("method"), ast.StringTerm(method)))
		if err := dl.LogDecision(ctx, policy.DecisionEvent{ID: method, Path: "httpapi/authz", Input: in, Result: i == 1}); err != nil {
			t.Fatal(err)
		}
	}
	if err := dl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	events, _ := col.received()
	if len(events) != 1 || events[0]["decision_id"] != "GET" {
		t.Errorf("events %v, want only the GET decision", events)
	}
}

func TestDecisionLogsToConsole(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	var buf strings.Builder
	logger := slog.New(slog.NewJSONHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(p)
	}), nil))
	dl, err := bundles.NewDecisionLogger(ctx, bundles.DecisionLogConfig{Console: true, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dl.Stop(context.Background()) })
	if err := dl.UsePolicy(ctx, policy.MustParse(map[string]string{"mask.rego": maskRules}, nil)); err != nil {
		t.Fatal(err)
	}
	in := ast.NewObject(ast.Item(ast.StringTerm("user"), ast.StringTerm("bob")), ast.Item(ast.StringTerm("password"), ast.StringTerm("hunter2")))
	if err := dl.LogDecision(ctx, policy.DecisionEvent{ID: "dec-console", Path: "httpapi/authz", Input: in, Result: false}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	if !strings.Contains(out, `"decision_id":"dec-console"`) || !strings.Contains(out, `"msg":"Decision Log"`) ||
		strings.Contains(out, "hunter2") {
		t.Errorf("console output %s: want the decision, masked", out)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestDecisionLogsQueuedThenFlushedOnStop logs through the queue, in
// periodic mode, and relies on Stop to drain the queue and on OPA's plugin
// to upload what it buffered before stopping.
func TestDecisionLogsQueuedThenFlushedOnStop(t *testing.T) {
	ctx := context.Background()
	col := newCollector(t)
	dl, err := bundles.NewDecisionLogger(ctx, bundles.DecisionLogConfig{
		Service: &bundles.Service{URL: col.URL}, QueueSize: 16, Logger: quiet,
		MinDelay: time.Hour, MaxDelay: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"q1", "q2", "q3"} {
		in := ast.NewObject(ast.Item(ast.StringTerm("method"), ast.StringTerm("GET")))
		if err := dl.LogDecision(ctx, policy.DecisionEvent{ID: id, Path: "httpapi/authz", Input: in, Result: true}); err != nil {
			t.Fatal(err)
		}
	}
	stopCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	dl.Stop(stopCtx)
	events, _ := col.received()
	var ids []string
	for _, ev := range events {
		ids = append(ids, ev["decision_id"].(string))
	}
	if slices.Sort(ids); !slices.Equal(ids, []string{"q1", "q2", "q3"}) {
		t.Errorf("collector received %v, want q1 q2 q3", ids)
	}
	if err := dl.LogDecision(ctx, policy.DecisionEvent{ID: "late"}); err == nil {
		t.Error("LogDecision after Stop succeeded")
	}
	if dl.Dropped() != 0 {
		t.Errorf("dropped %d", dl.Dropped())
	}
}

func TestDecisionLoggerConfigErrors(t *testing.T) {
	ctx := context.Background()
	for name, cfg := range map[string]bundles.DecisionLogConfig{
		"no sink":         {Logger: quiet},
		"service no URL":  {Service: &bundles.Service{}, Logger: quiet},
		"two credentials": {Service: &bundles.Service{URL: "http://127.0.0.1:1", BearerToken: "t", ClientCertFile: "c", ClientKeyFile: "k"}, Logger: quiet},
	} {
		if dl, err := bundles.NewDecisionLogger(ctx, cfg); err == nil {
			dl.Stop(ctx)
			t.Errorf("%s: accepted", name)
		}
	}
}
