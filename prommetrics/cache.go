package prommetrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/regoguard/regoguard/authz"
)

var (
	descCacheHits = prometheus.NewDesc("regoguard_decision_cache_hits_total",
		"Decisions answered from the decision cache.", nil, nil)
	descCacheMisses = prometheus.NewDesc("regoguard_decision_cache_misses_total",
		"Decisions the decision cache did not hold, asked of the evaluator.", nil, nil)
	descCacheEntries = prometheus.NewDesc("regoguard_decision_cache_entries",
		"Decisions held in the decision cache.", nil, nil)
)

type cacheCollector struct{ c *authz.Cache }

// NewCacheCollector returns a collector of c's [authz.CacheStats], read at
// scrape time: regoguard_decision_cache_hits_total, _misses_total and
// _entries.
func NewCacheCollector(c *authz.Cache) prometheus.Collector { return cacheCollector{c} }

// Describe implements [prometheus.Collector].
func (cc cacheCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descCacheHits
	ch <- descCacheMisses
	ch <- descCacheEntries
}

// Collect implements [prometheus.Collector].
func (cc cacheCollector) Collect(ch chan<- prometheus.Metric) {
	st := cc.c.Stats()
	ch <- prometheus.MustNewConstMetric(descCacheHits, prometheus.CounterValue, float64(st.Hits))
	ch <- prometheus.MustNewConstMetric(descCacheMisses, prometheus.CounterValue, float64(st.Misses))
	ch <- prometheus.MustNewConstMetric(descCacheEntries, prometheus.GaugeValue, float64(st.Entries))
}
