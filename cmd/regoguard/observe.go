package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/regoguard/regoguard/authz"
)

// observer is what serve's own parts report to: its metrics (beside the
// middleware's, the policy's, the cache's and the bundles') and the tracer
// provider (nil when tracing is off).
type observer struct {
	upstreamErrors *prometheus.CounterVec
	tp             trace.TracerProvider
	accessLog      bool // the upstream's answer goes on the access-log line
}

func newObserver(reg prometheus.Registerer, tp trace.TracerProvider) *observer {
	m := &observer{tp: tp,
		upstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "regoguard_upstream_errors_total",
			Help: "Allowed requests the upstream could not answer (502), by reason: timeout, canceled (the client went away) or error (refused connection, reset, bad response).",
		}, []string{"reason"}),
	}
	for _, r := range []string{"timeout", "canceled", "error"} {
		m.upstreamErrors.WithLabelValues(r)
	}
	reg.MustRegister(m.upstreamErrors)
	return m
}

// upstreamError counts one request the upstream could not answer.
func (m *observer) upstreamError(ctx context.Context, err error) {
	if m == nil {
		return
	}
	reason := "error"
	switch {
	case ctx.Err() != nil || errors.Is(err, context.Canceled):
		reason = "canceled"
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		reason = "timeout"
	}
	m.upstreamErrors.WithLabelValues(reason).Inc()
	if m.accessLog {
		authz.AddAccessLogAttrs(ctx, slog.String("upstream_error", reason))
	}
}

// upstreamResponse notes the upstream's status on the access-log line.
func (m *observer) upstreamResponse(resp *http.Response) error {
	if !m.accessLog {
		return nil
	}
	authz.AddAccessLogAttrs(resp.Request.Context(), slog.Int("upstream_status", resp.StatusCode))
	return nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
