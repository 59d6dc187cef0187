package authz_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/regoguard/regoguard/authz"
	"github.com/regoguard/regoguard/internal/testopa"
	"github.com/regoguard/regoguard/policy"
)

func newTracer(t testing.TB) (*sdktrace.TracerProvider, *tracetest.InMemoryExporter) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp, exp
}

func spanNamed(t *testing.T, spans tracetest.SpanStubs, name string) tracetest.SpanStub {
	t.Helper()
	for _, s := range spans {
		if s.Name == name {
			return s
		}
	}
	var names []string
	for _, s := range spans {
		names = append(names, s.Name)
	}
	t.Fatalf("no span %q among %v", name, names)
	return tracetest.SpanStub{}
}

func attrs(s tracetest.SpanStub) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes {
		m[kv.Key] = kv.Value
	}
	return m
}

const clientTraceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

// One request, one trace: the client's traceparent is continued, and the
// authentication, input and decision spans are children of the request's
// span, which the next handler's context carries.
func TestTracingSpansOfOneRequest(t *testing.T) {
	tp, exp := newTracer(t)
	m, err := authz.New(authz.Config{Authenticator: testAuth, Evaluator: engine(t, "testdata/regoguard"), TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	var inHandler trace.SpanContext
	h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inHandler = trace.SpanContextFromContext(r.Context())
	}))
	r := request("GET", "/api/orders", "alice")
	r.Header.Set("Traceparent", clientTraceparent)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 200 {
		t.Fatalf("status %d", w.Code)
	}
	spans := exp.GetSpans()
	req := spanNamed(t, spans, "regoguard.request")
	if got := req.SpanContext.TraceID().String(); got != "0af7651916cd43dd8448eb211c80319c" {
		t.Errorf("trace ID %s: the client's traceparent was not continued", got)
	}
	if req.Parent.SpanID().String() != "b7ad6b7169203331" || req.SpanKind != trace.SpanKindServer {
		t.Errorf("request span's parent %s kind %s, want the client's span, server", req.Parent.SpanID(), req.SpanKind)
	}
	if a := attrs(req); a["http.response.status_code"].AsInt64() != 200 {
		t.Errorf("request span attributes %v", a)
	}
	for _, name := range []string{"regoguard.authenticate", "regoguard.input", "regoguard.decision"} {
		s := spanNamed(t, spans, name)
		if s.Parent.SpanID() != req.SpanContext.SpanID() || s.SpanContext.TraceID() != req.SpanContext.TraceID() {
			t.Errorf("%s is not a child of the request span", name)
		}
	}
	d := attrs(spanNamed(t, spans, "regoguard.decision"))
	if !d["regoguard.allowed"].AsBool() || d["regoguard.evaluator"].AsString() != "engine" ||
		!strings.HasPrefix(d["regoguard.revision"].AsString(), "sha256:") || d["regoguard.decision_id"].AsString() == "" {
		t.Errorf("decision span attributes %v", d)
	}
	if a := attrs(spanNamed(t, spans, "regoguard.authenticate")); a["regoguard.auth.result"].AsString() != "authenticated" || a["regoguard.auth.method"].AsString() != "oidc" {
		t.Errorf("authentication span attributes %v", a)
	}
	if inHandler.SpanID() != req.SpanContext.SpanID() {
		t.Errorf("the next handler's context carries span %s, want the request's %s", inHandler.SpanID(), req.SpanContext.SpanID())
	}
}

// A failing remote OPA behind a fallback: the decision span says which
// evaluators were configured, that the fallback answered, and the remote
// call is a client span that sent the trace on to the OPA server.
func TestTracingRemoteAndFallback(t *testing.T) {
	opa := testopa.Start(t, "testdata/regoguard")
	var mu sync.Mutex
	var sent []string
	spy := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		mu.Lock()
		sent = append(sent, r.Header.Get("Traceparent"))
		mu.Unlock()
		return http.DefaultTransport.RoundTrip(r)
	})}
	tp, exp := newTracer(t)
	far, err := authz.NewRemote(authz.RemoteConfig{URL: opa.URL, TracerProvider: tp, HTTPClient: spy})
	if err != nil {
		t.Fatal(err)
	}
	empty := mustEmptyEngine(t)
	m, err := authz.New(authz.Config{Authenticator: testAuth, Evaluator: &authz.Fallback{Primary: empty, Secondary: far}, TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	m.Handler(echo).ServeHTTP(w, request("GET", "/api/orders", "alice"))
	if w.Code != 200 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	spans := exp.GetSpans()
	dec := spanNamed(t, spans, "regoguard.decision")
	d := attrs(dec)
	if d["regoguard.evaluator"].AsString() != "fallback(engine,remote)" || !d["regoguard.fallback"].AsBool() || !d["regoguard.allowed"].AsBool() {
		t.Errorf("decision span attributes %v", d)
	}
	rem := spanNamed(t, spans, "regoguard.remote_opa")
	if rem.Parent.SpanID() != dec.SpanContext.SpanID() || rem.SpanKind != trace.SpanKindClient {
		t.Errorf("remote span: parent %s kind %s, want the decision span, client", rem.Parent.SpanID(), rem.SpanKind)
	}
	if got, want := attrs(rem)["server.address"].AsString(), strings.TrimPrefix(opa.URL, "http://"); got != want {
		t.Errorf("remote span server.address %q, want %q", got, want)
	}
	want := "00-" + rem.SpanContext.TraceID().String() + "-" + rem.SpanContext.SpanID().String() + "-01"
	if len(sent) != 1 || sent[0] != want {
		t.Errorf("traceparent sent to OPA %q, want %q", sent, want)
	}

	// OPA down: the remote span and the decision span are errors.
	opa.Stop()
	exp.Reset()
	w = httptest.NewRecorder()
	m.Handler(echo).ServeHTTP(w, request("GET", "/api/orders", "alice"))
	if w.Code != 503 {
		t.Fatalf("status %d with OPA down", w.Code)
	}
	spans = exp.GetSpans()
	for _, name := range []string{"regoguard.remote_opa", "regoguard.decision", "regoguard.request"} {
		if s := spanNamed(t, spans, name); s.Status.Code != codes.Error {
			t.Errorf("%s status %v, want an error", name, s.Status)
		}
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// The access log has one line per request with what an operator needs, and
// never a credential: not the API key or bearer token, not a cookie, not
// the query string, not the raw token kept for the policy.
func TestAccessLogNeverHoldsACredential(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	m, err := authz.New(authz.Config{Authenticator: testAuth, Evaluator: engine(t, "testdata/regoguard"),
		AccessLog: logger, PreserveTokens: true, Logger: slog.New(slog.DiscardHandler), AllowAnonymous: true})
	if err != nil {
		t.Fatal(err)
	}
	h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		authz.AddAccessLogAttrs(r.Context(), slog.Int("upstream_status", 201))
		w.WriteHeader(201)
		_, _ = io.WriteString(w, "created")
	}))
	secrets := []string{"token-of-alice", "s3cr3t-cookie", "query-token-123", "Bearer hunter2", "api-key-xyz"}
	for _, c := range []struct {
		user   string
		method string
		target string
		status int
	}{
		{"alice", "GET", "/api/orders?access_token=query-token-123", 201},
		{"alice", "DELETE", "/api/orders/1?access_token=query-token-123", 403},
		{"", "GET", "/api/orders?access_token=query-token-123", 401},
		{"!", "GET", "/api/orders", 401},
	} {
		r := request(c.method, c.target, c.user)
		r.Header.Set("Cookie", "session=s3cr3t-cookie")
		r.Header.Set("Authorization", "Bearer hunter2")
		r.Header.Set("X-API-Key", "api-key-xyz")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != c.status {
			t.Fatalf("%s %s as %q: %d, want %d", c.method, c.target, c.user, w.Code, c.status)
		}
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d access-log lines for 4 requests:\n%s", len(lines), buf.String())
	}
	for _, s := range secrets {
		if strings.Contains(buf.String(), s) {
			t.Errorf("the access log holds %q:\n%s", s, buf.String())
		}
	}
	var first, denied map[string]any
	_ = json.Unmarshal([]byte(lines[0]), &first)
	_ = json.Unmarshal([]byte(lines[1]), &denied)
	if first["msg"] != "request" || first["status"] != 201.0 || first["method"] != "GET" || first["path"] != "/api/orders" ||
		first["user"] != "oidc:alice" || first["decision_id"] == "" || first["latency"] == nil || first["upstream_status"] != 201.0 {
		t.Errorf("allowed request's line: %v", first)
	}
	if denied["status"] != 403.0 || denied["user"] != "oidc:alice" || denied["decision_id"] == "" {
		t.Errorf("denied request's line: %v", denied)
	}
}

func mustEmptyEngine(t testing.TB) *policy.Engine {
	t.Helper()
	e, err := policy.New(context.Background(), policy.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return e
}
