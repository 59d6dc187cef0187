package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Tracing is configured as every OpenTelemetry SDK is, by the standard
// environment variables, and is off unless they ask for it:
//
//	OTEL_TRACES_EXPORTER=otlp, or an OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT   turns it on
//	OTEL_TRACES_EXPORTER=none, OTEL_SDK_DISABLED=true                         keep it off
//	OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL=http/protobuf (default) or grpc
//	OTEL_EXPORTER_OTLP_[TRACES_]HEADERS, _TIMEOUT, _INSECURE, _CERTIFICATE  read by the exporters
//	OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG                             read by the SDK (default parentbased_always_on)
//	OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES                              the resource (service.name defaults to regoguard)
//	OTEL_BSP_*                                                               the batch span processor

// tracingFromEnv returns the tracer provider the environment asks for, and
// the function that flushes and stops it; a nil provider when tracing is
// off. A bad value is a configuration error naming the variable.
func tracingFromEnv(ctx context.Context, env map[string]string, build buildInfo) (trace.TracerProvider, func(context.Context) error, error) {
	if strings.EqualFold(env["OTEL_SDK_DISABLED"], "true") {
		return nil, nil, nil
	}
	exporter := strings.ToLower(strings.TrimSpace(env["OTEL_TRACES_EXPORTER"]))
	switch exporter {
	case "none":
		return nil, nil, nil
	case "":
		if env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "" && env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] == "" {
			return nil, nil, nil
		}
	case "otlp":
	default:
		return nil, nil, configErrorf("OTEL_TRACES_EXPORTER: %q is not one of otlp, none", exporter)
	}
	protocol := otlpProtocol(env)
	var exp sdktrace.SpanExporter
	var err error
	switch protocol {
	case "http/protobuf":
		exp, err = otlptracehttp.New(ctx)
	case "grpc":
		exp, err = otlptracegrpc.New(ctx)
	default:
		return nil, nil, configErrorf("OTEL_EXPORTER_OTLP_PROTOCOL: %q is not one of http/protobuf, grpc", protocol)
	}
	if err != nil {
		return nil, nil, configErrorf("OpenTelemetry exporter: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", "regoguard"), attribute.String("service.version", build.Version)),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win
		resource.WithTelemetrySDK(),
	)
	if err != nil {
		return nil, nil, configErrorf("OTEL_RESOURCE_ATTRIBUTES: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return tp, tp.Shutdown, nil
}

// tracedTransport makes the upstream call a client span and passes the
// trace on to the upstream in W3C traceparent; with tracing off it is base
// itself, and the client's own traceparent is forwarded as it came.
//
// The span records the upstream URL without its query string or user
// information: a query carries credentials (an OAuth code, an access_token,
// a pre-signed URL's signature) that the access log leaves out, and traces
// are exported to a third party. (otelhttp's transport records the whole URL
// in url.full, which is why it is not used here.)
func tracedTransport(base http.RoundTripper, tp trace.TracerProvider) http.RoundTripper {
	if tp == nil {
		return base
	}
	return &upstreamTracer{base: base, tracer: tp.Tracer("github.com/regoguard/regoguard/cmd/regoguard")}
}

type upstreamTracer struct {
	base   http.RoundTripper
	tracer trace.Tracer
}

func (u *upstreamTracer) RoundTrip(r *http.Request) (*http.Response, error) {
	where := url.URL{Scheme: r.URL.Scheme, Host: r.URL.Host, Path: r.URL.Path, RawPath: r.URL.RawPath}
	attrs := []attribute.KeyValue{
		attribute.String("http.request.method", r.Method),
		attribute.String("url.full", where.String()),
		attribute.String("server.address", r.URL.Hostname()),
	}
	if p, err := strconv.Atoi(r.URL.Port()); err == nil {
		attrs = append(attrs, attribute.Int("server.port", p))
	}
	ctx, span := u.tracer.Start(r.Context(), "upstream "+r.Method, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	defer span.End()
	out := r.Clone(ctx) // a RoundTripper never changes the request it is given
	propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(out.Header))
	resp, err := u.base.RoundTrip(out)
	if err != nil {
		// Valid UTF-8, or OTLP drops the whole batch (see authz's traceText).
		msg := strings.ToValidUTF8(err.Error(), "\uFFFD")
		span.AddEvent("exception", trace.WithAttributes(attribute.String("exception.type", fmt.Sprintf("%T", err)),
			attribute.String("exception.message", msg)))
		span.SetStatus(codes.Error, msg)
		return resp, err
	}
	span.SetAttributes(attribute.Int("http.response.status_code", resp.StatusCode))
	if resp.StatusCode >= 500 {
		span.SetStatus(codes.Error, "")
	}
	return resp, nil
}

// tracingLabel says in the start-up line whether requests are traced.
func tracingLabel(tp trace.TracerProvider, env map[string]string) string {
	if tp == nil {
		return "off"
	}
	return "otlp " + otlpProtocol(env)
}

// otlpProtocol is the OTLP protocol the environment asks traces be exported
// with: the traces-specific variable, else the general one, else OTLP's
// default, http/protobuf.
func otlpProtocol(env map[string]string) string {
	for _, name := range []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		if p := env[name]; p != "" {
			return p
		}
	}
	return "http/protobuf"
}
