package authz

import "sync/atomic"

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

// Stats returns the cache's hit and miss counts and its size (package
// prommetrics exports them to Prometheus).
func (c *Cache) Stats() CacheStats {
	return CacheStats{Hits: c.stats.hits.Load(), Misses: c.stats.misses.Load(), Entries: c.entries.Len()}
}
