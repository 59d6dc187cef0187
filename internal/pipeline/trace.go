package pipeline

import (
	"context"
	"fmt"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/regoguard/regoguard/policy"
)

// Span and attribute names of a decision, alike for every front end so
// that one dashboard reads them all.
const (
	spanDecision = "regoguard.decision"

	attrRevision   = attribute.Key("regoguard.revision")
	attrAllowed    = attribute.Key("regoguard.allowed")
	attrDecisionID = attribute.Key("regoguard.decision_id")
	attrEvaluator  = attribute.Key("regoguard.evaluator")
)

// endDecisionSpan ends the span of one decision with the decision ID, the
// revision, whether it allowed, and err, if any, as an exception event and
// an error status.
func endDecisionSpan(span trace.Span, d policy.Decision, err error) {
	span.SetAttributes(
		attrDecisionID.String(d.ID),
		attrRevision.String(d.Revision),
		attrAllowed.Bool(err == nil && d.Allow),
	)
	if err != nil {
		RecordError(span, err)
		span.SetStatus(codes.Error, "no policy decision could be made")
	}
	span.End()
}

// TraceText is s made valid UTF-8 for a span. A client chooses the bytes of
// its path (/docs/%ff decodes to a lone 0xff) and of what an error may quote,
// and OTLP refuses to marshal a string that is not UTF-8: one such value
// made the exporter drop its whole batch, every other request's spans
// with it.
func TraceText(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }

// RecordError records err on span as Span.RecordError does, with its
// message made valid UTF-8 ([TraceText]).
func RecordError(span trace.Span, err error) {
	span.AddEvent("exception", trace.WithAttributes(
		attribute.String("exception.type", fmt.Sprintf("%T", err)),
		attribute.String("exception.message", TraceText(err.Error())),
	))
}

// An EvalTrace holds hooks that evaluators call while they make one
// decision. Package authz publishes it as authz.EvalTrace.
type EvalTrace struct {
	// Fallback is called each time a Fallback asks its Secondary, with
	// the Primary's error.
	Fallback func(primaryErr error)
}

type evalTraceKey struct{}

// WithEvalTrace returns a copy of ctx that carries t.
func WithEvalTrace(ctx context.Context, t *EvalTrace) context.Context {
	return context.WithValue(ctx, evalTraceKey{}, t)
}

// ContextEvalTrace returns the trace ctx carries, or nil.
func ContextEvalTrace(ctx context.Context) *EvalTrace {
	t, _ := ctx.Value(evalTraceKey{}).(*EvalTrace)
	return t
}
