package bundles_test

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/regoguard/regoguard/bundles"
	"github.com/regoguard/regoguard/prommetrics/prombundles"
)

func TestMetrics(t *testing.T) {
	ctx := context.Background()
	srv := newBundleServer(t, authzBundle(t, "rev1", authzV1, nil), `"e1"`)
	reg := prometheus.NewPedanticRegistry()
	cfg := remote(t, newEngine(t), srv, "", nil, nil)
	m, err := bundles.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	reg.MustRegister(prombundles.NewCollector(m))
	const names = "regoguard_bundles_ready regoguard_bundle_info regoguard_bundle_activations_total regoguard_bundle_failures_total regoguard_bundle_not_modified_total regoguard_bundle_failing"
	before := `
# HELP regoguard_bundles_ready 1 once every bundle has been activated.
# TYPE regoguard_bundles_ready gauge
regoguard_bundles_ready 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(before), "regoguard_bundles_ready", "regoguard_bundle_info"); err != nil {
		t.Errorf("before the first download: %v", err)
	}
	for _, body := range [][]byte{nil, []byte("not a bundle")} {
		if body != nil {
			srv.set(body, `"e-bad"`)
		}
		_ = m.Trigger(ctx) // 200 then 304, then a corrupt bundle
		_ = m.Trigger(ctx)
	}
	after := `
# HELP regoguard_bundle_activations_total Revisions of the bundle activated.
# TYPE regoguard_bundle_activations_total counter
regoguard_bundle_activations_total{bundle="authz"} 1
# HELP regoguard_bundle_failing 1 while the bundle's last download or activation failed.
# TYPE regoguard_bundle_failing gauge
regoguard_bundle_failing{bundle="authz"} 1
# HELP regoguard_bundle_failures_total Failed downloads or rejected revisions of the bundle.
# TYPE regoguard_bundle_failures_total counter
regoguard_bundle_failures_total{bundle="authz"} 2
# HELP regoguard_bundle_info Active revision of each bundle (value 1).
# TYPE regoguard_bundle_info gauge
regoguard_bundle_info{bundle="authz",revision="rev1"} 1
# HELP regoguard_bundle_not_modified_total 304 Not Modified answers for the bundle.
# TYPE regoguard_bundle_not_modified_total counter
regoguard_bundle_not_modified_total{bundle="authz"} 1
# HELP regoguard_bundles_ready 1 once every bundle has been activated.
# TYPE regoguard_bundles_ready gauge
regoguard_bundles_ready 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(after), strings.Fields(names)...); err != nil {
		t.Errorf("after downloads: %v", err)
	}
	if n, err := testutil.GatherAndCount(reg, "regoguard_bundle_last_activation_timestamp_seconds", "regoguard_bundle_last_error_timestamp_seconds"); err != nil || n != 2 {
		t.Errorf("timestamps: %d series, %v", n, err)
	}
}
