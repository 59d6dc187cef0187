package authz

import (
	"context"

	"github.com/regoguard/regoguard/internal/pipeline"
	"github.com/regoguard/regoguard/policy"
)

// A Planner is an [Evaluator] that says, at one moment, which revision it
// decides with and what its decisions read of the input (see [policy.Plan]).
//
// With a Planner, the middleware builds for each request only the input
// fields the plan reads, then asks the Planner's own Eval: a wrapper's Eval
// is always what runs. Should a reload come in between (the decision names
// another revision than the plan, and a new plan confirms the change), the
// middleware builds the whole input and asks again, so that no revision
// judges an input built for another's fields. A [Cache] keys each decision
// on the plan's RevisionFields and on its revision, so that a decision is
// never answered for a revision that did not make it.
//
// What a plan promises, and what relies on it:
//   - Fields: every input field an evaluation may read; the middleware
//     builds no other.
//   - Revision and RevisionFields: a decision whose Decision.Revision equals
//     Revision depends only on the RevisionFields of the input; a Cache keys
//     on both and keeps no other decision.
//   - Revision "": no known revision decides (a remote OPA), so no decision
//     may be kept; a Cache keeps none.
//   - Decision: the decision document named in decision logs.
//
// Plan returns an error when the evaluator cannot decide at all (such as
// policy.ErrNoPolicy before an engine's first load); Eval then fails too.
//
// *policy.Engine, [Cache], [Fallback] and [Remote] are Planners; the
// middleware and a Cache find this through the interface, never by looking
// for a concrete type. A wrapper of your own (a recorder, a tracer) that
// embeds one, or forwards its Plan ([PlanOf]), keeps pruning and caching
// working, and its own Eval still runs: embedding cannot skip it.
type Planner interface {
	Evaluator
	Plan() (policy.Plan, error)
}

// PlanOf returns eval's plan when eval is a [Planner]; for any other
// evaluator, a plan with no known revision ("") that may read the whole
// input, which is all that can be assumed of it. Wrappers use it to forward
// [Planner].
func PlanOf(eval Evaluator) (policy.Plan, error) {
	if p, ok := eval.(Planner); ok {
		return p.Plan()
	}
	return policy.Plan{}, nil
}

// An EvalTrace holds hooks that evaluators call while they make one
// decision, for metrics and traces, in the manner of net/http/httptrace:
// attach one to the context given to Eval with [WithEvalTrace]. Every front
// end attaches its own when it has metrics (counting fallbacks), so that it
// never needs to modify the evaluator it was given. Its one hook,
// Fallback(primaryErr error), is called each time a [Fallback] asks its
// Secondary, with the Primary's error.
type EvalTrace = pipeline.EvalTrace

// WithEvalTrace returns a copy of ctx that carries trace. It replaces any
// trace ctx already carries.
func WithEvalTrace(ctx context.Context, trace *EvalTrace) context.Context {
	return pipeline.WithEvalTrace(ctx, trace)
}

// ContextEvalTrace returns the trace ctx carries, or nil.
func ContextEvalTrace(ctx context.Context) *EvalTrace { return pipeline.ContextEvalTrace(ctx) }
