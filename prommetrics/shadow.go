package prommetrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/regoguard/regoguard/authz"
)

var (
	descShadowDecisions = prometheus.NewDesc("regoguard_shadow_decisions_total",
		"Decisions the shadow (candidate) policy judged too, by result: agree, allow_to_deny (live allowed, candidate would refuse), deny_to_allow, candidate_error.",
		[]string{"result"}, nil)
	descShadowSkipped = prometheus.NewDesc("regoguard_shadow_skipped_total",
		"Sampled decisions the shadow policy did not judge because its queue was full.", nil, nil)
)

type shadowCollector struct{ s *authz.Shadow }

// NewShadowCollector returns a collector of s's [authz.ShadowStats], read
// at scrape time: regoguard_shadow_decisions_total by result
// ([authz.ShadowAgree], [authz.ShadowAllowToDeny], [authz.ShadowDenyToAllow],
// [authz.ShadowError]; every result present from the start) and
// regoguard_shadow_skipped_total (the queue was full).
func NewShadowCollector(s *authz.Shadow) prometheus.Collector { return shadowCollector{s} }

// Describe implements [prometheus.Collector].
func (sc shadowCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descShadowDecisions
	ch <- descShadowSkipped
}

// Collect implements [prometheus.Collector].
func (sc shadowCollector) Collect(ch chan<- prometheus.Metric) {
	st := sc.s.Stats()
	for _, r := range []struct {
		result string
		n      int64
	}{
		{authz.ShadowAgree, st.Agree},
		{authz.ShadowAllowToDeny, st.AllowToDeny},
		{authz.ShadowDenyToAllow, st.DenyToAllow},
		{authz.ShadowError, st.CandidateErrors},
	} {
		ch <- prometheus.MustNewConstMetric(descShadowDecisions, prometheus.CounterValue, float64(r.n), r.result)
	}
	ch <- prometheus.MustNewConstMetric(descShadowSkipped, prometheus.CounterValue, float64(st.Skipped))
}
