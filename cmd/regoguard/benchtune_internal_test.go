package main

import (
	"strings"
	"testing"
	"time"
)

// The tuning section follows the figures: each suggestion appears when,
// and only when, what was measured calls for it.
func TestBenchAdviceFollowsTheFigures(t *testing.T) {
	base := func() tuningFacts {
		return tuningFacts{
			o: &benchOptions{policyOptions: policyOptions{store: "read-optimized"}, duration: time.Second, concurrency: 1, gcFloorMiB: 32},
			results: []benchResult{{Mode: "in-process", Decisions: 100000, PerSecond: 100000, P50: 10 * time.Microsecond,
				P99: 20 * time.Microsecond, Max: 50 * time.Microsecond}},
			costs:   []caseCost{{"reads", true, 10 * time.Microsecond}, {"refused", false, 40 * time.Microsecond}},
			hitCost: time.Microsecond,
		}
	}
	cases := []struct {
		name      string
		change    func(*tuningFacts)
		want, not []string
	}{
		{"quiet", func(*tuningFacts) {}, []string{"a hit costs 1µs against 25µs", "no data documents", "no collection", "refusals cost 40µs, allowed requests 10µs: a refusal also evaluates", "no tail to chase"},
			[]string{"higher --gc-heap-floor", "--profile"}},
		{"busy collector", func(f *tuningFacts) { f.results[0].GCCycles = 200; f.results[0].BytesPerDecision = 4096 },
			[]string{"200 collections", "4.0 KiB allocated per decision", "a higher --gc-heap-floor (now 32 MiB)"}, nil},
		{"collector floor off", func(f *tuningFacts) { f.o.gcFloorMiB = 0; f.results[0].GCCycles = 3 }, []string{"--gc-heap-floor is off"}, nil},
		{"compact store with data", func(f *tuningFacts) { f.o.store = "compact"; f.data = map[string]any{"roles": []any{"a", "b"}} },
			[]string{"--store compact: the data (19 B of JSON) is converted on every read"}, nil},
		{"whole decision", func(f *tuningFacts) { f.o.wholeDecision = true }, []string{"--whole-decision: every request evaluates every rule"}, []string{"refusals cost"}},
		{"cache hit no cheaper", func(f *tuningFacts) { f.hitCost = 24 * time.Microsecond }, []string{"decision cache: not worth it here"}, nil},
		{"a slow case", func(f *tuningFacts) { f.costs = append(f.costs, caseCost{"scan", true, 400 * time.Microsecond}) }, []string{`the slowest case, "scan"`}, nil},
		{"long tail", func(f *tuningFacts) {
			f.o.concurrency = 64
			f.results[0].P99, f.results[0].Max, f.results[0].GCCycles = 2*time.Millisecond, 30*time.Millisecond, 9
		}, []string{"p99 2ms and max 30ms sit 200x and 3000x above p50", `"refused" costs 4.0x "reads"`, "64 workers on", "9 garbage collections", "read p99"}, []string{"no tail"}},
	}
	for _, c := range cases {
		f := base()
		c.change(&f)
		got := strings.Join(f.advice(), "\n")
		for _, w := range c.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: advice lacks %q:\n%s", c.name, w, got)
			}
		}
		for _, w := range c.not {
			if strings.Contains(got, w) {
				t.Errorf("%s: advice holds %q:\n%s", c.name, w, got)
			}
		}
	}
}
