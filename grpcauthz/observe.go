package grpcauthz

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/internal/logmask"
	"github.com/regoguard/regoguard/policy"
)

// metrics are the interceptors' Prometheus metrics. A nil *metrics counts
// nothing.
type metrics struct {
	latency  prometheus.Histogram
	errors   prometheus.Counter
	outcomes map[string]prometheus.Counter
}

var outcomes = []string{"allow", "deny", "error", "canceled", "unauthenticated", "invalid", "skipped"}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	calls := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "regoguard_grpc_calls_total",
		Help: "gRPC calls seen by the interceptors, by outcome: allow, deny, error, canceled (the client went away during the decision), unauthenticated, invalid (bad method name or message), skipped.",
	}, []string{"outcome"})
	m := &metrics{
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "regoguard_grpc_decision_duration_seconds",
			Help:    "Time to evaluate one policy decision for a gRPC call.",
			Buckets: []float64{5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 1e-2, 0.1, 1},
		}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "regoguard_grpc_evaluator_errors_total",
			Help: "Decisions for gRPC calls that failed (the call was refused with Unavailable).",
		}),
		outcomes: map[string]prometheus.Counter{},
	}
	for _, c := range []prometheus.Collector{calls, m.latency, m.errors} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("grpcauthz: registering metrics: %w", err)
		}
	}
	for _, o := range outcomes {
		m.outcomes[o] = calls.WithLabelValues(o)
	}
	return m, nil
}

func (m *metrics) count(outcome string) {
	if m != nil {
		m.outcomes[outcome].Inc()
	}
}

// loggedInput is the input as decision events record it: with its
// credentials masked (package logmask), unless keep.
func loggedInput(input ast.Value, keep bool) ast.Value {
	if keep || input == nil {
		return input
	}
	return logmask.Input(input)
}

// record counts, logs and ships one decision. It is the one place every
// decision passes: where a trace span would be annotated.
func (i *Interceptor) record(ctx context.Context, call Call, id *authn.Identity, input ast.Value, d policy.Decision, err error, start time.Time, elapsed time.Duration) {
	outcome := "deny"
	switch {
	case err != nil && ctx.Err() == context.Canceled:
		outcome = "canceled"
	case err != nil:
		outcome = "error"
	case d.Allow:
		outcome = "allow"
	}
	if i.metrics != nil {
		i.metrics.count(outcome)
		i.metrics.latency.Observe(elapsed.Seconds())
		if outcome == "error" {
			i.metrics.errors.Inc()
		}
	}
	level := i.logLevel
	if outcome == "error" {
		level = slog.LevelError
	}
	if i.logger.Enabled(ctx, level) {
		attrs := []slog.Attr{
			slog.String("decision_id", d.ID),
			slog.String("outcome", outcome),
			slog.String("revision", d.Revision),
			slog.String("grpc_method", call.FullMethod),
			slog.String("user", id.String()),
			slog.Duration("latency", elapsed),
		}
		if err != nil {
			attrs = append(attrs, slog.String("error", err.Error()))
		}
		i.logger.LogAttrs(ctx, level, "decision", attrs...)
	}
	if i.cfg.DecisionLogger != nil {
		ev := policy.DecisionEvent{
			ID: d.ID, Path: i.decisionRef, Input: loggedInput(input, i.cfg.KeepCredentialsInDecisionLogs), Result: d.Result, Revision: d.Revision, Bundles: d.Bundles,
			Timestamp: start, Duration: elapsed, Err: err,
		}
		if lerr := i.cfg.DecisionLogger.LogDecision(ctx, ev); lerr != nil && !errors.Is(lerr, policy.ErrDecisionDropped) {
			i.logger.WarnContext(ctx, "decision log", "error", lerr, "decision_id", d.ID)
		}
	}
}
