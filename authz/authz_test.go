package authz_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/authz"
	"github.com/regoguard/regoguard/policy"
	"github.com/regoguard/regoguard/prommetrics"
)

var fuzzEngine *policy.Engine

func TestMain(m *testing.M) {
	slog.SetDefault(slog.New(slog.DiscardHandler))
	p, err := policy.LoadFiles("testdata/regoguard")
	if err == nil {
		fuzzEngine, err = policy.New(context.Background(), policy.Config{}, p)
	}
	if err != nil {
		panic(err)
	}
	os.Exit(m.Run())
}

// testAuth stands in for package authn's authenticators, which have their
// own tests against a real OpenID Provider: "X-Test-User: alice" is alice,
// "X-Test-User: alice;admin,staff" gives her groups, and "!" is an invalid
// credential. The token is "token-of-<user>".
var testAuth = authn.AuthenticatorFunc(func(r *http.Request) (*authn.Identity, error) {
	v := r.Header.Get("X-Test-User")
	switch {
	case v == "":
		return nil, authn.ErrNoCredential
	case v == "!":
		return nil, errors.New("invalid test credential")
	}
	user, groups, _ := strings.Cut(v, ";")
	claims := map[string]any{"email": user + "@example.com"}
	if groups != "" {
		gs := []any{}
		for g := range strings.SplitSeq(groups, ",") {
			gs = append(gs, g)
		}
		claims["groups"] = gs
	}
	return &authn.Identity{Subject: user, Method: authn.MethodOIDC, Claims: claims, Token: "token-of-" + user}, nil
})

func engine(t testing.TB, dir string) *policy.Engine {
	t.Helper()
	p, err := policy.LoadFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	e, err := policy.New(context.Background(), policy.Config{}, p)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// echo is the protected handler: it answers with what the middleware put in
// the request context and the body it could still read.
var echo = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	res, ok := authz.FromContext(r.Context())
	body, _ := io.ReadAll(r.Body)
	out := map[string]any{"in_context": ok, "body": string(body)}
	if ok {
		out["seen"] = nil
		if m, isMap := res.Decision.Result.(map[string]any); isMap {
			out["seen"] = m["seen"]
		}
		if res.Identity != nil {
			out["sub"] = res.Identity.Subject
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
})

func newMiddleware(t testing.TB, cfg authz.Config) http.Handler {
	t.Helper()
	return guard(t, cfg, echo)
}

type response struct {
	status int
	header http.Header
	body   map[string]any
}

func do(t testing.TB, h http.Handler, r *http.Request) response {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	res := response{status: w.Code, header: w.Header()}
	if err := json.Unmarshal(w.Body.Bytes(), &res.body); err != nil {
		t.Fatalf("%s %s: body %q is not JSON: %v", r.Method, r.URL, w.Body.String(), err)
	}
	return res
}

func request(method, target, user string) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	if user != "" {
		r.Header.Set("X-Test-User", user)
	}
	return r
}

func TestDecisions(t *testing.T) {
	h := newMiddleware(t, authz.Config{AllowAnonymous: true})
	cases := []struct {
		name, method, target, user string
		status                     int
		errCode, message           string
	}{
		{"public for anyone", "GET", "/public/x", "", 200, "", ""},
		{"api needs a login", "GET", "/api/orders", "", 401, "unauthorized", "authentication required"},
		{"api for a user", "GET", "/api/orders", "alice", 200, "", ""},
		{"delete is for admins", "DELETE", "/api/orders/1", "alice", 403, "forbidden", "admins only"},
		{"admin may delete", "DELETE", "/api/orders/1", "root;admin", 200, "", ""},
		{"policy status", "GET", "/hidden/thing", "alice", 404, "forbidden", "admins only"},
		{"invalid credential", "GET", "/public/x", "!", 401, "unauthorized", "invalid credentials"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := do(t, h, request(c.method, c.target, c.user))
			if res.status != c.status {
				t.Fatalf("status %d, want %d (body %v)", res.status, c.status, res.body)
			}
			if c.errCode != "" && (res.body["error"] != c.errCode || res.body["message"] != c.message) {
				t.Errorf("body %v, want error %q message %q", res.body, c.errCode, c.message)
			}
			if c.status == 401 && !strings.HasPrefix(res.header.Get("WWW-Authenticate"), "Bearer ") {
				t.Errorf("401 without a Bearer challenge: %q", res.header.Get("WWW-Authenticate"))
			}
			if c.status == 403 && res.body["decision_id"] == "" {
				t.Error("a deny without a decision id")
			}
			if c.status == 200 && res.header.Get("X-Policy") != "regoguard-test" {
				t.Errorf("decision headers not set: %v", res.header)
			}
		})
	}
}

func TestAnonymousRefusedBeforePolicyByDefault(t *testing.T) {
	h := newMiddleware(t, authz.Config{})
	if res := do(t, h, request("GET", "/public/x", "")); res.status != 401 {
		t.Fatalf("anonymous GET /public: %d, want 401 without AllowAnonymous", res.status)
	}
}

func TestDenyStatusForFastAPICompatibility(t *testing.T) {
	h := newMiddleware(t, authz.Config{DenyStatus: http.StatusUnauthorized})
	if res := do(t, h, request("DELETE", "/api/x", "alice")); res.status != 401 {
		t.Fatalf("deny answered %d, want the configured 401", res.status)
	}
}

func TestInputDocument(t *testing.T) {
	h := newMiddleware(t, authz.Config{})
	r := request("GET", "/api/orders/?status=open&status=late&q=a+b", "alice;staff")
	r.Header.Set("Authorization", "Bearer secret-token")
	r.Header.Set("Cookie", "session=secret")
	r.Header.Set("Proxy-Authorization", "Basic c2VjcmV0")
	r.Header.Set("X-API-Key", "secret-key")
	r.Header.Add("Accept", "text/plain")
	r.Header.Add("Accept", "application/json")
	r.RemoteAddr = "192.0.2.7:4242"
	res := do(t, h, r)
	if res.status != 200 {
		t.Fatalf("status %d: %v", res.status, res.body)
	}
	seen := res.body["seen"].(map[string]any)
	want := map[string]any{
		"method":        "GET",
		"path":          "/api/orders/",
		"path_segments": []any{"api", "orders", ""},
		"query":         map[string]any{"status": []any{"open", "late"}, "q": []any{"a b"}},
		"host":          "example.com",
		"scheme":        "http",
		"remote_addr":   "192.0.2.7:4242",
		"user": map[string]any{
			"authenticated": true, "method": "oidc", "sub": "alice",
			"claims": map[string]any{"email": "alice@example.com", "groups": []any{"staff"}},
		},
	}
	for k, v := range want {
		if got, _ := json.Marshal(seen[k]); string(got) != mustJSON(t, v) {
			t.Errorf("input.%s = %s, want %s", k, got, mustJSON(t, v))
		}
	}
	headers := seen["headers"].(map[string]any)
	for _, secret := range []string{"authorization", "cookie", "proxy-authorization", "x-api-key"} {
		if _, ok := headers[secret]; ok {
			t.Errorf("credential header %s reached the input", secret)
		}
	}
	if headers["accept"] != "text/plain, application/json" || headers["x-test-user"] != "alice;staff" {
		t.Errorf("headers %v: want lower-case names and joined values", headers)
	}
	if _, ok := seen["body"]; ok {
		t.Error("body in the input without Config.Body")
	}
	if _, ok := seen["user"].(map[string]any)["token"]; ok {
		t.Error("token in the input without PreserveTokens")
	}
	if strings.Contains(mustJSON(t, seen), "secret") {
		t.Errorf("a secret reached the input: %v", seen)
	}
}

func TestCredentialHeadersOnlyWhenAsked(t *testing.T) {
	h := newMiddleware(t, authz.Config{InputHeaders: []string{"Authorization"}, PreserveTokens: true})
	r := request("GET", "/api/x", "alice")
	r.Header.Set("Authorization", "Bearer abc")
	r.Header.Set("Cookie", "c=1")
	seen := do(t, h, r).body["seen"].(map[string]any)
	headers := seen["headers"].(map[string]any)
	if headers["authorization"] != "Bearer abc" || headers["cookie"] != nil {
		t.Errorf("headers %v: want authorization (asked for) and no cookie", headers)
	}
	if seen["user"].(map[string]any)["token"] != "token-of-alice" {
		t.Errorf("PreserveTokens did not add the token: %v", seen["user"])
	}
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestBody(t *testing.T) {
	h := newMiddleware(t, authz.Config{Body: true, MaxBodyBytes: 64})
	post := func(body, contentType string) response {
		r := request("POST", "/api/items", "alice")
		r.Body = io.NopCloser(strings.NewReader(body))
		r.Header.Set("Content-Type", contentType)
		return do(t, h, r)
	}
	res := post(`{"n": 1, "tags": ["a"]}`, "application/json")
	if res.status != 200 || mustJSON(t, res.body["seen"].(map[string]any)["body"]) != `{"n":1,"tags":["a"]}` {
		t.Fatalf("JSON body: %d %v", res.status, res.body)
	}
	if res.body["body"] != `{"n": 1, "tags": ["a"]}` {
		t.Errorf("the handler read %q, want the whole body", res.body["body"])
	}
	if res := post(`{"n": `, "application/json"); res.status != 400 || !strings.Contains(res.body["message"].(string), "not valid JSON") {
		t.Errorf("broken JSON: %d %v, want 400 naming the problem", res.status, res.body)
	}
	if res := post(strings.Repeat("x", 65), "text/plain"); res.status != 413 {
		t.Errorf("65-byte body over a 64-byte limit: %d, want 413", res.status)
	}
	// A body the policy reads but cannot parse is refused, never judged as
	// absent (issue #14, weakness 5); TestBodyThePolicyCannotRead probes the class.
	if res := post("plain words", "text/plain"); res.status != 415 {
		t.Errorf("text body: %d %v, want 415", res.status, res.body)
	}
}

func TestSkipMatchesTheWholePath(t *testing.T) {
	h := newMiddleware(t, authz.Config{Skip: []authz.Skip{{Path: "/docs"}, {Path: "/metrics", Methods: []string{"get"}}}})
	cases := []struct {
		method, path string
		status       int
	}{
		{"GET", "/docs", 200},
		{"GET", "/docs-admin", 401}, // fastapi-opa's re.match skipped this one too
		{"GET", "/x/docs", 401},
		{"GET", "/metrics", 200},
		{"POST", "/metrics", 401},
	}
	for _, c := range cases {
		if res := do(t, h, request(c.method, c.path, "")); res.status != c.status {
			t.Errorf("%s %s: %d, want %d", c.method, c.path, res.status, c.status)
		}
	}
}

func TestOptions(t *testing.T) {
	preflight := func() *http.Request {
		r := request("OPTIONS", "/api/x", "")
		r.Header.Set("Origin", "https://app.example")
		r.Header.Set("Access-Control-Request-Method", "DELETE")
		return r
	}
	strict := newMiddleware(t, authz.Config{})
	if res := do(t, strict, request("OPTIONS", "/api/x", "")); res.status != 401 {
		t.Errorf("OPTIONS let through without authentication (CVE-2024-40627): %d", res.status)
	}
	if res := do(t, strict, preflight()); res.status != 401 {
		t.Errorf("pre-flight let through without the opt-in: %d", res.status)
	}
	cors := newMiddleware(t, authz.Config{AllowCORSPreflight: true})
	if res := do(t, cors, preflight()); res.status != 200 {
		t.Errorf("genuine pre-flight with the opt-in: %d, want 200", res.status)
	}
	if res := do(t, cors, request("OPTIONS", "/api/x", "")); res.status != 401 {
		t.Errorf("OPTIONS without pre-flight headers let through: %d", res.status)
	}
}

func TestUncleanPathsRefused(t *testing.T) {
	h := newMiddleware(t, authz.Config{AllowAnonymous: true})
	for _, target := range []string{"/public/../api/x", "/public/./x", "//public/x", "/public%2F..%2Fapi", "/public/%2e%2e/api"} {
		// httptest.NewRequest parses the target as the server does.
		r := httptest.NewRequest("GET", target, nil)
		if res := do(t, h, r); res.status != 400 {
			t.Errorf("%s: %d, want 400", target, res.status)
		}
	}
}

// failing is an Evaluator that cannot decide: the fault a real engine shows
// only before its first policy, made here for every request.
type failing struct{}

func (failing) Eval(context.Context, ast.Value) (policy.Decision, error) {
	return policy.Decision{Allow: true}, errors.New("evaluator down")
}

func TestEvaluatorErrorFailsClosed(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := newMiddleware(t, authz.Config{Evaluator: failing{}, Metrics: promMetrics(reg, prommetrics.MiddlewareOptions{})})
	res := do(t, h, request("GET", "/api/x", "alice"))
	if res.status != 503 || res.body["error"] != "policy_unavailable" {
		t.Fatalf("got %d %v, want 503", res.status, res.body)
	}
	if strings.Contains(mustJSON(t, res.body), "evaluator down") {
		t.Error("the internal error reached the caller")
	}
	if n := metricValue(t, reg, "regoguard_evaluator_errors_total", ""); n != 1 {
		t.Errorf("evaluator errors metric %v, want 1", n)
	}

	unloaded, err := policy.New(context.Background(), policy.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	h = newMiddleware(t, authz.Config{Evaluator: unloaded})
	if res := do(t, h, request("GET", "/api/x", "alice")); res.status != 503 {
		t.Errorf("engine with no policy: %d, want 503", res.status)
	}
}

// A client that goes away while a (real, slow) policy is evaluating stops
// the evaluation: still no allow, but neither an evaluator error nor an
// error log line, which would page someone for every impatient client.
func TestAbandonedRequestIsNoEvaluatorError(t *testing.T) {
	p := policy.MustParse(map[string]string{"slow.rego": `package httpapi.authz
allow if count([x | some x in numbers.range(1, 100000000); x % 7 == 0]) > 0
`}, nil)
	slow, err := policy.New(context.Background(), policy.Config{}, p)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	var logs bytes.Buffer
	h := newMiddleware(t, authz.Config{Evaluator: slow, Metrics: promMetrics(reg, prommetrics.MiddlewareOptions{}), Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	res := do(t, h, request("GET", "/api/x", "alice").WithContext(ctx))
	if res.status == 200 {
		t.Fatal("an abandoned evaluation let the request through")
	}
	if n := metricValue(t, reg, "regoguard_requests_total", "canceled"); n != 1 {
		t.Errorf("canceled outcome %v, want 1", n)
	}
	if n := metricValue(t, reg, "regoguard_evaluator_errors_total", ""); n != 0 {
		t.Errorf("evaluator errors %v, want 0", n)
	}
	if strings.Contains(logs.String(), `"level":"ERROR"`) {
		t.Errorf("an abandoned request was logged as an error: %s", logs.String())
	}
}

func TestDisableAuthorization(t *testing.T) {
	h := newMiddleware(t, authz.Config{DisableAuthorization: true})
	if res := do(t, h, request("DELETE", "/anything", "alice")); res.status != 200 || res.body["sub"] != "alice" {
		t.Errorf("authenticated request with authorization off: %d %v", res.status, res.body)
	}
	if res := do(t, h, request("GET", "/anything", "")); res.status != 401 {
		t.Errorf("anonymous request with authorization off: %d, want 401", res.status)
	}
}

// browserLogin is an authenticator that sends browsers to a login page, as
// the OIDC browser flow does.
type browserLogin struct{ authn.Authenticator }

func (browserLogin) Challenge(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodGet || !strings.Contains(r.Header.Get("Accept"), "text/html") {
		return false
	}
	http.Redirect(w, r, "/login?rd="+r.URL.Path, http.StatusFound)
	return true
}

func TestBrowsersAreSentToLogIn(t *testing.T) {
	m, err := authz.New(authz.Config{Authenticator: browserLogin{testAuth}, Evaluator: engine(t, "testdata/regoguard")})
	if err != nil {
		t.Fatal(err)
	}
	r := request("GET", "/api/x", "")
	r.Header.Set("Accept", "text/html,application/xhtml+xml")
	w := httptest.NewRecorder()
	m.Handler(echo).ServeHTTP(w, r)
	if w.Code != http.StatusFound || w.Header().Get("Location") != "/login?rd=/api/x" {
		t.Errorf("browser: %d to %q, want a redirect to log in", w.Code, w.Header().Get("Location"))
	}
	api := request("GET", "/api/x", "")
	api.Header.Set("Accept", "application/json")
	if res := do(t, m.Handler(echo), api); res.status != 401 {
		t.Errorf("API client: %d, want 401", res.status)
	}
}

func TestMetricsAndOnRefuse(t *testing.T) {
	reg := prometheus.NewRegistry()
	var refused []authz.Refusal
	h := newMiddleware(t, authz.Config{Metrics: promMetrics(reg, prommetrics.MiddlewareOptions{}), OnRefuse: func(w http.ResponseWriter, r *http.Request, ref authz.Refusal) {
		refused = append(refused, ref)
		w.WriteHeader(ref.Status)
		_, _ = w.Write([]byte(`{"custom": true}`))
	}})
	do(t, h, request("GET", "/api/x", "alice"))
	do(t, h, request("DELETE", "/api/x", "alice"))
	if len(refused) != 1 || refused[0].Status != 403 || refused[0].Decision == nil || refused[0].Identity.Subject != "alice" {
		t.Fatalf("OnRefuse saw %+v, want one 403 for alice with its decision", refused)
	}
	allow, deny := metricValue(t, reg, "regoguard_requests_total", "allow"), metricValue(t, reg, "regoguard_requests_total", "deny")
	if allow != 1 || deny != 1 {
		t.Errorf("requests_total allow=%v deny=%v, want 1 and 1", allow, deny)
	}
}

// promMetrics returns the middleware's Prometheus metrics, registered with
// reg.
func promMetrics(reg prometheus.Registerer, opts prommetrics.MiddlewareOptions) *prommetrics.Middleware {
	m := prommetrics.NewMiddleware(opts)
	reg.MustRegister(m)
	return m
}

// metricValue reads a counter from reg; outcome selects the series of
// regoguard_requests_total.
func metricValue(t testing.TB, reg *prometheus.Registry, name, outcome string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if outcome == "" || (len(m.GetLabel()) > 0 && m.GetLabel()[0].GetValue() == outcome) {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("metric %s{%s} not found", name, outcome)
	return 0
}

func TestAuthenticationErrorsAnswers(t *testing.T) {
	cases := []struct {
		err       error
		status    int
		challenge string
	}{
		{&authn.CredentialError{Method: authn.MethodOIDC, Challenge: `Bearer error="invalid_token", error_description="expired"`, Err: errors.New("expired")},
			401, `Bearer error="invalid_token", error_description="expired"`},
		{fmt.Errorf("discovery: %w", authn.ErrUnavailable), 503, ""},
		{errors.New("some other failure"), 401, `Bearer realm="regoguard", error="invalid_token"`},
	}
	for _, c := range cases {
		auth := authn.AuthenticatorFunc(func(*http.Request) (*authn.Identity, error) { return nil, c.err })
		res := do(t, newMiddleware(t, authz.Config{Authenticator: auth}), request("GET", "/api/x", ""))
		if res.status != c.status || res.header.Get("WWW-Authenticate") != c.challenge {
			t.Errorf("%v: %d %q, want %d %q", c.err, res.status, res.header.Get("WWW-Authenticate"), c.status, c.challenge)
		}
	}
}

// recorder is a policy.DecisionLogger that keeps what it is given.
type recorder struct {
	mu     sync.Mutex
	events []policy.DecisionEvent
}

func (r *recorder) LogDecision(_ context.Context, ev policy.DecisionEvent) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
	return nil
}

func TestDecisionLogLineAndDecisionLogger(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	rec := &recorder{}
	h := newMiddleware(t, authz.Config{
		Logger: logger, LogInput: true, LogInputMask: []string{"/user/claims/email", "/headers/x-secret"},
		DecisionLogger: rec, PreserveTokens: false, DecisionLogLevel: slog.LevelInfo,
	})
	r := request("DELETE", "/api/x", "alice")
	r.Header.Set("X-Secret", "hunter2")
	r.Header.Set("Authorization", "Bearer token-in-header")
	res := do(t, h, r)
	if res.status != 403 {
		t.Fatalf("status %d", res.status)
	}
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("log %q: %v", buf.String(), err)
	}
	if line["msg"] != "decision" || line["outcome"] != "deny" || line["decision_id"] != res.body["decision_id"] ||
		line["user"] != "oidc:alice" || line["revision"] == "" || line["latency"] == nil {
		t.Errorf("decision line %v", line)
	}
	logged := buf.String()
	for _, secret := range []string{"hunter2", "alice@example.com", "token-in-header", "token-of-alice"} {
		if strings.Contains(logged, secret) {
			t.Errorf("log line leaks %q: %s", secret, logged)
		}
	}
	if !strings.Contains(logged, `"path_segments":["api","x"]`) {
		t.Errorf("log line lacks the (masked) input: %s", logged)
	}
	if len(rec.events) != 1 || rec.events[0].ID != res.body["decision_id"] || rec.events[0].Path != "data.httpapi.authz" ||
		rec.events[0].Input == nil || rec.events[0].Revision == "" {
		t.Errorf("decision logger got %+v", rec.events)
	}
}

// By default the per-decision line is at Debug: a service logging at Info
// does not write a line per request. A failed decision is an Error always.
func TestDecisionLineIsDebugByDefault(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	do(t, newMiddleware(t, authz.Config{Logger: logger}), request("GET", "/api/x", "alice"))
	if buf.Len() != 0 {
		t.Errorf("a decision logged at Info by default: %s", buf.String())
	}
	do(t, newMiddleware(t, authz.Config{Logger: logger, Evaluator: failing{}}), request("GET", "/api/x", "alice"))
	if !strings.Contains(buf.String(), `"level":"ERROR","msg":"decision"`) {
		t.Errorf("a failed decision was not logged at Error: %s", buf.String())
	}
}

// failingLogger is a DecisionLogger of one's own that fails every event
// with err.
type failingLogger struct{ err error }

func (f failingLogger) LogDecision(context.Context, policy.DecisionEvent) error { return f.err }

// A decision logger's failure is warned of once per request, except a drop
// it reports itself (policy.ErrDecisionDropped): a full queue under a burst
// must not write a line per request.
func TestDecisionLoggerDropsAreNotLoggedPerRequest(t *testing.T) {
	for _, c := range []struct {
		err      error
		warnings int
	}{
		{fmt.Errorf("queue full: %w", policy.ErrDecisionDropped), 0},
		{errors.New("disk full"), 20},
	} {
		var buf bytes.Buffer
		h := newMiddleware(t, authz.Config{Logger: slog.New(slog.NewJSONHandler(&buf, nil)), DecisionLogger: failingLogger{c.err}})
		for range 20 {
			do(t, h, request("GET", "/public/x", "alice"))
		}
		if n := strings.Count(buf.String(), `"msg":"decision log"`); n != c.warnings {
			t.Errorf("%v: %d warnings for 20 requests, want %d", c.err, n, c.warnings)
		}
	}
}
