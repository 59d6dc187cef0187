// Package prommetrics exports regoguard's metrics to Prometheus: the
// middleware's counts and decision latencies (an [authz.Metrics]), and the
// state of a policy engine, a decision cache and a shadow policy, read when
// scraped. Everything it returns is a [prometheus.Collector]: register it
// with the registry the rest of the process uses.
//
// The packages policy, authn and authz import no Prometheus package, so
// that a program that does not export Prometheus metrics does not pay for
// the client library and its dependencies; this package is where they are
// paid for. The metric names, labels and help texts are the ones
// `regoguard serve` exports at /metrics (see the README's table).
//
// A bundles.Manager's collector stays in package bundles
// (bundles.Config.Registerer, Manager.Collector): importing it here would
// link OPA's bundle plugins into every program that uses this package.
package prommetrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/regoguard/regoguard/authz"
)

// MiddlewareOptions configures [NewMiddleware].
type MiddlewareOptions struct {
	// DryRun adds regoguard_dry_run_would_refuse_total, for a middleware
	// whose authz.Config.DryRun is set. Without it, Middleware.WouldRefuse
	// counts nothing.
	DryRun bool
	// GRPC names the metrics for the gRPC interceptors (give the Middleware
	// as grpcauthz.Config.Metrics): regoguard_grpc_calls_total{outcome},
	// regoguard_grpc_decision_duration_seconds,
	// regoguard_grpc_evaluator_errors_total and regoguard_grpc_fallbacks_total,
	// apart from the HTTP middleware's, with the outcome "invalid" (a bad
	// method name or message) besides the HTTP outcomes.
	GRPC bool
}

// Middleware is an [authz.Metrics] that keeps the middleware's metrics
// (give it as authz.Config.Metrics) and a [prometheus.Collector] that
// exports them (register it):
//
//   - regoguard_requests_total{outcome}: requests by [authz.Outcome], every
//     outcome present from the start;
//   - regoguard_decision_duration_seconds: a histogram of decision times;
//   - regoguard_evaluator_errors_total: decisions that failed (503);
//   - regoguard_fallbacks_total: decisions asked of a Fallback's Secondary;
//   - regoguard_dry_run_would_refuse_total, with MiddlewareOptions.DryRun.
//
// Counting a request allocates nothing. One Middleware serves any number
// of authz.Middleware values, which then count together.
type Middleware struct {
	requestsVec *prometheus.CounterVec
	requests    []prometheus.Counter // by authz.Outcome
	latency     prometheus.Histogram
	errors      prometheus.Counter
	fallbacks   prometheus.Counter
	wouldRefuse prometheus.Counter // nil without DryRun
}

var _ authz.Metrics = (*Middleware)(nil)

// NewMiddleware returns the middleware's metrics, all at zero.
func NewMiddleware(opts MiddlewareOptions) *Middleware {
	n := names{
		requests: "regoguard_requests_total", requestsHelp: "Requests seen by the middleware, by outcome: allow, deny, error, canceled (the client went away during the decision), unauthenticated, skipped.",
		latency: "regoguard_decision_duration_seconds", latencyHelp: "Time to evaluate one policy decision.",
		errors: "regoguard_evaluator_errors_total", errorsHelp: "Decisions that failed (the request was refused with 503).",
		fallbacks: "regoguard_fallbacks_total",
	}
	if opts.GRPC {
		n = names{
			requests: "regoguard_grpc_calls_total", requestsHelp: "gRPC calls seen by the interceptors, by outcome: allow, deny, error, canceled (the client went away during the decision), unauthenticated, invalid (bad method name or message), skipped.",
			latency: "regoguard_grpc_decision_duration_seconds", latencyHelp: "Time to evaluate one policy decision for a gRPC call.",
			errors: "regoguard_grpc_evaluator_errors_total", errorsHelp: "Decisions for gRPC calls that failed (the call was refused with Unavailable).",
			fallbacks: "regoguard_grpc_fallbacks_total",
		}
	}
	m := &Middleware{
		requestsVec: prometheus.NewCounterVec(prometheus.CounterOpts{Name: n.requests, Help: n.requestsHelp}, []string{"outcome"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    n.latency,
			Help:    n.latencyHelp,
			Buckets: []float64{5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 1e-2, 0.1, 1},
		}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{Name: n.errors, Help: n.errorsHelp}),
		fallbacks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: n.fallbacks,
			Help: "Decisions asked of the secondary evaluator because the primary failed.",
		}),
	}
	// Resolve the labelled counters once, not per request. The HTTP
	// middleware never reports OutcomeInvalid: it has no series.
	outcomes := authz.Outcomes() // every outcome, in order: 0, 1, 2...
	m.requests = make([]prometheus.Counter, len(outcomes))
	for _, o := range outcomes {
		if o == authz.OutcomeInvalid && !opts.GRPC {
			continue
		}
		m.requests[o] = m.requestsVec.WithLabelValues(o.String())
	}
	if opts.DryRun {
		m.wouldRefuse = prometheus.NewCounter(prometheus.CounterOpts{
			Name: "regoguard_dry_run_would_refuse_total",
			Help: "Requests let through by --dry-run that the policy refused or could not decide on.",
		})
	}
	return m
}

// names are the metric names and help texts of one front end.
type names struct {
	requests, requestsHelp, latency, latencyHelp, errors, errorsHelp, fallbacks string
}

// Request implements [authz.Metrics].
func (m *Middleware) Request(o authz.Outcome) {
	if int(o) < len(m.requests) && m.requests[o] != nil {
		m.requests[o].Inc()
	}
}

// Decision implements [authz.Metrics].
func (m *Middleware) Decision(o authz.Outcome, elapsed time.Duration) {
	m.latency.Observe(elapsed.Seconds())
	if o == authz.OutcomeError {
		m.errors.Inc()
	}
}

// Fallback implements [authz.Metrics].
func (m *Middleware) Fallback() { m.fallbacks.Inc() }

// WouldRefuse implements [authz.Metrics].
func (m *Middleware) WouldRefuse() {
	if m.wouldRefuse != nil {
		m.wouldRefuse.Inc()
	}
}

func (m *Middleware) collectors() []prometheus.Collector {
	cs := []prometheus.Collector{m.requestsVec, m.latency, m.errors, m.fallbacks}
	if m.wouldRefuse != nil {
		cs = append(cs, m.wouldRefuse)
	}
	return cs
}

// Describe implements [prometheus.Collector].
func (m *Middleware) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.collectors() {
		c.Describe(ch)
	}
}

// Collect implements [prometheus.Collector].
func (m *Middleware) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.collectors() {
		c.Collect(ch)
	}
}
