package prommetrics_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/authz"
	"github.com/regoguard/regoguard/policy"
	"github.com/regoguard/regoguard/prommetrics"
)

const aliceKey = "alice-key-0123456789"

// engineOf compiles one rule of package httpapi.authz.
func engineOf(t testing.TB, rule string) *policy.Engine {
	t.Helper()
	e, err := policy.New(context.Background(), policy.Config{},
		policy.MustParse(map[string]string{"authz.rego": "package httpapi.authz\n\n" + rule + "\n"}, nil))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// guard is a real middleware with API keys (alice) in front of eval,
// reporting to metrics; /health is exempt.
func guard(t testing.TB, eval authz.Evaluator, metrics authz.Metrics, dryRun bool) http.Handler {
	t.Helper()
	keys, err := authn.NewAPIKeys(authn.APIKeyConfig{Keys: []authn.APIKey{{Key: aliceKey, Subject: "alice"}}})
	if err != nil {
		t.Fatal(err)
	}
	mw, err := authz.New(authz.Config{Authenticator: keys, Evaluator: eval, Metrics: metrics, DryRun: dryRun,
		Skip: []authz.Skip{{Path: "/health"}}})
	if err != nil {
		t.Fatal(err)
	}
	return mw.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
}

func send(t testing.TB, h http.Handler, method, path, key string) int {
	t.Helper()
	r := httptest.NewRequest(method, path, nil)
	if key != "" {
		r.Header.Set("X-API-Key", key)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code
}

// Every outcome the middleware reports reaches the exposition under the
// names and help texts of serve's /metrics, from middlewares sharing one
// Middleware; all outcomes are there from the start.
func TestMiddlewareExportsWhatTheMiddlewareReports(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	metrics := prommetrics.NewMiddleware(prommetrics.MiddlewareOptions{})
	reg.MustRegister(metrics)
	requests := `
# HELP regoguard_requests_total Requests seen by the middleware, by outcome: allow, deny, error, canceled (the client went away during the decision), unauthenticated, skipped.
# TYPE regoguard_requests_total counter
regoguard_requests_total{outcome="allow"} %d
regoguard_requests_total{outcome="canceled"} 0
regoguard_requests_total{outcome="deny"} %d
regoguard_requests_total{outcome="error"} %d
regoguard_requests_total{outcome="skipped"} %d
regoguard_requests_total{outcome="unauthenticated"} %d
# HELP regoguard_evaluator_errors_total Decisions that failed (the request was refused with 503).
# TYPE regoguard_evaluator_errors_total counter
regoguard_evaluator_errors_total %d
# HELP regoguard_fallbacks_total Decisions asked of the secondary evaluator because the primary failed.
# TYPE regoguard_fallbacks_total counter
regoguard_fallbacks_total %d
`
	names := []string{"regoguard_requests_total", "regoguard_evaluator_errors_total", "regoguard_fallbacks_total",
		"regoguard_dry_run_would_refuse_total"}
	compare := func(want string, counts ...any) {
		t.Helper()
		if err := testutil.GatherAndCompare(reg, strings.NewReader(fmt.Sprintf(want, counts...)), names...); err != nil {
			t.Error(err)
		}
	}
	compare(requests, 0, 0, 0, 0, 0, 0, 0)

	onlyGet := engineOf(t, `allow if input.method == "GET"`)
	unloaded, err := policy.New(context.Background(), policy.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := guard(t, onlyGet, metrics, false)
	for _, c := range []struct {
		method, path, key string
		want              int
	}{
		{"GET", "/orders", aliceKey, 200},
		{"DELETE", "/orders", aliceKey, 403},
		{"GET", "/orders", "", 401},
		{"GET", "/orders", "wrong-key-0123456789", 401},
		{"GET", "/health", "", 200},
	} {
		if got := send(t, h, c.method, c.path, c.key); got != c.want {
			t.Fatalf("%s %s: %d, want %d", c.method, c.path, got, c.want)
		}
	}
	if got := send(t, guard(t, unloaded, metrics, false), "GET", "/orders", aliceKey); got != 503 {
		t.Fatalf("engine with no policy: %d, want 503", got)
	}
	if got := send(t, guard(t, &authz.Fallback{Primary: unloaded, Secondary: onlyGet}, metrics, false), "GET", "/orders", aliceKey); got != 200 {
		t.Fatalf("fallback: %d, want 200", got)
	}
	compare(requests, 2, 1, 1, 1, 2, 1, 1)

	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "regoguard_decision_duration_seconds" {
			if n := mf.GetMetric()[0].GetHistogram().GetSampleCount(); n != 4 {
				t.Errorf("decisions timed: %d, want 4 (allow, deny, error, fallback)", n)
			}
			return
		}
	}
	t.Error("regoguard_decision_duration_seconds missing")
}

// With DryRun, what the dry run lets through is counted; without it the
// counter is not exported at all, as serve without --dry-run.
func TestMiddlewareDryRun(t *testing.T) {
	onlyGet := engineOf(t, `allow if input.method == "GET"`)
	for _, dryRun := range []bool{true, false} {
		reg := prometheus.NewPedanticRegistry()
		metrics := prommetrics.NewMiddleware(prommetrics.MiddlewareOptions{DryRun: dryRun})
		reg.MustRegister(metrics)
		h := guard(t, onlyGet, metrics, dryRun)
		send(t, h, "GET", "/orders", aliceKey)
		send(t, h, "DELETE", "/orders", aliceKey)
		want := ""
		if dryRun {
			want = `
# HELP regoguard_dry_run_would_refuse_total Requests let through by --dry-run that the policy refused or could not decide on.
# TYPE regoguard_dry_run_would_refuse_total counter
regoguard_dry_run_would_refuse_total 1
`
		}
		if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "regoguard_dry_run_would_refuse_total"); err != nil {
			t.Errorf("dry run %v: %v", dryRun, err)
		}
	}
}

// Counting a request and a decision allocates nothing: the middleware's
// hot path stays allocation-free with metrics on.
func TestMiddlewareCountsWithoutAllocating(t *testing.T) {
	metrics := prommetrics.NewMiddleware(prommetrics.MiddlewareOptions{DryRun: true})
	var m authz.Metrics = metrics
	if n := testing.AllocsPerRun(100, func() {
		m.Decision(authz.OutcomeAllow, time.Microsecond)
		m.Request(authz.OutcomeAllow)
		m.Fallback()
		m.WouldRefuse()
	}); n != 0 {
		t.Errorf("%v allocations per request counted, want 0", n)
	}
	m.Request(authz.Outcome(200)) // an outcome this package does not know is dropped, not a panic
}

func TestCacheCollector(t *testing.T) {
	ctx := context.Background()
	e := engineOf(t, `allow if input.method == "GET"`)
	c, err := authz.NewCache(e, authz.CacheConfig{})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(prommetrics.NewCacheCollector(c))
	get := ast.MustParseTerm(`{"method": "GET"}`).Value
	del := ast.MustParseTerm(`{"method": "DELETE"}`).Value
	for _, in := range []ast.Value{get, get, get, del} {
		if _, err := c.Eval(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	want := `
# HELP regoguard_decision_cache_entries Decisions held in the decision cache.
# TYPE regoguard_decision_cache_entries gauge
regoguard_decision_cache_entries 2
# HELP regoguard_decision_cache_hits_total Decisions answered from the decision cache.
# TYPE regoguard_decision_cache_hits_total counter
regoguard_decision_cache_hits_total 2
# HELP regoguard_decision_cache_misses_total Decisions the decision cache did not hold, asked of the evaluator.
# TYPE regoguard_decision_cache_misses_total counter
regoguard_decision_cache_misses_total 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	// A new revision empties the cache: the next lookup misses.
	if err := e.Load(ctx, policy.MustParse(map[string]string{"p.rego": "package httpapi.authz\nallow := false\n"}, nil)); err != nil {
		t.Fatal(err)
	}
	_, _ = c.Eval(ctx, get)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(strings.NewReplacer(
		"entries 2", "entries 1", "misses_total 2", "misses_total 3").Replace(want))); err != nil {
		t.Errorf("after a new revision: %v", err)
	}
}

func TestShadowCollector(t *testing.T) {
	ctx := context.Background()
	live := engineOf(t, `allow if input.method == "GET"`)
	candidate := engineOf(t, `allow if input.method in {"HEAD", "POST"}`)
	shadow, err := authz.NewShadow(live, authz.ShadowConfig{Candidate: candidate})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(prommetrics.NewShadowCollector(shadow))
	want := `
# HELP regoguard_shadow_decisions_total Decisions the shadow (candidate) policy judged too, by result: agree, allow_to_deny (live allowed, candidate would refuse), deny_to_allow, candidate_error.
# TYPE regoguard_shadow_decisions_total counter
regoguard_shadow_decisions_total{result="agree"} %d
regoguard_shadow_decisions_total{result="allow_to_deny"} %d
regoguard_shadow_decisions_total{result="candidate_error"} 0
regoguard_shadow_decisions_total{result="deny_to_allow"} %d
# HELP regoguard_shadow_skipped_total Sampled decisions the shadow policy did not judge because its queue was full.
# TYPE regoguard_shadow_skipped_total counter
regoguard_shadow_skipped_total 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(fmt.Sprintf(want, 0, 0, 0))); err != nil {
		t.Errorf("before any decision: %v", err)
	}
	for _, method := range []string{"GET", "HEAD", "POST", "DELETE", "DELETE"} {
		if _, err := shadow.Eval(ctx, ast.NewObject(ast.Item(ast.StringTerm("method"), ast.StringTerm(method)))); err != nil {
			t.Fatal(err)
		}
	}
	if err := shadow.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(fmt.Sprintf(want, 2, 1, 2))); err != nil {
		t.Errorf("after GET, HEAD, POST and two DELETEs: %v", err)
	}
}
