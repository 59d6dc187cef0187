package prommetrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/regoguard/regoguard/policy"
)

var (
	descPolicyInfo = prometheus.NewDesc("regoguard_policy_info",
		"Policy revision being served (value 1); absent before the first load.", []string{"revision"}, nil)
	descPolicyLoaded = prometheus.NewDesc("regoguard_policy_last_load_timestamp_seconds",
		"When the revision being served was loaded.", nil, nil)
	descPolicyLoads = prometheus.NewDesc("regoguard_policy_loads_total",
		"Policy revisions loaded (files, reloads, bundle activations).", nil, nil)
	descPolicyFailures = prometheus.NewDesc("regoguard_policy_load_failures_total",
		"Policy loads that failed (a file that does not parse or compile, a bundle that cannot be read); the previous revision kept serving.", nil, nil)
	descPolicyLastFailure = prometheus.NewDesc("regoguard_policy_last_load_failure_timestamp_seconds",
		"When the last policy load failed; absent if none has.", nil, nil)
	descPolicyFailing = prometheus.NewDesc("regoguard_policy_load_failing",
		"1 while the most recent policy load failed (the previous revision is still served).", nil, nil)
)

// engineCollector exports an Engine's Status, read at scrape time so that
// it never disagrees with Status.
type engineCollector struct{ e *policy.Engine }

// NewEngineCollector returns a collector of e's [policy.Status]: the
// revision served (regoguard_policy_info), load and failure counts
// (regoguard_policy_loads_total, regoguard_policy_load_failures_total),
// their times, and whether the last load failed
// (regoguard_policy_load_failing).
func NewEngineCollector(e *policy.Engine) prometheus.Collector { return engineCollector{e} }

// Describe implements [prometheus.Collector].
func (c engineCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descPolicyInfo, descPolicyLoaded, descPolicyLoads, descPolicyFailures,
		descPolicyLastFailure, descPolicyFailing} {
		ch <- d
	}
}

// Collect implements [prometheus.Collector].
func (c engineCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.e.Status()
	if st.Revision != "" {
		ch <- prometheus.MustNewConstMetric(descPolicyInfo, prometheus.GaugeValue, 1, st.Revision)
		ch <- prometheus.MustNewConstMetric(descPolicyLoaded, prometheus.GaugeValue, seconds(st.LoadedAt))
	}
	ch <- prometheus.MustNewConstMetric(descPolicyLoads, prometheus.CounterValue, float64(st.Loads))
	ch <- prometheus.MustNewConstMetric(descPolicyFailures, prometheus.CounterValue, float64(st.Failures))
	if !st.LastErrorAt.IsZero() {
		ch <- prometheus.MustNewConstMetric(descPolicyLastFailure, prometheus.GaugeValue, seconds(st.LastErrorAt))
	}
	failing := 0.0
	if st.LastError != nil {
		failing = 1
	}
	ch <- prometheus.MustNewConstMetric(descPolicyFailing, prometheus.GaugeValue, failing)
}

// seconds is t as a Unix time in seconds, with its fraction.
func seconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }
