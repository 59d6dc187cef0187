package grpcauthz_test

import (
	"context"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/grpc/codes"

	"github.com/regoguard/regoguard/grpcauthz"
)

// A traced call: one span per call continuing the client's traceparent,
// with the authentication, input and decision spans the HTTP middleware
// has; a refused call's span carries its status, and never the key.
func TestTracingSpansOfOneCall(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	conn, _ := serve(t, grpcauthz.Config{APIKeys: apiKeys(t), Evaluator: engine(t, docsPolicy), TracerProvider: tp})

	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	parent := "00-" + traceID + "-00f067aa0ba902b7-01"
	if _, err := call(conn, "/test.Docs/Get", nil, "x-api-key", readerKey, "traceparent", parent); err != nil {
		t.Fatal(err)
	}
	spans := exp.GetSpans()
	byName := map[string]tracetest.SpanStub{}
	for _, s := range spans {
		byName[s.Name] = s
		if got := s.SpanContext.TraceID().String(); got != traceID {
			t.Errorf("span %s in trace %s, want the client's %s", s.Name, got, traceID)
		}
	}
	root, ok := byName["regoguard.call"]
	if !ok {
		t.Fatalf("no regoguard.call span among %d", len(spans))
	}
	if root.Parent.SpanID().String() != "00f067aa0ba902b7" {
		t.Errorf("regoguard.call's parent %s, want the client's span", root.Parent.SpanID())
	}
	for _, name := range []string{"regoguard.authenticate", "regoguard.input", "regoguard.decision"} {
		s, ok := byName[name]
		if !ok {
			t.Fatalf("no %s span", name)
		}
		if s.Parent.SpanID() != root.SpanContext.SpanID() {
			t.Errorf("%s is not a child of regoguard.call", name)
		}
	}
	if !hasAttr(byName["regoguard.decision"].Attributes, "regoguard.allowed", "true") ||
		!hasAttr(byName["regoguard.decision"].Attributes, "regoguard.revision", "sha256:") ||
		!hasAttr(root.Attributes, "rpc.method", "/test.Docs/Get") {
		t.Errorf("attributes: call %v, decision %v", root.Attributes, byName["regoguard.decision"].Attributes)
	}

	exp.Reset()
	_, err := call(conn, "/test.Docs/Owned", nil, "x-api-key", readerKey)
	wantCode(t, err, codes.PermissionDenied)
	for _, s := range exp.GetSpans() {
		for _, a := range s.Attributes {
			if strings.Contains(a.Value.String(), readerKey) {
				t.Errorf("span %s holds the API key in %s", s.Name, a.Key)
			}
		}
		if s.Name == "regoguard.call" && !hasAttr(s.Attributes, "rpc.grpc.status_code", "7") {
			t.Errorf("refused call's span: %v, want status code 7", s.Attributes)
		}
	}
}

// hasAttr reports whether attrs holds key with a value starting with prefix.
func hasAttr(attrs []attribute.KeyValue, key, prefix string) bool {
	for _, a := range attrs {
		if string(a.Key) == key && strings.HasPrefix(a.Value.String(), prefix) {
			return true
		}
	}
	return false
}
