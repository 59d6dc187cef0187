package main

import (
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
)

// The garbage collector's default target is twice the live heap, with a 4 MiB
// minimum. A sidecar's live heap is a few MiB (a small policy, a connection
// pool), so under load Go collects a hundred times a second: the marking, and
// the goroutine stacks that every collection shrinks and the next policy
// evaluation grows again, cost more CPU than the evaluation itself (see
// benchmarks/README.md). A heap floor keeps the collector from starting before
// the heap reaches it, and changes nothing once the live heap is large.

// gcTuner keeps the garbage collector's target heap at least floor bytes,
// re-tuning GOGC after every collection from the live heap it measured.
type gcTuner struct {
	floor   uint64
	base    int // the GOGC that applies once the live heap is above the floor
	logger  *slog.Logger
	percent int
	stopped atomic.Bool
	sample  []metrics.Sample
}

// gcSentinel is garbage that reports each collection: its cleanup runs after
// the cycle that found it unreachable, and arms the next one. The pointer
// field keeps it out of the tiny allocator, whose objects may never be
// cleaned up.
type gcSentinel struct{ _ *gcTuner }

// startGCTuner sets a heap floor for the garbage collector, unless floor is 0
// or GOGC is set in the environment (the operator's explicit choice wins).
// The returned function stops it and restores the base GOGC.
func startGCTuner(floor uint64, logger *slog.Logger) func() {
	if floor == 0 || os.Getenv("GOGC") != "" {
		return func() {}
	}
	t := &gcTuner{floor: floor, base: 100, logger: logger, percent: 100,
		sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
	t.tune()
	t.arm()
	return func() {
		t.stopped.Store(true)
		debug.SetGCPercent(t.base)
	}
}

func (t *gcTuner) arm() { runtime.AddCleanup(&gcSentinel{}, (*gcTuner).collected, t) }

func (t *gcTuner) collected() {
	if !t.stopped.Load() {
		t.tune()
		t.arm()
	}
}

// tune needs no lock: one sentinel is armed at a time, and the next only
// after tune returns.
func (t *gcTuner) tune() {
	metrics.Read(t.sample)
	live := t.sample[0].Value.Uint64()
	p := gcPercent(live, t.floor, t.base)
	// Small changes are not worth a call that takes the heap lock.
	if p == t.percent || (p > t.percent && p < t.percent*11/10) || (p < t.percent && p > t.percent*9/10) {
		return
	}
	t.percent = p
	debug.SetGCPercent(p)
	t.logger.Debug("garbage collector tuned", "gogc", p, "live_heap_bytes", live, "heap_floor_bytes", t.floor)
}

// gcPercent is the GOGC that makes the next collection start when the heap
// reaches floor bytes, given live bytes survived the last one: never below
// base, and bounded so that an almost empty heap does not ask for an absurd
// figure.
func gcPercent(live, floor uint64, base int) int {
	const most = 100_000
	if live == 0 {
		live = 1 << 20
	}
	if live >= floor {
		return base
	}
	p := (floor - live) * 100 / live
	return int(max(uint64(base), min(p, most)))
}
