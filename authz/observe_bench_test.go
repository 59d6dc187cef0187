package authz_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/regoguard/regoguard/authz"
	"github.com/regoguard/regoguard/prommetrics"
)

// BenchmarkObservability is the cost of a whole allowed request through the
// middleware with no metrics, tracing or access log (what a library user
// who sets none pays), with Prometheus metrics, with the access log, and
// with tracing (sampled and not). Compare the sub-benchmarks with
// benchstat; there is no timed assertion.
func BenchmarkObservability(b *testing.B) {
	exp := tracetest.NewInMemoryExporter()
	sampled := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithSpanProcessor(discardProcessor{}))
	unsampled := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()), sdktrace.WithSyncer(exp))
	for _, c := range []struct {
		name string
		cfg  authz.Config
	}{
		{"off", authz.Config{}},
		{"metrics", authz.Config{Metrics: prommetrics.NewMiddleware(prommetrics.MiddlewareOptions{})}},
		{"access-log", authz.Config{AccessLog: slog.New(slog.DiscardHandler)}},
		{"trace-unsampled", authz.Config{TracerProvider: unsampled}},
		{"trace-sampled", authz.Config{TracerProvider: sampled}},
	} {
		b.Run(c.name, func(b *testing.B) {
			cfg := c.cfg
			cfg.Authenticator, cfg.Evaluator, cfg.Logger = testAuth, fuzzEngine, slog.New(slog.DiscardHandler)
			m, err := authz.New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) }))
			r := httptest.NewRequest("GET", "/api/orders", nil)
			r.Header.Set("X-Test-User", "alice")
			w := httptest.NewRecorder()
			b.ReportAllocs()
			for b.Loop() {
				h.ServeHTTP(w, r)
			}
			if w.Code != 204 {
				b.Fatalf("status %d", w.Code)
			}
		})
	}
}

// discardProcessor ends spans without exporting them: the cost of
// recording, not of an exporter.
type discardProcessor struct{}

func (discardProcessor) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (discardProcessor) OnEnd(sdktrace.ReadOnlySpan)                     {}
func (discardProcessor) Shutdown(context.Context) error                  { return nil }
func (discardProcessor) ForceFlush(context.Context) error                { return nil }
