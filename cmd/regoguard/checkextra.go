package main

import (
	"context"
	"log/slog"
	"strconv"

	"github.com/spf13/pflag"

	"github.com/regoguard/regoguard/authz"
)

// checkExtras are check's flags for replaying decision logs, failing on
// changed decisions and measuring coverage.
type checkExtras struct {
	replay       string
	failOnChange bool
}

func (o *checkExtras) registerExtras(fs *pflag.FlagSet) {
	fs.StringVar(&o.replay, "replay", "", "re-decide the decision events of FILE (serve --decision-log-file, OPA console decision logs or a collector upload; gzip or not) with --policy and report what changes")
	fs.BoolVar(&o.failOnChange, "fail-on-change", false, "with --diff or --replay: exit 1 when a decision changes")
}

// checkEvaluator is what judges the cases: the policy in paths, or, with
// --opa-url and no --policy, the remote OPA (as serve would ask it).
func (o *checkOptions) checkEvaluator(ctx context.Context, paths []string, logger *slog.Logger) (authz.Evaluator, error) {
	if len(paths) == 0 {
		r, err := o.remote()
		if err != nil {
			return nil, err
		}
		if r != nil {
			return r, nil
		}
	}
	return o.loadEngine(ctx, paths, logger)
}

// changes counts the results whose decision --diff changes.
func changes(results []checkResult) int {
	n := 0
	for _, r := range results {
		if r.Changed {
			n++
		}
	}
	return n
}

// junitSeconds formats a duration in decimal seconds, as JUnit readers
// expect: never Go's exponent form (1.2e-05).
func junitSeconds(s float64) string { return strconv.FormatFloat(s, 'f', 6, 64) }
