package main

import (
	"log/slog"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"
)

func TestGCPercentKeepsTheHeapFloor(t *testing.T) {
	const mib = 1 << 20
	cases := []struct {
		live, floor uint64
		want        int
	}{
		{live: 4 * mib, floor: 64 * mib, want: 1500},  // the next collection at 64 MiB
		{live: 32 * mib, floor: 64 * mib, want: 100},  // 2x live reaches the floor already
		{live: 60 * mib, floor: 64 * mib, want: 100},  // never below GOGC=100
		{live: 512 * mib, floor: 64 * mib, want: 100}, // a large heap: Go's default
		{live: 1024, floor: 64 * mib, want: 100_000},  // bounded
		{live: 0, floor: 64 * mib, want: 6300},        // no reading yet: assume 1 MiB
	}
	for _, c := range cases {
		if got := gcPercent(c.live, c.floor, 100); got != c.want {
			t.Errorf("gcPercent(%d, %d) = %d, want %d", c.live, c.floor, got, c.want)
		}
	}
}

func gogc() uint64 {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func TestGCTunerFollowsTheLiveHeapAndStops(t *testing.T) {
	t.Setenv("GOGC", "")
	stop := startGCTuner(1<<30, slog.New(slog.DiscardHandler))
	// The test binary's live heap is a few MiB: a 1 GiB floor is hundreds
	// of times that.
	if p := gogc(); p < 1000 {
		stop()
		t.Fatalf("GOGC %d after starting the tuner, want a figure that puts the next collection near 1 GiB", p)
	}
	// After each collection the tuner measures the live heap again: with
	// 128 MiB more of it, the floor is reached with a smaller GOGC.
	before := gogc()
	live := make([]byte, 128<<20)
	deadline := time.Now().Add(5 * time.Second)
	for p := gogc(); p > before/4 || p <= 100; p = gogc() {
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("GOGC still %d (was %d) with 128 MiB more live heap, want it lowered but above 100", p, before)
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	runtime.KeepAlive(live)
	stop()
	runtime.GC()
	time.Sleep(10 * time.Millisecond)
	if p := gogc(); p != 100 {
		t.Errorf("GOGC %d after stop, want 100", p)
	}
}

func TestGCTunerLeavesAnExplicitGOGC(t *testing.T) {
	t.Setenv("GOGC", "100")
	defer startGCTuner(1<<30, slog.New(slog.DiscardHandler))()
	if p := gogc(); p != 100 {
		t.Errorf("GOGC %d with GOGC set in the environment, want it left alone", p)
	}
}
