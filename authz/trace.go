package authz

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/internal/pipeline"
	"github.com/regoguard/regoguard/policy"
)

// tracerName names the instrumentation scope of the middleware's spans.
const tracerName = "github.com/regoguard/regoguard/authz"

// Span and attribute names, as a trace backend shows them.
const (
	spanRequest      = "regoguard.request"
	spanAuthenticate = "regoguard.authenticate"
	spanInput        = "regoguard.input"
	spanRemote       = "regoguard.remote_opa"

	attrFallback   = attribute.Key("regoguard.fallback")
	attrAuthMethod = attribute.Key("regoguard.auth.method")
	attrAuthResult = attribute.Key("regoguard.auth.result")
	attrOutcome    = attribute.Key("regoguard.outcome")
)

// tracing is the middleware's tracer; a nil *tracing traces nothing and
// costs a nil check.
type tracing struct {
	tracer    trace.Tracer
	prop      propagation.TextMapPropagator
	evaluator string
}

func newTracing(tp trace.TracerProvider, eval Evaluator) *tracing {
	if tp == nil {
		return nil
	}
	return &tracing{tracer: tp.Tracer(tracerName), prop: propagation.TraceContext{}, evaluator: describeEvaluator(eval)}
}

// describeEvaluator names an evaluator for the decision span: which kind
// of evaluator answered (engine, remote, and how they are combined).
//
// It looks at concrete types on purpose, and only for this label: no
// behaviour depends on the answer, and an evaluator it does not know is
// named by its Go type, which is exact. An optional interface (a String or
// Describe method) would add an exported method to policy.Engine, which
// knows nothing of tracing, and to four authz types, to serve one span
// attribute, and a String method would also change what %v prints for them
// in callers' logs. What changes behaviour is found through interfaces
// (Snapshotter, DecisionNamer, EvalTrace), never through this.
func describeEvaluator(e Evaluator) string {
	switch e := e.(type) {
	case nil:
		return "none"
	case *policy.Engine:
		return "engine"
	case *Remote:
		return "remote"
	case *Fallback:
		return "fallback(" + describeEvaluator(e.Primary) + "," + describeEvaluator(e.Secondary) + ")"
	case *Cache:
		return "cache(" + describeEvaluator(e.eval) + ")"
	case *Shadow:
		return "shadow(" + describeEvaluator(e.live) + ")"
	}
	return fmt.Sprintf("%T", e)
}

// start begins a child span of ctx's; with tracing off it returns ctx and
// a nil span.
func (t *tracing) start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if t == nil {
		return ctx, nil
	}
	return t.tracer.Start(ctx, name, opts...)
}

// startRequest begins the request's span. When the context carries no span
// yet (no instrumented handler runs before the middleware), the trace a
// client started is continued from its W3C traceparent header.
func (t *tracing) startRequest(r *http.Request) (context.Context, trace.Span) {
	ctx := r.Context()
	kind := trace.SpanKindInternal
	if !trace.SpanContextFromContext(ctx).IsValid() {
		ctx = t.prop.Extract(ctx, propagation.HeaderCarrier(r.Header))
		kind = trace.SpanKindServer
	}
	return t.tracer.Start(ctx, spanRequest, trace.WithSpanKind(kind), trace.WithAttributes(
		attribute.String("http.request.method", r.Method),
		attribute.String("url.path", traceText(r.URL.Path)),
	))
}

// traceText is s made valid UTF-8 for a span (see pipeline.TraceText).
func traceText(s string) string { return pipeline.TraceText(s) }

// recordError records err on span, its message made valid UTF-8.
func recordError(span trace.Span, err error) { pipeline.RecordError(span, err) }

// endRequest closes the request's span with the status the client got.
func endRequest(span trace.Span, status int) {
	span.SetAttributes(attribute.Int("http.response.status_code", status))
	if status >= 500 {
		span.SetStatus(codes.Error, http.StatusText(status))
	}
	span.End()
}

// authenticate asks the authenticator, in a span when tracing is on.
func (m *Middleware) authenticate(r *http.Request) (*authn.Identity, error) {
	if m.trace == nil {
		return m.auth.Authenticate(r)
	}
	_, span := m.trace.tracer.Start(r.Context(), spanAuthenticate)
	defer span.End()
	id, err := m.auth.Authenticate(r)
	result := "authenticated"
	switch {
	case errors.Is(err, authn.ErrNoCredential):
		result = "no_credential"
	case errors.Is(err, authn.ErrUnavailable):
		result = "unavailable"
		span.SetStatus(codes.Error, "identity provider unavailable")
	case err != nil:
		result = "invalid"
	}
	span.SetAttributes(attrAuthResult.String(result))
	if id != nil {
		span.SetAttributes(attrAuthMethod.String(id.Method))
	}
	return id, err
}

// endInput closes the input span.
func endInput(span trace.Span, err error) {
	if span == nil {
		return
	}
	if err != nil {
		span.SetStatus(codes.Error, "the policy input could not be built")
	}
	span.End()
}

// injectTraceContext writes the W3C traceparent of ctx's span into h, so
// that a remote OPA continues the trace. Nothing is written when ctx has no
// span.
func injectTraceContext(ctx context.Context, h http.Header) {
	if trace.SpanContextFromContext(ctx).IsValid() {
		propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(h))
	}
}

// markFallback notes on ctx's span (if any) that the secondary evaluator
// answered.
func markFallback(ctx context.Context) {
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.SetAttributes(attrFallback.Bool(true))
	}
}

func remoteTracer(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		return nil
	}
	return tp.Tracer(tracerName)
}

func endRemote(span trace.Span, err error) {
	if err != nil {
		recordError(span, err)
		span.SetStatus(codes.Error, "remote OPA failed")
	}
	span.End()
}
