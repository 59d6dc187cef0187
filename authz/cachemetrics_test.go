package authz_test

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/regoguard/regoguard/authz"
	"github.com/regoguard/regoguard/prommetrics"
)

// A decision cache in front of a Fallback does not hide its fallbacks from
// the middleware's metrics.
func TestFallbacksCountedBehindACache(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	fb := &authz.Fallback{Primary: mustEmptyEngine(t), Secondary: engine(t, "testdata/regoguard")}
	h := newMiddleware(t, authz.Config{Evaluator: mustCache(t, fb), Metrics: promMetrics(reg, prommetrics.MiddlewareOptions{})})
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
