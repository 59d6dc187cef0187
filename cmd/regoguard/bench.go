package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/profiler"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/spf13/cobra"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/authz"
	"github.com/regoguard/regoguard/cmd/regoguard/demo"
	"github.com/regoguard/regoguard/policy"
)

type benchOptions struct {
	policyOptions
	duration    time.Duration
	concurrency int
	asJSON      bool
	profile     bool
	gcFloorMiB  int
}

func newBenchCommand() *cobra.Command {
	o := &benchOptions{}
	cmd := &cobra.Command{
		Use:   "bench [--policy DIR CASES.yaml]",
		Short: "Measure decision latency and throughput, in-process and against a remote OPA, and advise",
		Long: `bench builds the input of every case of CASES.yaml (the format of "regoguard
check") exactly as the middleware does, then evaluates the cases round-robin
for --duration with --concurrency workers: in-process, from the decision
cache when --decision-cache is given, and against the remote OPA server
given by --opa-url. It reports decisions per second, latency percentiles and
allocations per decision for each mode, side by side, and ends with a
"tuning" section drawn from what it measured: what the decision cache, the
store, the garbage collector's heap floor and --whole-decision would change,
and why p99 and max sit where they do.

With no argument and no --policy, bench measures the demo: the embedded
policy that "regoguard serve" runs with no flags, with its own cases.

Figures from a shared or busy machine are noisy: compare modes measured in the
same run, and read the ratio rather than the absolute numbers.`,
		Example: `  regoguard bench                                   # the demo
  regoguard bench --policy policy/ cases.yaml
  regoguard bench --policy policy/ cases.yaml --opa-url http://127.0.0.1:8181 --duration 10s
  regoguard bench --policy policy/ cases.yaml --decision-cache 10000
  regoguard bench --policy policy/ cases.yaml --profile`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.run(cmd.Context(), cmd.OutOrStdout(), args)
		},
	}
	fs := cmd.Flags()
	o.register(fs)
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "how long each mode runs")
	fs.IntVar(&o.concurrency, "concurrency", runtime.GOMAXPROCS(0), "parallel workers")
	fs.BoolVar(&o.asJSON, "json", false, "print the results as JSON")
	fs.BoolVar(&o.profile, "profile", false, "show OPA's profile of the most expensive expressions (in-process)")
	fs.IntVar(&o.gcFloorMiB, "gc-heap-floor", 32, "MiB the heap may grow to before Go's garbage collector runs, as serve's flag of that name (0: Go's default; ignored when GOGC is set)")
	return withLayers(cmd)
}

// benchResult is one mode's figures.
type benchResult struct {
	Mode              string        `json:"mode"`
	Decisions         int           `json:"decisions"`
	Errors            int           `json:"errors"`
	PerSecond         float64       `json:"decisions_per_second"`
	P50               time.Duration `json:"p50_ns"`
	P90               time.Duration `json:"p90_ns"`
	P99               time.Duration `json:"p99_ns"`
	Max               time.Duration `json:"max_ns"`
	AllocsPerDecision float64       `json:"allocs_per_decision"`
	BytesPerDecision  float64       `json:"bytes_per_decision"`
	// GCCycles and GCPause are the garbage collections during the timed
	// run and their stop-the-world pauses, summed.
	GCCycles uint32        `json:"gc_cycles"`
	GCPause  time.Duration `json:"gc_pause_ns"`
	// CacheHitRatio is the share of decisions answered from the decision
	// cache (the cached mode only).
	CacheHitRatio *float64 `json:"cache_hit_ratio,omitempty"`
}

// benchReport is bench's --json output.
type benchReport struct {
	Demo    bool          `json:"demo,omitempty"`
	Cases   int           `json:"cases"`
	Workers int           `json:"workers"`
	Results []benchResult `json:"results"`
	Tuning  []string      `json:"tuning"`
}

func (o *benchOptions) run(ctx context.Context, out io.Writer, args []string) error {
	if err := o.validate(); err != nil {
		return err
	}
	if o.duration <= 0 || o.concurrency <= 0 {
		return configErrorf("--duration and --concurrency must be positive")
	}
	if o.gcFloorMiB < 0 {
		return configErrorf("--gc-heap-floor: must not be negative, got %d", o.gcFloorMiB)
	}
	quiet := slog.New(slog.DiscardHandler)
	demoing := len(args) == 0
	var (
		cases []testCase
		p     *policy.Policy
		err   error
	)
	switch {
	case demoing && (len(o.policies) > 0 || o.opaURL != ""):
		return configErrorf("give the CASES.yaml to measure (with no argument and no --policy, bench measures the demo)")
	case demoing:
		// As serve runs the demo: its policy, anonymous callers let through.
		o.allowAnonymous = true
		if p, err = demo.Policy(); err != nil {
			return err
		}
		if cases, err = parseCases("the demo's cases", demo.Cases()); err != nil {
			return err
		}
	case len(o.policies) == 0:
		return configErrorf("--policy is required (or give no argument at all to measure the demo)")
	default:
		if cases, err = readCases(args[0]); err != nil {
			return configError{err}
		}
		if p, err = o.loadPolicy(o.policies); err != nil {
			return err
		}
	}
	engine, err := policy.New(ctx, o.engineConfig(quiet), p)
	if err != nil {
		return sourceError("--policy", err)
	}
	// The garbage collector tuned as serve tunes it, so that the figures
	// are serve's.
	defer startGCTuner(uint64(o.gcFloorMiB)<<20, quiet)()
	inputs, err := o.inputs(cases, engine, quiet)
	if err != nil {
		return err
	}
	modes := []struct {
		name string
		eval authz.Evaluator
	}{{"in-process", engine}}
	var cache *authz.Cache
	if o.cacheSize > 0 {
		if cache, err = authz.NewCache(engine, authz.CacheConfig{Size: o.cacheSize, TTL: o.cacheTTL, KeyFields: o.cacheKey}); err != nil {
			return configErrorf("--decision-cache: %w", err)
		}
		modes = append(modes, struct {
			name string
			eval authz.Evaluator
		}{"cached", cache})
	}
	remote, err := o.remote()
	if err != nil {
		return err
	}
	if remote != nil {
		modes = append(modes, struct {
			name string
			eval authz.Evaluator
		}{"remote", remote})
	}
	var results []benchResult
	for _, m := range modes {
		r, err := measure(ctx, m.name, m.eval, inputs, o.duration, o.concurrency)
		if err != nil {
			return err
		}
		if c, ok := m.eval.(*authz.Cache); ok {
			st := c.Stats()
			ratio := float64(st.Hits) / float64(max(st.Hits+st.Misses, 1))
			r.CacheHitRatio = &ratio
		}
		results = append(results, r)
	}
	costs, err := caseCosts(ctx, engine, cases, inputs)
	if err != nil {
		return err
	}
	facts := tuningFacts{o: o, results: results, costs: costs, data: p.Data, cache: cache}
	if cache == nil {
		facts.hitCost = cacheHitCost(ctx, engine, inputs)
	}
	tips := facts.advice()
	if o.asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(benchReport{Demo: demoing, Cases: len(inputs), Workers: o.concurrency, Results: results, Tuning: tips})
	}
	if demoing {
		fmt.Fprintf(out, "the demo: the embedded policy that `regoguard serve` runs with no flags, and its %d cases\n", len(cases))
	}
	printBench(out, results, len(inputs), o.concurrency)
	if o.profile {
		if err := printProfile(ctx, out, engine, inputs); err != nil {
			return err
		}
	}
	fmt.Fprintln(out, "\ntuning:")
	for _, t := range tips {
		fmt.Fprintf(out, "  - %s\n", t)
	}
	return nil
}

// inputs builds each case's input with the middleware's own builder.
func (o *benchOptions) inputs(cases []testCase, e *policy.Engine, logger *slog.Logger) ([]ast.Value, error) {
	cfg := o.middlewareConfig()
	cfg.Evaluator, cfg.Logger = e, logger
	cfg.Authenticator = authn.AuthenticatorFunc(func(*http.Request) (*authn.Identity, error) { return nil, authn.ErrNoCredential })
	m, err := authz.New(cfg)
	if err != nil {
		return nil, err
	}
	g, err := newGRPCJudge(cfg)
	if err != nil {
		return nil, err
	}
	inputs := make([]ast.Value, 0, len(cases))
	for _, c := range cases {
		if c.Filter != nil {
			continue // a list filter's case: no request to time
		}
		if c.GRPC != nil {
			call, err := c.GRPC.call()
			if err != nil {
				return nil, fmt.Errorf("case %q: %w", c.Name, err)
			}
			in, err := g.Input(call, c.identity())
			if err != nil {
				return nil, fmt.Errorf("case %q: %w", c.Name, err)
			}
			inputs = append(inputs, in)
			continue
		}
		r, err := c.httpRequest()
		if err != nil {
			return nil, fmt.Errorf("case %q: %w", c.Name, err)
		}
		in, err := m.Input(r, c.identity())
		if err != nil {
			return nil, fmt.Errorf("case %q: %w", c.Name, err)
		}
		inputs = append(inputs, in)
	}
	return inputs, nil
}

// measure evaluates inputs round-robin with workers for d, after counting
// allocations over a sequential pass.
func measure(ctx context.Context, mode string, eval authz.Evaluator, inputs []ast.Value, d time.Duration, workers int) (benchResult, error) {
	for _, in := range inputs { // warm up: connections, caches
		if _, err := eval.Eval(ctx, in); err != nil {
			return benchResult{}, fmt.Errorf("%s: %w", mode, err)
		}
	}
	res := benchResult{Mode: mode}
	res.AllocsPerDecision, res.BytesPerDecision = allocsPerDecision(ctx, eval, inputs)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	deadline := time.Now().Add(d)
	lat := make([][]time.Duration, workers)
	errs := make([]int, workers)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range workers {
		wg.Go(func() {
			samples := make([]time.Duration, 0, 1<<14)
			for i := w; time.Now().Before(deadline) && ctx.Err() == nil; i++ {
				t0 := time.Now()
				_, err := eval.Eval(ctx, inputs[i%len(inputs)])
				samples = append(samples, time.Since(t0))
				if err != nil {
					errs[w]++
				}
			}
			lat[w] = samples
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)
	res.GCCycles = after.NumGC - before.NumGC
	res.GCPause = time.Duration(after.PauseTotalNs - before.PauseTotalNs)
	all := slices.Concat(lat...)
	slices.Sort(all)
	for _, e := range errs {
		res.Errors += e
	}
	res.Decisions = len(all)
	if len(all) == 0 {
		return res, fmt.Errorf("%s: no decision completed", mode)
	}
	res.PerSecond = float64(len(all)) / elapsed.Seconds()
	res.P50, res.P90, res.P99, res.Max = percentile(all, 50), percentile(all, 90), percentile(all, 99), all[len(all)-1]
	return res, nil
}

func allocsPerDecision(ctx context.Context, eval authz.Evaluator, inputs []ast.Value) (allocs, bytes float64) {
	const rounds = 200
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range rounds {
		_, _ = eval.Eval(ctx, inputs[i%len(inputs)])
	}
	runtime.ReadMemStats(&after)
	return float64(after.Mallocs-before.Mallocs) / rounds, float64(after.TotalAlloc-before.TotalAlloc) / rounds
}

func percentile(sorted []time.Duration, p int) time.Duration {
	i := (len(sorted)*p + 99) / 100
	if i > 0 {
		i--
	}
	return sorted[i]
}

func printBench(out io.Writer, results []benchResult, cases, workers int) {
	fmt.Fprintf(out, "%d cases, %d workers, GOMAXPROCS %d\n\n", cases, workers, runtime.GOMAXPROCS(0))
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "mode\tdecisions/s\tp50\tp90\tp99\tmax\tallocs/decision\tGC cycles\terrors\t")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%.0f\t%v\t%v\t%v\t%v\t%.0f\t%d\t%d\t\n", r.Mode, r.PerSecond,
			r.P50.Round(100*time.Nanosecond), r.P90.Round(100*time.Nanosecond), r.P99.Round(100*time.Nanosecond),
			r.Max.Round(time.Microsecond), r.AllocsPerDecision, r.GCCycles, r.Errors)
	}
	_ = tw.Flush()
	for _, r := range results[1:] {
		if r.Mode == "remote" && r.PerSecond > 0 {
			fmt.Fprintf(out, "\nin-process: %.1fx the throughput of remote, p50 %.1fx lower\n",
				results[0].PerSecond/r.PerSecond, float64(r.P50)/float64(results[0].P50))
		}
	}
}

// printProfile evaluates every case with OPA's profiler and lists the
// expressions that cost most.
func printProfile(ctx context.Context, out io.Writer, e *policy.Engine, inputs []ast.Value) error {
	prof := profiler.New()
	for range 100 { // rounds, below
		for _, in := range inputs {
			if _, err := e.EvalWith(ctx, in, rego.EvalQueryTracer(prof)); err != nil {
				return err
			}
		}
	}
	const rounds = 100
	evals := rounds * len(inputs)
	fmt.Fprintf(out, "\nmost expensive expressions (OPA profiler, %d rounds of every case: %d evaluations; PER EVAL is TIME divided by them, under the profiler's own overhead):\n", rounds, evals)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tPER EVAL\tEVALS\tREDO\tLOCATION")
	for _, s := range prof.ReportTopNResults(10, []string{"total_time_ns", "num_eval", "num_redo", "file", "line"}) {
		fmt.Fprintf(tw, "%v\t%v\t%d\t%d\t%s\n", time.Duration(s.ExprTimeNs), (time.Duration(s.ExprTimeNs) / time.Duration(evals)).Round(10*time.Nanosecond),
			s.NumEval, s.NumRedo, s.Location)
	}
	return tw.Flush()
}
