package prommetrics_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/authz"
	"github.com/regoguard/regoguard/policy"
	"github.com/regoguard/regoguard/prommetrics"
)

// The middleware reports to a prommetrics.Middleware; the engine and the
// cache are read when the registry is scraped. Serve the registry with
// promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).
func Example() {
	ctx := context.Background()
	p := policy.MustParse(map[string]string{"authz.rego": "package httpapi.authz\n\nallow if input.method == \"GET\"\n"}, nil)
	engine, err := policy.New(ctx, policy.Config{}, p)
	if err != nil {
		log.Fatal(err)
	}
	cache, err := authz.NewCache(engine, authz.CacheConfig{})
	if err != nil {
		log.Fatal(err)
	}
	keys, err := authn.NewAPIKeys(authn.APIKeyConfig{Keys: []authn.APIKey{{Key: "alice-key-0123456789", Subject: "alice"}}})
	if err != nil {
		log.Fatal(err)
	}

	reg := prometheus.NewRegistry()
	metrics := prommetrics.NewMiddleware(prommetrics.MiddlewareOptions{})
	reg.MustRegister(metrics, prommetrics.NewEngineCollector(engine), prommetrics.NewCacheCollector(cache))

	guard, err := authz.New(authz.Config{Authenticator: keys, Evaluator: cache, Metrics: metrics})
	if err != nil {
		log.Fatal(err)
	}
	handler := guard.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	for _, method := range []string{"GET", "GET", "DELETE"} {
		r := httptest.NewRequest(method, "/orders", nil)
		r.Header.Set("X-API-Key", "alice-key-0123456789")
		handler.ServeHTTP(httptest.NewRecorder(), r)
	}
	handler.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/orders", nil)) // no key

	err = testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP regoguard_requests_total Requests seen by the middleware, by outcome: allow, deny, error, canceled (the client went away during the decision), unauthenticated, skipped.
# TYPE regoguard_requests_total counter
regoguard_requests_total{outcome="allow"} 2
regoguard_requests_total{outcome="canceled"} 0
regoguard_requests_total{outcome="deny"} 1
regoguard_requests_total{outcome="error"} 0
regoguard_requests_total{outcome="skipped"} 0
regoguard_requests_total{outcome="unauthenticated"} 1
# HELP regoguard_decision_cache_hits_total Decisions answered from the decision cache.
# TYPE regoguard_decision_cache_hits_total counter
regoguard_decision_cache_hits_total 1
# HELP regoguard_policy_loads_total Policy revisions loaded (files, reloads, bundle activations).
# TYPE regoguard_policy_loads_total counter
regoguard_policy_loads_total 1
`), "regoguard_requests_total", "regoguard_decision_cache_hits_total", "regoguard_policy_loads_total")
	fmt.Println("metrics as expected:", err == nil)
	mfs, err := reg.Gather()
	if err != nil {
		log.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "regoguard_decision_duration_seconds" {
			fmt.Println("decisions timed:", mf.GetMetric()[0].GetHistogram().GetSampleCount())
		}
	}
	// Output:
	// metrics as expected: true
	// decisions timed: 3
}
