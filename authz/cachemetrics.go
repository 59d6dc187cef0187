package authz

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// cacheStats counts a Cache's lookups.
type cacheStats struct {
	hits, misses atomic.Uint64
}

// CacheStats are a [Cache]'s counts since it was made.
type CacheStats struct {
	// Hits are decisions answered from the cache.
	Hits uint64
	// Misses are decisions asked of the evaluator: not cached, expired, or
	// dropped by a new revision. Inputs that cannot be keyed count as misses.
	Misses uint64
	// Entries is the number of decisions held now.
	Entries int
}

// Stats returns the cache's hit and miss counts and its size.
func (c *Cache) Stats() CacheStats {
	return CacheStats{Hits: c.stats.hits.Load(), Misses: c.stats.misses.Load(), Entries: c.entries.Len()}
}

var (
	descCacheHits = prometheus.NewDesc("regoguard_decision_cache_hits_total",
		"Decisions answered from the decision cache.", nil, nil)
	descCacheMisses = prometheus.NewDesc("regoguard_decision_cache_misses_total",
		"Decisions the decision cache did not hold, asked of the evaluator.", nil, nil)
	descCacheEntries = prometheus.NewDesc("regoguard_decision_cache_entries",
		"Decisions held in the decision cache.", nil, nil)
)

type cacheCollector struct{ c *Cache }

// Collector returns a Prometheus collector of the cache's [CacheStats]:
// regoguard_decision_cache_hits_total, _misses_total and _entries.
func (c *Cache) Collector() prometheus.Collector { return cacheCollector{c} }

// Describe implements prometheus.Collector.
func (cc cacheCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descCacheHits
	ch <- descCacheMisses
	ch <- descCacheEntries
}

// Collect implements prometheus.Collector.
func (cc cacheCollector) Collect(ch chan<- prometheus.Metric) {
	st := cc.c.Stats()
	ch <- prometheus.MustNewConstMetric(descCacheHits, prometheus.CounterValue, float64(st.Hits))
	ch <- prometheus.MustNewConstMetric(descCacheMisses, prometheus.CounterValue, float64(st.Misses))
	ch <- prometheus.MustNewConstMetric(descCacheEntries, prometheus.GaugeValue, float64(st.Entries))
}
