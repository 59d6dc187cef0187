package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/cover"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/tester"
	"github.com/open-policy-agent/opa/v1/util"
	"github.com/spf13/pflag"

	"github.com/regoguard/regoguard/policy"
)

// coverageOptions are check's --coverage flags.
type coverageOptions struct {
	coverage    bool
	minCoverage float64
}

func (o *coverageOptions) registerCoverage(fs *pflag.FlagSet) {
	fs.BoolVar(&o.coverage, "coverage", false, "report which lines of the policy the cases and its *_test.rego tests exercised (OPA's own coverage, as opa test --coverage)")
	fs.Float64Var(&o.minCoverage, "min-coverage", 0, "with --coverage: fail (exit 1) when less than this percentage of the policy's lines is covered")
}

// coverageReport is what --coverage found, in OPA's terms: a line is
// covered when an expression on it was evaluated.
type coverageReport struct {
	// Coverage is the percentage of the policy's lines covered.
	Coverage     float64                  `json:"coverage"`
	Covered      int                      `json:"covered_lines"`
	NotCovered   int                      `json:"not_covered_lines"`
	Files        map[string]*coverageFile `json:"files"`
	MinCoverage  float64                  `json:"min_coverage,omitempty"`
	BelowMinimum bool                     `json:"below_minimum,omitempty"`
}

type coverageFile struct {
	Coverage   float64  `json:"coverage"`
	NotCovered []string `json:"not_covered,omitempty"` // line ranges, "12" or "12-14"
}

// coverageEvaluator evaluates with OPA's coverage tracer, so that the cases
// count toward the report.
type coverageEvaluator struct {
	e   *policy.Engine
	cov *cover.Cover
}

func (c coverageEvaluator) Eval(ctx context.Context, input ast.Value) (policy.Decision, error) {
	return c.e.EvalWith(ctx, input, rego.EvalQueryTracer(c.cov))
}

// Plan names the engine's decision, so that the middleware names it, and
// nothing else: the whole input is built, as coverage wants every field.
func (c coverageEvaluator) Plan() (policy.Plan, error) {
	return policy.Plan{Decision: c.e.DecisionRef().String()}, nil
}

// loadRegoTests runs the policy's *_test.rego tests in its Rego version,
// recording coverage into cov when it is not nil.
func loadRegoTests(ctx context.Context, paths []string, version ast.RegoVersion, cov *cover.Cover) ([]*tester.Result, error) {
	modules, store, err := tester.LoadWithRegoVersion(paths, nil, version)
	if err != nil {
		return nil, err
	}
	r := tester.NewRunner().SetStore(store).SetModules(modules).SetDefaultRegoVersion(version)
	if cov != nil {
		r = r.SetCoverageQueryTracer(cov)
	}
	txn, err := store.NewTransaction(ctx)
	if err != nil {
		return nil, err
	}
	defer store.Abort(ctx, txn)
	ch, err := r.RunTests(ctx, txn)
	if err != nil {
		return nil, err
	}
	var out []*tester.Result
	for res := range ch {
		out = append(out, res)
	}
	return out, nil
}

// coverageOf reports cov over the policy's modules (its tests left out).
func (o *checkOptions) coverageOf(cov *cover.Cover) (*coverageReport, error) {
	p, err := policy.Loader{RegoVersion: o.astRegoVersion()}.LoadFiles(o.policies...)
	if err != nil {
		return nil, err
	}
	// The loader keys modules by a store path (no leading slash); the
	// coverage tracer records the file of each location.
	modules := make(map[string]*ast.Module, len(p.Modules))
	for name, m := range p.Modules {
		if m.Package != nil && m.Package.Location != nil && m.Package.Location.File != "" {
			name = m.Package.Location.File
		}
		modules[name] = m
	}
	r := cov.Report(modules)
	rep := &coverageReport{Coverage: r.Coverage, Covered: r.CoveredLines, NotCovered: r.NotCoveredLines,
		Files: map[string]*coverageFile{}, MinCoverage: o.minCoverage}
	if r.CoveredLines+r.NotCoveredLines == 0 {
		rep.Coverage = 100
	}
	for name, f := range r.Files {
		cf := &coverageFile{Coverage: f.Coverage}
		if f.CoveredLines+f.NotCoveredLines == 0 {
			cf.Coverage = 100
		}
		cf.NotCovered = lineRanges(f.NotCovered)
		rep.Files[name] = cf
	}
	rep.BelowMinimum = rep.Coverage < o.minCoverage
	return rep, nil
}

// lineRanges lists the lines of OPA's ranges once each, in order, with
// consecutive lines joined ("12-14"): OPA gives a range per expression, so
// two expressions on one line would otherwise list it twice.
func lineRanges(ranges []cover.Range) []string {
	rows := map[int]bool{}
	for _, rng := range ranges {
		for row := rng.Start.Row; row <= rng.End.Row; row++ {
			rows[row] = true
		}
	}
	var out []string
	sorted := slices.Sorted(maps.Keys(rows))
	for i := 0; i < len(sorted); {
		j := i
		for j+1 < len(sorted) && sorted[j+1] == sorted[j]+1 {
			j++
		}
		if i == j {
			out = append(out, fmt.Sprint(sorted[i]))
		} else {
			out = append(out, fmt.Sprintf("%d-%d", sorted[i], sorted[j]))
		}
		i = j + 1
	}
	return out
}

func (c *coverageReport) writeText(w io.Writer) {
	fmt.Fprintf(w, "coverage: %.1f%% of lines (%d of %d), counted as opa test --coverage does\n", c.Coverage, c.Covered, c.Covered+c.NotCovered)
	for _, name := range slices.Sorted(maps.Keys(c.Files)) {
		f := c.Files[name]
		line := fmt.Sprintf("  %s: %.1f%%", name, f.Coverage)
		if len(f.NotCovered) > 0 {
			line += ", not covered: lines " + strings.Join(f.NotCovered, ", ")
		}
		fmt.Fprintln(w, line)
	}
	if c.BelowMinimum {
		fmt.Fprintf(w, "coverage %.1f%% is below --min-coverage %.1f%%\n", c.Coverage, c.MinCoverage)
	}
}

// junitCase is the report as one test case, failing below the minimum.
func (c *coverageReport) junitCase() junitCase {
	jc := junitCase{Name: fmt.Sprintf("coverage %.1f%%", c.Coverage), Classname: "coverage", Time: junitSeconds(0)}
	if c.BelowMinimum {
		jc.Failure = &junitFailure{Message: fmt.Sprintf("coverage %.1f%% is below %.1f%%", c.Coverage, c.MinCoverage),
			Text: string(util.MustMarshalJSON(c.Files))}
	}
	return jc
}
