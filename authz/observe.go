package authz

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/policy"
)

// metrics are the middleware's Prometheus metrics. A nil *metrics counts
// nothing, so the hot path needs no check.
type metrics struct {
	decisions *prometheus.CounterVec
	latency   prometheus.Histogram
	errors    prometheus.Counter
	fallbacks prometheus.Counter
	outcomes  map[string]prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "regoguard_requests_total",
			Help: "Requests seen by the middleware, by outcome: allow, deny, error, canceled (the client went away during the decision), unauthenticated, skipped.",
		}, []string{"outcome"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "regoguard_decision_duration_seconds",
			Help:    "Time to evaluate one policy decision.",
			Buckets: []float64{5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 1e-2, 0.1, 1},
		}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "regoguard_evaluator_errors_total",
			Help: "Decisions that failed (the request was refused with 503).",
		}),
		fallbacks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "regoguard_fallbacks_total",
			Help: "Decisions asked of the secondary evaluator because the primary failed.",
		}),
		outcomes: map[string]prometheus.Counter{},
	}
	for _, c := range []prometheus.Collector{m.decisions, m.latency, m.errors, m.fallbacks} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("authz: registering metrics: %w", err)
		}
	}
	// Resolve the labelled counters once, not per request.
	for _, o := range []string{"allow", "deny", "error", "canceled", "unauthenticated", "skipped"} {
		m.outcomes[o] = m.decisions.WithLabelValues(o)
	}
	return m, nil
}

func (m *metrics) count(outcome string) {
	if m != nil {
		m.outcomes[outcome].Inc()
	}
}

// record counts, logs and ships one decision.
func (m *Middleware) record(r *http.Request, id *authn.Identity, input ast.Value, d policy.Decision, err error, start time.Time, elapsed time.Duration) {
	ctx := r.Context()
	if m.accessLog != nil {
		noteDecision(ctx, id.String(), d.ID)
	}
	outcome := "deny"
	switch {
	case err != nil && abandoned(r):
		outcome = "canceled"
	case err != nil:
		outcome = "error"
	case d.Allow:
		outcome = "allow"
	}
	if m.metrics != nil {
		m.metrics.count(outcome)
		m.metrics.latency.Observe(elapsed.Seconds())
		if outcome == "error" {
			m.metrics.errors.Inc()
		}
	}
	level := m.logLevel
	if outcome == "error" {
		level = slog.LevelError
	}
	if m.logger.Enabled(ctx, level) {
		attrs := []slog.Attr{
			slog.String("decision_id", d.ID),
			slog.String("outcome", outcome),
			slog.String("revision", d.Revision),
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.String("user", id.String()),
			slog.Duration("latency", elapsed),
		}
		if err != nil {
			attrs = append(attrs, slog.String("error", err.Error()))
		}
		if m.cfg.LogInput {
			attrs = append(attrs, slog.Any("input", maskInput(input, m.cfg.LogInputMask)))
		}
		m.logger.LogAttrs(ctx, level, "decision", attrs...)
	}
	if m.cfg.DecisionLogger != nil {
		ev := policy.DecisionEvent{
			ID: d.ID, Path: m.decisionRef, Input: input, Result: d.Result, Revision: d.Revision, Bundles: d.Bundles,
			Timestamp: start, Duration: elapsed, Err: err,
		}
		if lerr := m.cfg.DecisionLogger.LogDecision(ctx, ev); lerr != nil {
			m.logger.WarnContext(ctx, "decision log", "error", lerr, "decision_id", d.ID)
		}
	}
}

// abandoned reports whether the client went away (or the server is shutting
// the request down): an evaluation stopped for that is no evaluator error.
func abandoned(r *http.Request) bool { return r.Context().Err() != nil }

// maskInput returns the input as JSON-compatible values without the fields
// at the given slash-separated paths.
func maskInput(input ast.Value, mask []string) any {
	v, err := ast.JSON(input)
	if err != nil {
		return "unloggable input: " + err.Error()
	}
	for _, p := range mask {
		removePath(v, strings.Split(strings.Trim(p, "/"), "/"))
	}
	return v
}

func removePath(v any, path []string) {
	obj, ok := v.(map[string]any)
	if !ok || len(path) == 0 {
		return
	}
	if len(path) == 1 {
		delete(obj, path[0])
		return
	}
	removePath(obj[path[0]], path[1:])
}

// idSource makes decision IDs that are unique across processes (a random
// prefix) and cheap per request (a counter), instead of reading the system's
// random source for every decision.
type idSource struct {
	prefix string
	n      atomic.Uint64
}

func newIDSource() *idSource {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return &idSource{prefix: hex.EncodeToString(b) + "-"}
}

func (s *idSource) next() string {
	// One allocation: the prefix and the counter are put together on the
	// stack and copied once.
	var buf [48]byte
	return string(strconv.AppendUint(append(buf[:0], s.prefix...), s.n.Add(1), 36))
}
