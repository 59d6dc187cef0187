package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"

	"github.com/regoguard/regoguard/authz"
	"github.com/regoguard/regoguard/bundles"
	"github.com/regoguard/regoguard/policy"
	"github.com/regoguard/regoguard/prommetrics"
)

// rolloutOptions are serve's flags for shipping a policy change safely: a
// shadow (candidate) policy judged beside the live one, and dry-run.
type rolloutOptions struct {
	shadowPolicies []string
	shadowBundles  []string
	shadowSample   float64
	shadowQueue    int
	shadowBytes    int64
	dryRun         bool
}

func (o *rolloutOptions) register(fs *pflag.FlagSet) {
	fs.StringArrayVar(&o.shadowPolicies, "shadow-policy", nil, "candidate policy files or directories (repeatable), judged beside the live policy without changing any answer; disagreements are counted in /metrics and decision logs")
	fs.StringArrayVar(&o.shadowBundles, "shadow-bundle", nil, "candidate policy as an OPA bundle (directory, .tar.gz or URL; repeatable), as --shadow-policy")
	fs.Float64Var(&o.shadowSample, "shadow-sample", 1, "fraction of decisions the shadow policy judges too, in (0, 1]")
	fs.IntVar(&o.shadowQueue, "shadow-queue", 1024, "decisions waiting for the shadow policy; beyond it comparisons are skipped (counted), never waited for")
	fs.Int64Var(&o.shadowBytes, "shadow-queue-bytes", authz.DefaultShadowQueueBytes, "memory the inputs waiting for the shadow policy may hold together (estimated); beyond it comparisons are skipped (counted)")
	fs.BoolVar(&o.dryRun, "dry-run", false, "let through every request the policy would refuse, logging and counting it as \"would have refused\" (authentication is still enforced)")
}

func (o *rolloutOptions) shadowing() bool {
	return len(o.shadowPolicies) > 0 || len(o.shadowBundles) > 0
}

// shadowed puts live behind a Shadow trying the candidate policy, when one is
// given; stop finishes the queued comparisons.
func (o *serveOptions) shadowed(ctx context.Context, live authz.Evaluator, dl *bundles.DecisionLogger, reg prometheus.Registerer, logger *slog.Logger) (authz.Evaluator, func(), error) {
	if !o.shadowing() {
		return live, func() {}, nil
	}
	if live == nil {
		return nil, nil, configErrorf("--shadow-policy and --shadow-bundle need a live policy (not --no-authz)")
	}
	if len(o.shadowPolicies) > 0 && len(o.shadowBundles) > 0 {
		return nil, nil, configErrorf("give --shadow-policy or --shadow-bundle, not both")
	}
	if o.shadowSample <= 0 || o.shadowSample > 1 {
		return nil, nil, configErrorf("--shadow-sample: %v is not a fraction in (0, 1]", o.shadowSample)
	}
	quiet := logger.With("policy", "shadow")
	var candidate *policy.Engine
	var err error
	if len(o.shadowPolicies) > 0 {
		if candidate, err = o.loadEngine(ctx, o.shadowPolicies, quiet); err != nil {
			return nil, nil, configErrorf("--shadow-policy: %w", err)
		}
	} else {
		if candidate, err = policy.New(ctx, o.engineConfig(quiet), nil); err != nil {
			return nil, nil, err
		}
		b := o.bundleOptions
		// The candidate's bundles are not persisted: the live ones are, in
		// the same directory and perhaps under the same names.
		b.bundles, b.persistDir = o.shadowBundles, ""
		m, err := b.manager(candidate, nil, prometheus.WrapRegistererWithPrefix("shadow_", reg), quiet)
		if err != nil {
			return nil, nil, configErrorf("--shadow-bundle: %w", err)
		}
		if err := m.Start(ctx); err != nil {
			// A candidate that is not there yet judges nothing; the live
			// policy serves regardless.
			logger.Warn("shadow bundle not activated yet; shadow comparisons fail until it is", "error", err)
		}
		go func() {
			<-ctx.Done()
			stopWithin(m.Stop, o.shutdownTimeout)
		}()
	}
	cfg := authz.ShadowConfig{Candidate: candidate, Sample: o.shadowSample, Queue: o.shadowQueue, QueueBytes: o.shadowBytes, Logger: logger}
	if dl != nil {
		cfg.DecisionLogger = dl
	}
	cfg.KeepCredentialsInDecisionLogs = o.logKeepCreds
	s, err := authz.NewShadow(live, cfg)
	if err != nil {
		return nil, nil, configErrorf("shadow policy: %w", err)
	}
	reg.MustRegister(prommetrics.NewShadowCollector(s))
	logger.Info("shadow policy: judged beside the live one, never enforced", "revision", candidate.Revision(), "sample", o.shadowSample)
	return s, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Close(sctx); err != nil {
			logger.Warn("shadow comparisons left unfinished at shutdown", "error", err)
		}
	}, nil
}
