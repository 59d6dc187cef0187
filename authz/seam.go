package authz

import (
	"context"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/regoguard/regoguard/internal/pipeline"
	"github.com/regoguard/regoguard/policy"
)

// A Snapshotter is an [Evaluator] that can fix the policy revision it serves:
// its Snapshot evaluates with one revision and tells which input fields that
// revision reads (see [policy.Snapshot]).
//
// With a Snapshotter, the middleware builds for each request only the input
// fields the snapshot reads and evaluates with that same snapshot, so that
// the fields and the policy that judges them match even across a reload;
// and a [Cache] keys each decision on those fields and on the revision, so
// that a decision is never answered for a revision that did not make it.
//
// What a snapshot promises, and what relies on it:
//   - Fields: every input field an evaluation may read; the middleware
//     builds no other.
//   - Revision and RevisionFields: a decision whose Decision.Revision equals
//     Revision() depends only on the RevisionFields() of the input; a Cache
//     keys on both and keeps no other decision.
//   - Revision "": no known revision decides (a remote OPA), so no decision
//     may be kept; a Cache keeps none.
//
// Snapshot returns an error when the evaluator cannot decide at all (such
// as policy.ErrNoPolicy before an engine's first load); Eval then fails too.
//
// *policy.Engine, [Cache], [Fallback] and [Remote] are Snapshotters; the
// middleware and a Cache find this through the interface, never by looking
// for a concrete type. A wrapper of your own (a recorder, a tracer, a
// shadow evaluator) keeps pruning, revision checks and caching working when
// its Snapshot wraps the inner evaluator's ([SnapshotOf]), as in the
// example. Beware of embedding: a struct that embeds a *policy.Engine to
// count or alter its evaluations inherits the engine's Snapshot, and the
// middleware then evaluates with the engine's snapshots, past the wrapper's
// own Eval.
type Snapshotter interface {
	Evaluator
	Snapshot() (policy.Snapshot, error)
}

// SnapshotOf returns eval's snapshot when eval is a [Snapshotter]; for any
// other evaluator, a snapshot that evaluates with eval itself, has no known
// revision ("") and may read the whole input, which is all that can be
// assumed of it. Wrappers use it to forward [Snapshotter].
func SnapshotOf(eval Evaluator) (policy.Snapshot, error) {
	if s, ok := eval.(Snapshotter); ok {
		return s.Snapshot()
	}
	return unpinned{eval}, nil
}

// unpinned is the snapshot of an evaluator that cannot fix its revision.
type unpinned struct{ Evaluator }

func (unpinned) Revision() string                    { return "" }
func (unpinned) Fields() *policy.InputFields         { return nil }
func (unpinned) RevisionFields() *policy.InputFields { return nil }

// A DecisionNamer tells which decision document it evaluates, such as
// data.httpapi.authz. The middleware names it in decision logs
// (policy.DecisionEvent.Path). *policy.Engine, [Remote], and a [Cache] or a
// [Fallback] in front of one, are DecisionNamers.
type DecisionNamer interface {
	DecisionRef() ast.Ref
}

// decisionRef is eval's decision reference, or nil when it does not say.
func decisionRef(eval Evaluator) ast.Ref {
	if n, ok := eval.(DecisionNamer); ok {
		return n.DecisionRef()
	}
	return nil
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
