package authz_test

import (
	"context"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/regoguard/regoguard/authz"
	"github.com/regoguard/regoguard/policy"
)

func TestCacheStatsAndMetrics(t *testing.T) {
	ctx := context.Background()
	e := engine(t, "testdata/regoguard")
	c, err := authz.NewCache(e, authz.CacheConfig{})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c.Collector())
	get := parse(t, `{"method": "GET"}`)
	del := parse(t, `{"method": "DELETE"}`)
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
	if st := c.Stats(); st.Hits != 2 || st.Misses != 3 || st.Entries != 1 {
		t.Errorf("after a new revision: %+v, want 2 hits, 3 misses, 1 entry", st)
	}
}

// A decision cache in front of a Fallback does not hide its fallbacks from
// the middleware's metrics.
func TestFallbacksCountedBehindACache(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	fb := &authz.Fallback{Primary: mustEmptyEngine(t), Secondary: engine(t, "testdata/regoguard")}
	h := newMiddleware(t, authz.Config{Evaluator: mustCache(t, fb), Metrics: reg})
	for range 2 {
		if res := do(t, h, request("GET", "/api/orders", "alice")); res.status != 200 {
			t.Fatalf("status %d", res.status)
		}
	}
	want := `
# HELP regoguard_fallbacks_total Decisions asked of the secondary evaluator because the primary failed.
# TYPE regoguard_fallbacks_total counter
regoguard_fallbacks_total 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "regoguard_fallbacks_total"); err != nil {
		t.Error(err)
	}
}
