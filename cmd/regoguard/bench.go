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
	"github.com/regoguard/regoguard/policy"
)

type benchOptions struct {
	policyOptions
	duration    time.Duration
	concurrency int
	asJSON      bool
	profile     bool
}

func newBenchCommand() *cobra.Command {
	o := &benchOptions{}
	cmd := &cobra.Command{
		Use:   "bench --policy DIR CASES.yaml",
		Short: "Measure decision latency and throughput, in-process and against a remote OPA",
		Long: `bench builds the input of every case of CASES.yaml (the format of "regoguard
check") exactly as the middleware does, then evaluates the cases round-robin
for --duration with --concurrency workers: in-process, and against the remote
OPA server given by --opa-url. It reports decisions per second, latency
percentiles and allocations per decision for each mode, side by side.

Figures from a shared or busy machine are noisy: compare modes measured in the
same run, and read the ratio rather than the absolute numbers.`,
		Example: `  regoguard bench --policy policy/ cases.yaml
  regoguard bench --policy policy/ cases.yaml --opa-url http://127.0.0.1:8181 --duration 10s
  regoguard bench --policy policy/ cases.yaml --profile`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.run(cmd.Context(), cmd.OutOrStdout(), args[0])
		},
	}
	fs := cmd.Flags()
	o.register(fs)
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "how long each mode runs")
	fs.IntVar(&o.concurrency, "concurrency", runtime.GOMAXPROCS(0), "parallel workers")
	fs.BoolVar(&o.asJSON, "json", false, "print the results as JSON")
	fs.BoolVar(&o.profile, "profile", false, "show OPA's profile of the most expensive expressions (in-process)")
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
}

func (o *benchOptions) run(ctx context.Context, out io.Writer, casesPath string) error {
	if err := o.validate(); err != nil {
		return err
	}
	if o.duration <= 0 || o.concurrency <= 0 {
		return configErrorf("--duration and --concurrency must be positive")
	}
	if len(o.policies) == 0 {
		return configErrorf("--policy is required")
	}
	cases, err := readCases(casesPath)
	if err != nil {
		return configError{err}
	}
	quiet := slog.New(slog.DiscardHandler)
	engine, err := o.loadEngine(ctx, o.policies, quiet)
	if err != nil {
		return err
	}
	inputs, err := o.inputs(cases, engine, quiet)
	if err != nil {
		return err
	}
	modes := []struct {
		name string
		eval authz.Evaluator
	}{{"in-process", engine}}
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
		results = append(results, r)
	}
	if o.asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(results)
	}
	printBench(out, results, len(inputs), o.concurrency)
	if o.profile {
		return printProfile(ctx, out, engine, inputs)
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
	res := benchResult{Mode: mode, AllocsPerDecision: allocsPerDecision(ctx, eval, inputs)}
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

func allocsPerDecision(ctx context.Context, eval authz.Evaluator, inputs []ast.Value) float64 {
	const rounds = 200
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range rounds {
		_, _ = eval.Eval(ctx, inputs[i%len(inputs)])
	}
	runtime.ReadMemStats(&after)
	return float64(after.Mallocs-before.Mallocs) / rounds
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
	fmt.Fprintln(tw, "mode\tdecisions/s\tp50\tp90\tp99\tmax\tallocs/decision\terrors\t")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%.0f\t%v\t%v\t%v\t%v\t%.0f\t%d\t\n", r.Mode, r.PerSecond,
			r.P50.Round(100*time.Nanosecond), r.P90.Round(100*time.Nanosecond), r.P99.Round(100*time.Nanosecond),
			r.Max.Round(time.Microsecond), r.AllocsPerDecision, r.Errors)
	}
	_ = tw.Flush()
	if len(results) == 2 && results[1].PerSecond > 0 {
		fmt.Fprintf(out, "\nin-process: %.1fx the throughput of remote, p50 %.1fx lower\n",
			results[0].PerSecond/results[1].PerSecond, float64(results[1].P50)/float64(results[0].P50))
	}
}

// printProfile evaluates every case with OPA's profiler and lists the
// expressions that cost most.
func printProfile(ctx context.Context, out io.Writer, e *policy.Engine, inputs []ast.Value) error {
	prof := profiler.New()
	for range 100 {
		for _, in := range inputs {
			if _, err := e.EvalWith(ctx, in, rego.EvalQueryTracer(prof)); err != nil {
				return err
			}
		}
	}
	fmt.Fprintln(out, "\nmost expensive expressions (OPA profiler, 100 rounds of every case):")
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tEVALS\tREDO\tLOCATION")
	for _, s := range prof.ReportTopNResults(10, []string{"total_time_ns", "num_eval", "num_redo", "file", "line"}) {
		fmt.Fprintf(tw, "%v\t%d\t%d\t%s\n", time.Duration(s.ExprTimeNs), s.NumEval, s.NumRedo, s.Location)
	}
	return tw.Flush()
}
