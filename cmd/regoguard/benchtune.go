package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/regoguard/regoguard/authz"
	"github.com/regoguard/regoguard/policy"
)

// caseCost is what one case costs evaluated alone, sequentially.
type caseCost struct {
	name  string
	allow bool
	cost  time.Duration
}

// costRounds is how many times each case is evaluated alone.
const costRounds = 50

// caseCosts times each case alone: which cases are slow, and what a
// refusal (the whole decision package) costs next to an allowed request
// (allow alone).
func caseCosts(ctx context.Context, e *policy.Engine, cases []testCase, inputs []ast.Value) ([]caseCost, error) {
	costs := make([]caseCost, 0, len(inputs))
	for i, in := range inputs {
		d, err := e.Eval(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("case %q: %w", cases[i].Name, err)
		}
		start := time.Now()
		for range costRounds {
			_, _ = e.Eval(ctx, in)
		}
		costs = append(costs, caseCost{name: cases[i].Name, allow: d.Allow, cost: time.Since(start) / costRounds})
	}
	return costs, nil
}

// cacheHitCost is what a decision answered from a decision cache costs on
// these inputs, measured on a cache made for the purpose.
func cacheHitCost(ctx context.Context, e *policy.Engine, inputs []ast.Value) time.Duration {
	c, err := authz.NewCache(e, authz.CacheConfig{Size: 2 * len(inputs), TTL: time.Minute})
	if err != nil {
		return 0
	}
	for _, in := range inputs {
		_, _ = c.Eval(ctx, in)
	}
	rounds := costRounds * len(inputs)
	start := time.Now()
	for i := range rounds {
		_, _ = c.Eval(ctx, inputs[i%len(inputs)])
	}
	return time.Since(start) / time.Duration(rounds)
}

// tuningFacts is what bench measured, for its advice.
type tuningFacts struct {
	o       *benchOptions
	results []benchResult
	costs   []caseCost
	data    map[string]any
	cache   *authz.Cache // --decision-cache, or nil
	hitCost time.Duration
}

// advice turns the figures into short, specific suggestions, in the order
// of what they usually change most.
func (f tuningFacts) advice() []string {
	in := f.results[0]
	mean := f.meanCost()
	var tips []string
	// The decision cache.
	switch {
	case f.cache != nil:
		for _, r := range f.results {
			if r.CacheHitRatio == nil {
				continue
			}
			tips = append(tips, fmt.Sprintf("decision cache (--decision-cache %d): %.0f%% of decisions were hits, %.1fx the throughput of evaluating each (p50 %v against %v). "+
				"bench repeats its %d cases, so nearly every decision hits: your traffic's hit ratio is the share of requests that repeat one (same user, method, path and every field the policy reads) within --decision-cache-ttl %v; serve exports it as regoguard_decision_cache_hits_total and _misses_total",
				f.o.cacheSize, 100**r.CacheHitRatio, r.PerSecond/in.PerSecond, r.P50.Round(100*time.Nanosecond), in.P50.Round(100*time.Nanosecond), len(f.costs), f.o.cacheTTL))
		}
	case f.hitCost > 0 && mean > 0:
		saved := 1 - float64(f.hitCost)/float64(mean)
		if saved > 0.3 {
			tips = append(tips, fmt.Sprintf("decision cache: a hit costs %v against %v for an evaluation (%.0f%% less); if clients repeat requests (same user, method, path), try --decision-cache 10000 and rerun bench with it to see the hit ratio (a deterministic policy only: no time.now_ns, no http.send)",
				f.hitCost.Round(10*time.Nanosecond), mean.Round(10*time.Nanosecond), 100*saved))
		} else {
			tips = append(tips, fmt.Sprintf("decision cache: not worth it here: a hit costs %v, an evaluation %v", f.hitCost.Round(10*time.Nanosecond), mean.Round(10*time.Nanosecond)))
		}
	}
	// The store.
	if len(f.data) == 0 {
		tips = append(tips, "--store: makes no difference here: the policy has no data documents")
	} else {
		size := 0
		if b, err := json.Marshal(f.data); err == nil {
			size = len(b)
		}
		if f.o.store == policy.StoreCompact.String() {
			tips = append(tips, fmt.Sprintf("--store compact: the data (%s of JSON) is converted on every read; --store read-optimized (the default) converts it once at load and is faster per decision, at about twice the memory: rerun bench without --store to compare", byteSize(size)))
		} else {
			tips = append(tips, fmt.Sprintf("--store read-optimized: the data (%s of JSON) is converted once at load, fastest per decision; if memory matters more, --store compact holds about half: rerun bench with it to see what each decision pays", byteSize(size)))
		}
	}
	// The garbage collector.
	if in.GCCycles > 0 {
		every := in.Decisions / int(in.GCCycles)
		tip := fmt.Sprintf("garbage collector: %d collections in %v (one every %d decisions, %s allocated per decision), pauses %v in all", in.GCCycles, f.o.duration, every,
			byteSize(int(in.BytesPerDecision)), in.GCPause.Round(time.Microsecond))
		switch {
		case f.o.gcFloorMiB == 0:
			tip += "; --gc-heap-floor is off: serve's default (32) lets the heap grow before collecting and cuts collections on a small live heap"
		case float64(in.GCCycles)/f.o.duration.Seconds() > 10:
			tip += fmt.Sprintf("; more than 10 a second: a higher --gc-heap-floor (now %d MiB) collects less often, for that much more memory", f.o.gcFloorMiB)
		default:
			tip += fmt.Sprintf("; few enough: --gc-heap-floor %d MiB is fine", f.o.gcFloorMiB)
		}
		tips = append(tips, tip)
	} else {
		tips = append(tips, fmt.Sprintf("garbage collector: no collection during the in-process run (--gc-heap-floor %d MiB): nothing to gain there", f.o.gcFloorMiB))
	}
	// --whole-decision, and what a refusal costs.
	allow, deny := f.meanBy(true), f.meanBy(false)
	switch {
	case f.o.wholeDecision:
		tips = append(tips, "--whole-decision: every request evaluates every rule of the package; without it an allowed request evaluates allow alone (reason and status only for refusals): drop it unless handlers or decision logs read the other rules")
	case allow > 0 && deny > 0 && float64(deny) > 1.3*float64(allow):
		tips = append(tips, fmt.Sprintf("refusals cost %v, allowed requests %v: a refusal also evaluates reason and status; --whole-decision would make every request pay for them", deny.Round(10*time.Nanosecond), allow.Round(10*time.Nanosecond)))
	case allow > 0 && deny > 0:
		tips = append(tips, fmt.Sprintf("refusals cost %v, allowed requests %v: the policy's reason and status rules, evaluated for refusals only, cost little; --whole-decision would not change much", deny.Round(10*time.Nanosecond), allow.Round(10*time.Nanosecond)))
	}
	if slow := f.slowest(); slow.cost > 0 && mean > 0 && float64(slow.cost) > 2*float64(mean) {
		tips = append(tips, fmt.Sprintf("the slowest case, %q, costs %v, %.1fx the mean: see which expressions with --profile", slow.name, slow.cost.Round(10*time.Nanosecond), float64(slow.cost)/float64(mean)))
	}
	// The tail.
	tips = append(tips, f.tail(in))
	return tips
}

// tail explains the distance from p50 to p99 and max, from what was
// measured: the mix of cases, the workers against the cores, the
// collector's pauses.
func (f tuningFacts) tail(in benchResult) string {
	if in.P50 <= 0 || in.P99 < 3*in.P50 {
		return fmt.Sprintf("latency: p99 (%v) is within 3x p50 (%v): no tail to chase", in.P99.Round(100*time.Nanosecond), in.P50.Round(100*time.Nanosecond))
	}
	why := []string{}
	if slow, fast := f.slowest(), f.fastest(); fast.cost > 0 && slow.cost > 2*fast.cost {
		why = append(why, fmt.Sprintf("the cases differ: %q costs %.1fx %q, and the percentiles mix them", slow.name, float64(slow.cost)/float64(fast.cost), fast.name))
	}
	if procs := runtime.GOMAXPROCS(0); f.o.concurrency >= procs {
		why = append(why, fmt.Sprintf("%d workers on %d cores (GOMAXPROCS): a decision waits whenever a worker, the collector or another process holds a core (--concurrency %d measures the decision alone)", f.o.concurrency, procs, max(procs-1, 1)))
	}
	if in.GCCycles > 0 {
		why = append(why, fmt.Sprintf("%d garbage collections, which slow the decisions running beside them", in.GCCycles))
	}
	if len(why) == 0 {
		why = append(why, "the machine itself (other processes, CPU frequency): rerun and compare")
	}
	s := fmt.Sprintf("latency: p99 %v and max %v sit %.0fx and %.0fx above p50 %v: ", in.P99.Round(100*time.Nanosecond), in.Max.Round(time.Microsecond),
		float64(in.P99)/float64(in.P50), float64(in.Max)/float64(in.P50), in.P50.Round(100*time.Nanosecond))
	for i, w := range why {
		if i > 0 {
			s += "; "
		}
		s += w
	}
	return s + ". max is one decision: read p99"
}

func (f tuningFacts) meanCost() time.Duration {
	if len(f.costs) == 0 {
		return 0
	}
	var sum time.Duration
	for _, c := range f.costs {
		sum += c.cost
	}
	return sum / time.Duration(len(f.costs))
}

func (f tuningFacts) meanBy(allow bool) time.Duration {
	var sum time.Duration
	n := 0
	for _, c := range f.costs {
		if c.allow == allow {
			sum += c.cost
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return sum / time.Duration(n)
}

func (f tuningFacts) slowest() caseCost {
	if len(f.costs) == 0 {
		return caseCost{}
	}
	return slices.MaxFunc(f.costs, func(a, b caseCost) int { return cmp.Compare(a.cost, b.cost) })
}

func (f tuningFacts) fastest() caseCost {
	if len(f.costs) == 0 {
		return caseCost{}
	}
	return slices.MinFunc(f.costs, func(a, b caseCost) int { return cmp.Compare(a.cost, b.cost) })
}

// byteSize writes n bytes for a person.
func byteSize(n int) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
