package grpcauthz

import (
	"context"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/regoguard/regoguard/authn"
)

// tracerName names the instrumentation scope of the interceptors' spans.
const tracerName = "github.com/regoguard/regoguard/grpcauthz"

// Span and attribute names: the children are named as the HTTP
// middleware's (package authz), so that one dashboard reads both.
const (
	spanCall         = "regoguard.call"
	spanAuthenticate = "regoguard.authenticate"
	spanInput        = "regoguard.input"
	spanDecision     = "regoguard.decision"

	attrAuthMethod = attribute.Key("regoguard.auth.method")
)

// tracing is the interceptors' tracer; a nil *tracing traces nothing and
// costs a nil check.
type tracing struct{ tracer trace.Tracer }

func newTracing(tp trace.TracerProvider) *tracing {
	if tp == nil {
		return nil
	}
	return &tracing{tracer: tp.Tracer(tracerName)}
}

// start begins a child span of ctx's; with tracing off it returns ctx and a
// nil span.
func (t *tracing) start(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	if t == nil {
		return ctx, nil
	}
	return t.tracer.Start(ctx, name, trace.WithAttributes(attrs...))
}

// startCall begins the span of one call. When nothing before the
// interceptors traced it (an otelgrpc stats handler would have), it
// continues the client's W3C traceparent from the metadata.
func (t *tracing) startCall(ctx context.Context, call Call) (context.Context, trace.Span) {
	if t == nil {
		return ctx, nil
	}
	if !trace.SpanContextFromContext(ctx).IsValid() {
		ctx = propagation.TraceContext{}.Extract(ctx, mdCarrier(call.Metadata))
	}
	return t.start(ctx, spanCall, attribute.String("rpc.system", "grpc"),
		attribute.String("rpc.method", strings.ToValidUTF8(call.FullMethod, "\uFFFD")),
		attribute.Bool("rpc.stream", call.Stream))
}

// end ends span with err's gRPC status code; a nil span is left alone.
func end(span trace.Span, err error) {
	if span == nil {
		return
	}
	span.SetAttributes(attribute.Int("rpc.grpc.status_code", int(status.Code(err))))
	if err != nil {
		// The status message is the interceptors' own words: it never holds
		// a credential.
		span.SetStatus(codes.Error, strings.ToValidUTF8(status.Convert(err).Message(), "\uFFFD"))
	}
	span.End()
}

// endAuthenticate records who the caller turned out to be.
func endAuthenticate(span trace.Span, id *authn.Identity, err error) {
	if span != nil && id != nil {
		span.SetAttributes(attrAuthMethod.String(id.Method))
	}
	end(span, err)
}

// mdCarrier reads W3C trace headers from incoming metadata, whose keys are
// lower case.
type mdCarrier metadata.MD

func (c mdCarrier) Get(key string) string {
	if vs := metadata.MD(c).Get(key); len(vs) > 0 {
		return vs[0]
	}
	return ""
}

func (c mdCarrier) Set(key, value string) { metadata.MD(c).Set(key, value) }

func (c mdCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}
