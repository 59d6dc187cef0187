package main

import (
	"context"
	"errors"
	"net"

	"github.com/prometheus/client_golang/prometheus"
)

// serveMetrics are serve's own metrics, beside the middleware's, the
// policy's, the cache's and the bundles'.
type serveMetrics struct {
	upstreamErrors *prometheus.CounterVec
}

func newServeMetrics(reg prometheus.Registerer) *serveMetrics {
	m := &serveMetrics{
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
func (m *serveMetrics) upstreamError(ctx context.Context, err error) {
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
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
