package main_test

import (
	"context"
	"encoding/hex"
	"net"
	"sync"
	"testing"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
)

// grpcReceiver is an OTLP/gRPC trace receiver on loopback.
type grpcReceiver struct {
	collectortrace.UnimplementedTraceServiceServer
	mu    sync.Mutex
	spans []*tracepb.Span
}

func (g *grpcReceiver) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			g.spans = append(g.spans, ss.Spans...)
		}
	}
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

// OTEL_EXPORTER_OTLP_PROTOCOL=grpc sends the same trace over OTLP/gRPC.
func TestServeTraceOverGRPC(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rc := &grpcReceiver{}
	srv := grpc.NewServer()
	collectortrace.RegisterTraceServiceServer(srv, rc)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)

	up := newUpstream(t)
	keys := writeFile(t, "keys.yaml", keysFile)
	s := startServe(t, []string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://" + ln.Addr().String(), "OTEL_EXPORTER_OTLP_PROTOCOL=grpc", "OTEL_BSP_SCHEDULE_DELAY=50"},
		"--listen", "127.0.0.1:0", "--upstream", up.URL, "--policy", "testdata/policy", "--api-keys", keys)
	const traceID = "5bf92f3577b34da6a3ce929d0e0e4737"
	if status, _, _ := s.get(t, "GET", "/docs/1", map[string]string{
		"X-API-Key": "alice-key-0123456789", "Traceparent": "00-" + traceID + "-00f067aa0ba902b7-01"}); status != 200 {
		t.Fatalf("status %d", status)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		rc.mu.Lock()
		names := map[string]string{}
		for _, sp := range rc.spans {
			names[sp.Name] = hex.EncodeToString(sp.TraceId)
		}
		rc.mu.Unlock()
		if names["regoguard.decision"] == traceID && names["upstream GET"] == traceID && names["regoguard.request"] == traceID {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("spans received over gRPC (name: trace): %v", names)
		}
		sleep()
	}
}
