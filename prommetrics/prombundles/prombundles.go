// Package prombundles exports a bundles.Manager's status as Prometheus
// metrics, read when scraped, as package prommetrics does for an engine, a
// cache and a shadow policy. It lives apart from prommetrics so that a
// program using prommetrics without bundles does not link OPA's bundle
// plugins, and apart from bundles so that bundles imports no Prometheus
// package: only prommetrics (and its sub-packages) and the CLI do.
package prombundles

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/regoguard/regoguard/bundles"
)

// collector exports a Manager's status as Prometheus metrics, read at
// scrape time so they never disagree with bundles.Manager.Status.
type collector struct {
	m *bundles.Manager
}

var (
	descInfo = prometheus.NewDesc("regoguard_bundle_info",
		"Active revision of each bundle (value 1).", []string{"bundle", "revision"}, nil)
	descActivated = prometheus.NewDesc("regoguard_bundle_last_activation_timestamp_seconds",
		"When the active revision of the bundle was activated.", []string{"bundle"}, nil)
	descLastCheck = prometheus.NewDesc("regoguard_bundle_last_check_timestamp_seconds",
		"When the bundle server last answered for the bundle (200 or 304).", []string{"bundle"}, nil)
	descLastError = prometheus.NewDesc("regoguard_bundle_last_error_timestamp_seconds",
		"When the last download or activation of the bundle failed.", []string{"bundle"}, nil)
	descFailing = prometheus.NewDesc("regoguard_bundle_failing",
		"1 while the bundle's last download or activation failed.", []string{"bundle"}, nil)
	descActivations = prometheus.NewDesc("regoguard_bundle_activations_total",
		"Revisions of the bundle activated.", []string{"bundle"}, nil)
	descFailures = prometheus.NewDesc("regoguard_bundle_failures_total",
		"Failed downloads or rejected revisions of the bundle.", []string{"bundle"}, nil)
	descNotModified = prometheus.NewDesc("regoguard_bundle_not_modified_total",
		"304 Not Modified answers for the bundle.", []string{"bundle"}, nil)
	descReady = prometheus.NewDesc("regoguard_bundles_ready",
		"1 once every bundle has been activated.", nil, nil)
)

// NewCollector returns a Prometheus collector of m's status
// (bundles.Manager.Status): the active revision per bundle
// (regoguard_bundle_info), activation, check and error times, activation,
// failure and not-modified counts, whether each bundle is failing, and
// readiness (regoguard_bundles_ready). Register it with the registry the
// rest of the process uses.
func NewCollector(m *bundles.Manager) prometheus.Collector { return collector{m} }

// Describe implements [prometheus.Collector].
func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descInfo, descActivated, descLastCheck, descLastError,
		descFailing, descActivations, descFailures, descNotModified, descReady} {
		ch <- d
	}
}

// Collect implements [prometheus.Collector].
func (c collector) Collect(ch chan<- prometheus.Metric) {
	st := c.m.Status()
	ready := 0.0
	if st.Ready {
		ready = 1
	}
	ch <- prometheus.MustNewConstMetric(descReady, prometheus.GaugeValue, ready)
	for _, b := range st.Bundles {
		if !b.ActivatedAt.IsZero() {
			ch <- prometheus.MustNewConstMetric(descInfo, prometheus.GaugeValue, 1, b.Name, b.Revision)
			ch <- prometheus.MustNewConstMetric(descActivated, prometheus.GaugeValue, unix(b.ActivatedAt), b.Name)
		}
		if !b.LastCheckAt.IsZero() {
			ch <- prometheus.MustNewConstMetric(descLastCheck, prometheus.GaugeValue, unix(b.LastCheckAt), b.Name)
		}
		if !b.LastErrorAt.IsZero() {
			ch <- prometheus.MustNewConstMetric(descLastError, prometheus.GaugeValue, unix(b.LastErrorAt), b.Name)
		}
		failing := 0.0
		if b.LastError != nil {
			failing = 1
		}
		ch <- prometheus.MustNewConstMetric(descFailing, prometheus.GaugeValue, failing, b.Name)
		ch <- prometheus.MustNewConstMetric(descActivations, prometheus.CounterValue, float64(b.Activations), b.Name)
		ch <- prometheus.MustNewConstMetric(descFailures, prometheus.CounterValue, float64(b.Failures), b.Name)
		ch <- prometheus.MustNewConstMetric(descNotModified, prometheus.CounterValue, float64(b.NotModified), b.Name)
	}
}

func unix(t interface{ UnixNano() int64 }) float64 { return float64(t.UnixNano()) / 1e9 }
