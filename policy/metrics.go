package policy

import (
	"github.com/prometheus/client_golang/prometheus"
)

// engineCollector exports an Engine's [Status] as Prometheus metrics, read
// at scrape time so they never disagree with Status.
type engineCollector struct{ e *Engine }

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

// Collector returns a Prometheus collector of the Engine's status: the
// revision served, load and failure counts and times. Register it with the
// registry the rest of the process uses.
func (e *Engine) Collector() prometheus.Collector { return engineCollector{e} }

// Describe implements prometheus.Collector.
func (c engineCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descPolicyInfo, descPolicyLoaded, descPolicyLoads, descPolicyFailures,
		descPolicyLastFailure, descPolicyFailing} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c engineCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.e.Status()
	if st.Revision != "" {
		ch <- prometheus.MustNewConstMetric(descPolicyInfo, prometheus.GaugeValue, 1, st.Revision)
		ch <- prometheus.MustNewConstMetric(descPolicyLoaded, prometheus.GaugeValue, seconds(st.LoadedAt.UnixNano()))
	}
	ch <- prometheus.MustNewConstMetric(descPolicyLoads, prometheus.CounterValue, float64(st.Loads))
	ch <- prometheus.MustNewConstMetric(descPolicyFailures, prometheus.CounterValue, float64(st.Failures))
	if !st.LastErrorAt.IsZero() {
		ch <- prometheus.MustNewConstMetric(descPolicyLastFailure, prometheus.GaugeValue, seconds(st.LastErrorAt.UnixNano()))
	}
	failing := 0.0
	if st.LastError != nil {
		failing = 1
	}
	ch <- prometheus.MustNewConstMetric(descPolicyFailing, prometheus.GaugeValue, failing)
}

func seconds(ns int64) float64 { return float64(ns) / 1e9 }
