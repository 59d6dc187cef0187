package prommetrics_test

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/regoguard/regoguard/policy"
	"github.com/regoguard/regoguard/prommetrics"
)

func TestEngineMetrics(t *testing.T) {
	ctx := context.Background()
	e, err := policy.New(context.Background(), policy.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(prommetrics.NewEngineCollector(e))
	names := []string{"regoguard_policy_info", "regoguard_policy_loads_total", "regoguard_policy_load_failures_total", "regoguard_policy_load_failing"}
	before := `
# HELP regoguard_policy_load_failing 1 while the most recent policy load failed (the previous revision is still served).
# TYPE regoguard_policy_load_failing gauge
regoguard_policy_load_failing 0
# HELP regoguard_policy_load_failures_total Policy loads that failed (a file that does not parse or compile, a bundle that cannot be read); the previous revision kept serving.
# TYPE regoguard_policy_load_failures_total counter
regoguard_policy_load_failures_total 0
# HELP regoguard_policy_loads_total Policy revisions loaded (files, reloads, bundle activations).
# TYPE regoguard_policy_loads_total counter
regoguard_policy_loads_total 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(before), names...); err != nil {
		t.Errorf("before any load: %v", err)
	}
	good := policy.MustParse(map[string]string{"p.rego": "package httpapi.authz\nallow := true\n"}, nil)
	if err := e.Load(ctx, good); err != nil {
		t.Fatal(err)
	}
	bad := policy.MustParse(map[string]string{"p.rego": "package httpapi.authz\nallow := x\n"}, nil)
	if err := e.Load(ctx, bad); err == nil {
		t.Fatal("a policy with an unsafe variable loaded")
	}
	after := `
# HELP regoguard_policy_info Policy revision being served (value 1); absent before the first load.
# TYPE regoguard_policy_info gauge
regoguard_policy_info{revision="` + e.Revision() + `"} 1
# HELP regoguard_policy_load_failing 1 while the most recent policy load failed (the previous revision is still served).
# TYPE regoguard_policy_load_failing gauge
regoguard_policy_load_failing 1
# HELP regoguard_policy_load_failures_total Policy loads that failed (a file that does not parse or compile, a bundle that cannot be read); the previous revision kept serving.
# TYPE regoguard_policy_load_failures_total counter
regoguard_policy_load_failures_total 1
# HELP regoguard_policy_loads_total Policy revisions loaded (files, reloads, bundle activations).
# TYPE regoguard_policy_loads_total counter
regoguard_policy_loads_total 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(after), names...); err != nil {
		t.Errorf("after a good and a bad load: %v", err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, mf := range mfs {
		seen[mf.GetName()] = true
	}
	for _, n := range []string{"regoguard_policy_last_load_timestamp_seconds", "regoguard_policy_last_load_failure_timestamp_seconds"} {
		if !seen[n] {
			t.Errorf("%s missing after a load and a failure", n)
		}
	}
}
