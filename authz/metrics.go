package authz

import (
	"time"

	"github.com/regoguard/regoguard/internal/pipeline"
)

// Metrics receives what a front end observes, to count it: requests (or
// gRPC calls) by outcome, how long decisions take, fallbacks, and what a
// dry run lets through. It is the one reporting interface of every front
// end: the HTTP [Middleware] (Config.Metrics), the gRPC interceptors
// (grpcauthz.Config.Metrics). Package prommetrics implements it for
// Prometheus; any other metrics system can implement it in a few lines.
//
// The middleware calls it on the request path, from many goroutines at
// once: an implementation must be safe for concurrent use and must not
// block. With Config.Metrics nil the middleware counts nothing and pays
// one nil check per call site.
//
// State that is read rather than counted stays with its owner and is
// collected when scraped: policy.Engine.Status, [Cache.Stats],
// [Shadow.Stats].
type Metrics interface {
	// Request counts a request (or call) by what became of it. It is
	// called at most once per request. Not counted by the HTTP middleware: requests refused because the path is
	// not in canonical form or the body cannot go into the input (400,
	// 413, 415), and, with DisableAuthorization, requests that passed
	// authentication.
	Request(Outcome)
	// Decision records one policy decision: its outcome (OutcomeAllow,
	// OutcomeDeny, OutcomeError or OutcomeCanceled) and how long the
	// evaluator took. It is called before the same request's Request.
	Decision(Outcome, time.Duration)
	// Fallback counts a decision asked of a [Fallback]'s Secondary because
	// its Primary failed, wherever the Fallback sits in the evaluator (behind
	// a [Cache], for one): the middleware hears of it through an
	// [EvalTrace].
	Fallback()
	// WouldRefuse counts a request that Config.DryRun let through although
	// the policy refused it or no decision could be made.
	WouldRefuse()
}

// Outcome is what became of a request the middleware handled (or a call a
// gRPC interceptor handled), as reported to [Metrics]. Every front end
// shares it.
type Outcome = pipeline.Outcome

// The outcomes of a request. Their String forms are the values of the
// outcome label of regoguard_requests_total.
const (
	// OutcomeAllow: the policy allowed the request.
	OutcomeAllow = pipeline.OutcomeAllow
	// OutcomeDeny: the policy refused the request (with DryRun, it was
	// let through and also counted by Metrics.WouldRefuse).
	OutcomeDeny = pipeline.OutcomeDeny
	// OutcomeError: no decision could be made (the evaluator failed, the
	// input could not be built, the identity provider could not be
	// reached): the request was refused with 503.
	OutcomeError = pipeline.OutcomeError
	// OutcomeCanceled: the client went away during the decision.
	OutcomeCanceled = pipeline.OutcomeCanceled
	// OutcomeUnauthenticated: no credential where one is needed, a bad
	// one, or several: the request was refused with 401.
	OutcomeUnauthenticated = pipeline.OutcomeUnauthenticated
	// OutcomeSkipped: a Skip rule or the CORS pre-flight rule exempted the
	// request.
	OutcomeSkipped = pipeline.OutcomeSkipped
	// OutcomeInvalid: a gRPC call refused before any decision because its
	// method name or its message cannot go into the input. The HTTP
	// middleware does not count such requests (see Metrics.Request).
	OutcomeInvalid = pipeline.OutcomeInvalid
)

// Outcomes returns every outcome, in order, for an implementation of
// [Metrics] that prepares one counter per outcome.
func Outcomes() []Outcome { return pipeline.Outcomes() }

// count reports a request's outcome to the metrics, if any.
func (m *Middleware) count(o Outcome) { m.pipe.Count(o) }
