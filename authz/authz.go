// Package authz is the net/http middleware that authenticates each request
// (package authn), builds the policy input, asks an [Evaluator] for a
// decision, and either calls the next handler or refuses the request.
//
// The evaluator is usually the in-process policy.Engine: no network hop per
// request. [Remote] keeps fastapi-opa's remote OPA server mode, and
// [Fallback] combines the two. Every path that cannot reach a decision
// refuses the request: the middleware fails closed.
package authz

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/policy"
)

// An Evaluator decides on an input document. *policy.Engine, *Remote and
// *Fallback are Evaluators. Eval must be safe for concurrent use, and must
// return an error, never an allow, when it cannot decide.
type Evaluator interface {
	Eval(ctx context.Context, input ast.Value) (policy.Decision, error)
}

// Skip exempts requests from authentication and authorization. Path is a
// regular expression that must match the whole cleaned path (not a prefix);
// Methods, when set, limits the exemption to those methods.
type Skip struct {
	Path    string
	Methods []string
}

// Config configures the middleware. Authenticator and Evaluator are
// required (Evaluator unless DisableAuthorization is set).
type Config struct {
	// Authenticator identifies callers. Use authn.None to run without
	// authentication, explicitly.
	Authenticator authn.Authenticator
	// Evaluator decides whether a request may go through.
	Evaluator Evaluator

	// AllowAnonymous lets requests without credentials reach the policy,
	// with user.authenticated false, so that the policy can allow public
	// paths. Without it (the default, as in fastapi-opa) they are refused
	// with 401, or a browser is sent to log in. A denied anonymous request
	// is answered the same way.
	AllowAnonymous bool
	// DisableAuthorization authenticates requests but lets every
	// authenticated request through without asking the policy
	// (fastapi-opa's authentication-only mode). Logged as a warning at start.
	DisableAuthorization bool

	// Layout is the input layout; default LayoutRegoguard.
	Layout Layout
	// InputHeaders names credential headers (Authorization, Cookie,
	// Proxy-Authorization, APIKeyHeader) that may reach the input anyway.
	InputHeaders []string
	// APIKeyHeader is left out of the input headers; default X-API-Key.
	APIKeyHeader string
	// Body adds the request body, parsed as JSON, to the input as body.
	// A body that is not valid JSON is refused with 400 when the input needs
	// it: with the in-process engine, only if the policy reads input.body
	// (see policy.Snapshot). The handler still reads the whole body.
	Body bool
	// MaxBodyBytes bounds the body read for Body and for enrichers; a
	// longer body is refused with 413. Default DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Enrichers add fields of their own to the input.
	Enrichers []Enricher
	// PreserveTokens adds the caller's raw token to the input (user.token,
	// or token in the fastapi-opa layout). Off by default: tokens then
	// never reach a policy, a log or a decision log.
	PreserveTokens bool

	// Skip exempts requests; default none.
	Skip []Skip
	// AllowCORSPreflight lets genuine CORS pre-flight requests (OPTIONS with
	// Origin and Access-Control-Request-Method) through without
	// authentication. Other OPTIONS requests are checked like any other:
	// fastapi-opa's blanket OPTIONS pass-through was CVE-2024-40627.
	AllowCORSPreflight bool
	// AllowUncleanPaths turns off the refusal (400) of paths that are not in
	// canonical form: dot segments, repeated slashes, encoded slashes or
	// backslashes. Such paths can mean one thing to the policy and another
	// to the handler or upstream, so they are refused by default.
	AllowUncleanPaths bool

	// DenyStatus is the status of a denied request when the policy gives
	// none; default 403 (fastapi-opa answers 401).
	DenyStatus int
	// OnRefuse, when set, writes every refusal instead of the default JSON
	// error body.
	OnRefuse func(w http.ResponseWriter, r *http.Request, ref Refusal)

	// Logger gets start-up warnings and one line per decision; default
	// slog.Default().
	Logger *slog.Logger
	// DecisionLogLevel is the level of the per-decision line; default Info.
	DecisionLogLevel slog.Level
	// LogInput adds the input document to the per-decision line, with the
	// fields in LogInputMask (slash-separated paths such as
	// "/user/claims/email") removed.
	LogInput     bool
	LogInputMask []string
	// DecisionLogger, when set, receives every decision (for example in OPA's
	// decision-log format; see package bundles).
	DecisionLogger policy.DecisionLogger
	// Metrics, when set, registers the middleware's Prometheus metrics.
	Metrics prometheus.Registerer
	// AccessLog, when set, gets one line per request the middleware
	// handles, at Info level: status, method, path, user (method:subject),
	// decision ID, latency, bytes, the trace ID when traced, and what the
	// next handler adds with [AddAccessLogAttrs]. Never a query string,
	// header, cookie or token.
	AccessLog *slog.Logger
	// TracerProvider, when set, traces each request (OpenTelemetry): a
	// span for the request, continuing the W3C traceparent a client sent
	// when no span is in the request's context yet, with child spans for
	// authentication, input building and the decision (revision, allowed,
	// decision ID, evaluator). The next handler runs in the request span's
	// context, so an instrumented client it uses continues the trace. Nil:
	// no tracing, and no cost.
	TracerProvider trace.TracerProvider
}

// Middleware authenticates and authorizes requests. Make one with [New] and
// wrap handlers with [Middleware.Handler].
type Middleware struct {
	auth        authn.Authenticator
	eval        Evaluator
	input       *inputBuilder
	skips       []compiledSkip
	cfg         Config
	logger      *slog.Logger
	metrics     *metrics
	ids         *idSource
	trace       *tracing
	accessLog   *slog.Logger
	denyStatus  int
	maxBody     int64
	readsBody   bool
	decisionRef string
	// engine is the Evaluator when it is the in-process engine and the input
	// is not logged: the input then holds only the fields the policy reads.
	engine *policy.Engine
}

type compiledSkip struct {
	path    *regexp.Regexp
	methods []string
}

// New checks cfg and returns the middleware.
func New(cfg Config) (*Middleware, error) {
	if cfg.Authenticator == nil {
		return nil, errors.New("authz: no Authenticator: use authn.None to run without authentication, explicitly")
	}
	if cfg.Evaluator == nil && !cfg.DisableAuthorization {
		return nil, errors.New("authz: no Evaluator: give a policy engine or a remote OPA, or set DisableAuthorization")
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	m := &Middleware{
		auth:       cfg.Authenticator,
		eval:       cfg.Evaluator,
		cfg:        cfg,
		logger:     logger,
		ids:        newIDSource(),
		trace:      newTracing(cfg.TracerProvider, cfg.Evaluator),
		accessLog:  cfg.AccessLog,
		denyStatus: orDefault(cfg.DenyStatus, http.StatusForbidden),
		maxBody:    orDefault(cfg.MaxBodyBytes, DefaultMaxBodyBytes),
	}
	layout := orDefault(cfg.Layout, LayoutRegoguard)
	if layout != LayoutRegoguard && layout != LayoutFastAPIOPA {
		return nil, fmt.Errorf("authz: unknown input layout %q (want %q or %q)", layout, LayoutRegoguard, LayoutFastAPIOPA)
	}
	m.input = &inputBuilder{
		layout:        layout,
		dropHeaders:   dropHeaders(cfg),
		withBody:      cfg.Body,
		enrichers:     cfg.Enrichers,
		preserveToken: cfg.PreserveTokens,
	}
	m.readsBody = cfg.Body || slices.ContainsFunc(cfg.Enrichers, func(e Enricher) bool { return e.NeedsBody })
	for _, e := range cfg.Enrichers {
		if e.Key == "" || e.Func == nil {
			return nil, errors.New("authz: an Enricher needs a Key and a Func")
		}
	}
	for _, s := range cfg.Skip {
		re, err := regexp.Compile(s.Path)
		if err != nil {
			return nil, fmt.Errorf("authz: skip pattern %q: %w", s.Path, err)
		}
		methods := make([]string, len(s.Methods))
		for i, meth := range s.Methods {
			methods[i] = strings.ToUpper(meth)
		}
		m.skips = append(m.skips, compiledSkip{path: re, methods: methods})
	}
	if cfg.Metrics != nil {
		met, err := newMetrics(cfg.Metrics)
		if err != nil {
			return nil, err
		}
		m.metrics = met
	}
	if fb := fallbackOf(cfg.Evaluator); fb != nil && m.metrics != nil && fb.OnFallback == nil {
		fb.OnFallback = func(error) { m.metrics.fallbacks.Inc() }
	}
	if e, ok := cfg.Evaluator.(interface{ Decision() ast.Ref }); ok {
		m.decisionRef = e.Decision().String()
	}
	if e, ok := cfg.Evaluator.(*policy.Engine); ok && !cfg.LogInput && cfg.DecisionLogger == nil {
		m.engine = e
	}
	m.warn()
	return m, nil
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

func dropHeaders(cfg Config) map[string]bool {
	drop := map[string]bool{}
	for _, h := range credentialHeaders {
		drop[h] = true
	}
	drop[strings.ToLower(orDefault(cfg.APIKeyHeader, authn.DefaultAPIKeyHeader))] = true
	for _, h := range cfg.InputHeaders {
		delete(drop, strings.ToLower(h))
	}
	return drop
}

// warn says at start-up, loudly, what weakens the protection.
func (m *Middleware) warn() {
	if m.cfg.DisableAuthorization {
		m.logger.Warn("authorization is DISABLED: every authenticated request goes through without a policy decision")
	}
	if m.cfg.PreserveTokens {
		m.logger.Warn("raw tokens are added to the policy input (PreserveTokens): they may reach decision logs")
	}
	if m.cfg.AllowUncleanPaths {
		m.logger.Warn("paths that are not in canonical form are allowed: make sure the handler sees the path the policy saw")
	}
}

// Handler wraps next: only requests that are authenticated (or exempt) and
// allowed by the policy reach it. The identity and decision are in the
// request's context ([FromContext]).
func (m *Middleware) Handler(next http.Handler) http.Handler {
	return m.observed(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.serve(w, r, next)
	}))
}

func (m *Middleware) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	if !m.cfg.AllowUncleanPaths && !canonicalPath(r) {
		m.refuse(w, r, Refusal{Status: http.StatusBadRequest, Code: "bad_request", Message: "the request path is not in canonical form"})
		return
	}
	if m.exempt(r) {
		m.metrics.count("skipped")
		next.ServeHTTP(w, r)
		return
	}
	id, err := m.authenticate(r)
	switch {
	case errors.Is(err, authn.ErrNoCredential):
		id = nil
		if !m.cfg.AllowAnonymous {
			m.metrics.count("unauthenticated")
			m.challenge(w, r, nil)
			return
		}
	case errors.Is(err, authn.ErrUnavailable):
		// The identity provider could not be asked: the credential is
		// neither good nor bad yet, so say so rather than 401.
		m.metrics.count("error")
		m.refuse(w, r, Refusal{Status: http.StatusServiceUnavailable, Code: "authentication_unavailable",
			Message: "the identity provider cannot be reached", Err: err})
		return
	case err != nil:
		m.metrics.count("unauthenticated")
		m.logger.InfoContext(r.Context(), "authentication failed", "error", err, "path", r.URL.Path)
		m.challenge(w, r, err)
		return
	}
	if m.cfg.DisableAuthorization {
		if id == nil {
			m.challenge(w, r, nil)
			return
		}
		next.ServeHTTP(w, r.WithContext(withResult(r.Context(), Result{Identity: id})))
		return
	}
	d, ok := m.decide(w, r, id)
	if !ok {
		return
	}
	for k, v := range d.Headers {
		w.Header().Set(k, v)
	}
	if !d.Allow {
		if id == nil && d.Status == 0 {
			m.challenge(w, r, nil)
			return
		}
		m.refuse(w, r, Refusal{
			Status: orDefault(d.Status, m.denyStatus), Code: "forbidden", Message: d.Reason,
			Identity: id, Decision: &d,
		})
		return
	}
	next.ServeHTTP(w, r.WithContext(withResult(r.Context(), Result{Identity: id, Decision: d})))
}

// decide builds the input and evaluates it. When it cannot (a bad body, an
// evaluator error) it writes the refusal and reports false.
func (m *Middleware) decide(w http.ResponseWriter, r *http.Request, id *authn.Identity) (policy.Decision, bool) {
	eval, fields := m.plan()
	_, span := m.trace.start(r.Context(), spanInput)
	input, err := m.buildInput(r, id, fields)
	endInput(span, err)
	if err != nil {
		m.refuseInput(w, r, err)
		return policy.Decision{}, false
	}
	ctx, span := m.trace.start(r.Context(), spanDecision)
	start := time.Now()
	d, err := eval.Eval(ctx, input)
	elapsed := time.Since(start)
	d.ID = m.ids.next()
	m.trace.endDecision(span, d, err)
	m.record(r, id, input, d, err, start, elapsed)
	if err != nil {
		m.refuse(w, r, Refusal{
			Status: http.StatusServiceUnavailable, Code: "policy_unavailable",
			Message: "no policy decision could be made", Identity: id, Decision: &d, Err: err,
		})
		return d, false
	}
	return d, true
}

// plan returns the evaluator for one request and the input fields to build
// for it (nil: all). With the in-process engine that is a snapshot of the
// revision being served, so that the fields built and the policy that
// judges them always match, even across a reload; the input then costs
// nothing for what the policy never reads (headers, query, a body to parse,
// an enricher's call).
func (m *Middleware) plan() (Evaluator, *policy.InputFields) {
	if m.engine != nil {
		if s, err := m.engine.Snapshot(); err == nil {
			return s, s.Fields()
		}
	}
	return m.eval, nil
}

// Input returns the policy input the middleware builds for r made by id (nil
// for an anonymous caller): the same document for the check command as for
// live requests. It reads the body when the configuration needs it, and puts
// it back for the handler.
func (m *Middleware) Input(r *http.Request, id *authn.Identity) (ast.Value, error) {
	return m.buildInput(r, id, nil)
}

// buildInput builds the fields that fields reads (all when nil).
func (m *Middleware) buildInput(r *http.Request, id *authn.Identity, fields *policy.InputFields) (ast.Value, error) {
	var body []byte
	if m.readsBody {
		b, err := readBody(r, m.maxBody)
		if err != nil {
			return nil, err
		}
		body = b
	}
	return m.input.build(r, id, body, fields)
}

// Evaluator returns the evaluator the middleware asks.
func (m *Middleware) Evaluator() Evaluator { return m.eval }

func (m *Middleware) refuseInput(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, errBodyTooLarge):
		m.refuse(w, r, Refusal{Status: http.StatusRequestEntityTooLarge, Code: "body_too_large",
			Message: fmt.Sprintf("the request body is larger than %d bytes", m.maxBody), Err: err})
	case errors.Is(err, ErrBadRequest):
		m.refuse(w, r, Refusal{Status: http.StatusBadRequest, Code: "bad_request", Message: err.Error(), Err: err})
	default:
		m.metrics.count("error")
		m.refuse(w, r, Refusal{Status: http.StatusServiceUnavailable, Code: "policy_unavailable",
			Message: "the policy input could not be built", Err: err})
	}
}

// exempt reports whether a skip rule or the CORS pre-flight rule lets r
// through without authentication.
func (m *Middleware) exempt(r *http.Request) bool {
	if m.cfg.AllowCORSPreflight && r.Method == http.MethodOptions &&
		r.Header.Get("Origin") != "" && r.Header.Get("Access-Control-Request-Method") != "" {
		return true
	}
	for _, s := range m.skips {
		if (len(s.methods) == 0 || slices.Contains(s.methods, r.Method)) && matchesWhole(s.path, r.URL.Path) {
			return true
		}
	}
	return false
}

// canonicalPath reports whether the path is one that every server reads the
// same way: no dot segments, no repeated slashes, no encoded slash or
// backslash, no backslash.
func canonicalPath(r *http.Request) bool {
	p := r.URL.Path
	if p == "" || p[0] != '/' || strings.Contains(p, "//") || strings.ContainsRune(p, '\\') {
		return false
	}
	for seg := range strings.SplitSeq(p[1:], "/") {
		if seg == "." || seg == ".." {
			return false
		}
	}
	if r.URL.RawPath != "" {
		raw := strings.ToLower(r.URL.RawPath)
		if strings.Contains(raw, "%2f") || strings.Contains(raw, "%5c") {
			return false
		}
	}
	return true
}
