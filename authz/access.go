package authz

import (
	"bufio"
	"context"
	"log/slog"
	"net"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/regoguard/regoguard/authn"
)

// accessEntry gathers what the access-log line of one request says beyond
// what the response shows: who asked, which decision, and attributes added
// further down (the upstream's status).
type accessEntry struct {
	user       *authn.Identity // nil: anonymous
	decisionID string
	attrs      []slog.Attr
}

type accessKey struct{}

// AddAccessLogAttrs adds attributes to the access-log line of the request
// whose context ctx is, such as the status a proxied upstream answered
// with. It does nothing when the middleware keeps no access log or did not
// handle the request. Never add a credential.
func AddAccessLogAttrs(ctx context.Context, attrs ...slog.Attr) {
	if e, ok := ctx.Value(accessKey{}).(*accessEntry); ok {
		e.attrs = append(e.attrs, attrs...)
	}
}

// noteUser names the caller on the access-log line, if there is one.
func noteUser(ctx context.Context, id *authn.Identity) {
	if e, ok := ctx.Value(accessKey{}).(*accessEntry); ok {
		e.user = id
	}
}

// noteDecision names the caller and the decision on the access-log line.
func noteDecision(ctx context.Context, user *authn.Identity, id string) {
	if e, ok := ctx.Value(accessKey{}).(*accessEntry); ok {
		e.user, e.decisionID = user, id
	}
}

// observed wraps h with the request span and the access-log line when they
// are configured, and returns h itself otherwise: a middleware with neither
// pays nothing for them.
func (m *Middleware) observed(h http.Handler) http.Handler {
	if m.accessLog == nil && m.trace == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ctx := r.Context()
		var span trace.Span
		if m.trace != nil {
			ctx, span = m.trace.startRequest(r)
		}
		var entry *accessEntry
		if m.accessLog != nil {
			entry = &accessEntry{}
			ctx = context.WithValue(ctx, accessKey{}, entry)
		}
		rec := &statusRecorder{ResponseWriter: w}
		h.ServeHTTP(rec, r.WithContext(ctx))
		status := rec.status
		if status == 0 {
			status = http.StatusOK
		}
		if span != nil {
			endRequest(span, status)
		}
		if entry != nil {
			m.logAccess(ctx, r, entry, status, rec.bytes, time.Since(start))
		}
	})
}

// logAccess writes the request's access-log line. It names the path, never
// the query (which may hold a token), and the user as method:subject, never
// a credential.
func (m *Middleware) logAccess(ctx context.Context, r *http.Request, e *accessEntry, status int, bytes int64, latency time.Duration) {
	attrs := make([]slog.Attr, 0, 9+len(e.attrs))
	attrs = append(attrs,
		slog.Int("status", status),
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.String("user", e.user.String()),
		slog.String("decision_id", e.decisionID),
		slog.Duration("latency", latency),
		slog.Int64("bytes", bytes),
	)
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		attrs = append(attrs, slog.String("trace_id", sc.TraceID().String()))
	}
	attrs = append(attrs, e.attrs...)
	m.accessLog.LogAttrs(ctx, slog.LevelInfo, "request", attrs...)
}

// statusRecorder remembers the status and size of a response. Unwrap lets
// http.ResponseController reach the writer's flusher and hijacker, as a
// reverse proxy streaming or upgrading a connection needs.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 && code >= 200 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += int64(n)
	return n, err
}

// Flush passes a flush on, for handlers that assert http.Flusher.
func (s *statusRecorder) Flush() {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	_ = http.NewResponseController(s.ResponseWriter).Flush()
}

// Unwrap returns the wrapped writer, for http.ResponseController.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// Hijack passes a hijack on, for handlers that assert http.Hijacker
// (WebSocket libraries).
func (s *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if s.status == 0 {
		s.status = http.StatusSwitchingProtocols
	}
	return http.NewResponseController(s.ResponseWriter).Hijack()
}
