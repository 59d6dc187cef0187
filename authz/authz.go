// Package authz is the net/http middleware that authenticates each request
// (package authn), builds the policy input, asks an [Evaluator] for a
// decision, and either calls the next handler or refuses the request.
//
// [New] checks a [Config] and returns a [Middleware]; [Middleware.Handler]
// wraps an http.Handler, which finds the caller and the decision with
// [FromContext]. When the authenticator serves routes of its own (a browser
// login, a SAML service provider: authn.SessionRoutes), the middleware serves
// them too: nothing else needs mounting.
//
// The evaluator is usually the in-process *policy.Engine: no network hop per
// request. [Remote] keeps fastapi-opa's remote OPA server mode, [Fallback]
// combines two evaluators, [Cache] memoizes the decisions of a deterministic
// policy, and [Shadow] tries a candidate policy beside the enforced one. Any
// type with an Eval method is an [Evaluator]; the optional [Planner] lets
// the middleware build only the input fields the policy
// reads and name the decision in logs. Every path that cannot reach a
// decision refuses the request: the middleware fails closed.
//
// Observability is opt-in and costs nothing when off: [Config.Metrics] takes
// a [Metrics] (package prommetrics implements it for Prometheus),
// [Config.DecisionLogger] a policy.DecisionLogger, [Config.AccessLog] a
// logger, and [Config.TracerProvider] an OpenTelemetry provider. Evaluators
// report to the middleware through an [EvalTrace] in the context. Every
// front end (this middleware, package grpcauthz) decides and records
// through one pipeline, and counts through the one [Metrics] interface:
// docs/architecture.md follows a request through it.
//
// The credentials the middleware keeps out of the input, the logs and the
// handler's request are those the Authenticator declares
// (authn.CredentialsOf), besides Authorization, Proxy-Authorization,
// Cookie and a trusted proxy's access-token headers.
package authz

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"go.opentelemetry.io/otel/trace"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/extauthz"
	"github.com/regoguard/regoguard/internal/headers"
	"github.com/regoguard/regoguard/internal/pipeline"
	"github.com/regoguard/regoguard/policy"
)

// An Evaluator decides on an input document. *policy.Engine, *Remote,
// *Fallback, *Cache and *Shadow are Evaluators. Eval must be safe for
// concurrent use, and must return an error, never an allow, when it cannot
// decide.
//
// An Evaluator may also implement the optional [Planner] (pruning of the
// input, revision-exact caching, the decision's name in decision logs). The
// middleware always calls the Eval of the evaluator it was given.
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
	// DryRun lets through every request the policy refuses or cannot
	// decide on, logging and counting it as "would have refused" (the
	// Envoy plugin's dry-run, for a first rollout). Authentication is still
	// enforced, as are the path and body checks: DryRun only sets aside the
	// policy's decision. Logged as a warning at start.
	DryRun bool

	// Layout is the input layout; default LayoutRegoguard.
	Layout Layout
	// InputHeaders names credential headers (Authorization, Cookie,
	// Proxy-Authorization, the headers the Authenticator declares,
	// X-Forwarded-Access-Token, or any header whose name holds token,
	// secret, password, api-key, credential, session) that may reach the
	// input anyway. Identity headers never do: the identity is in
	// input.user. Even then, the cookies and query parameters the
	// Authenticator declares stay out.
	//
	// Where the Authenticator reads its credentials is its own to say
	// (authn.CredentialsOf): the API-key header, a session cookie, under
	// whatever name. Those headers are left out of the input, refused when
	// repeated, and removed before the handler unless ForwardCredentials,
	// in any spelling; those cookies and query parameters are left out of
	// the input and removed before the handler unless ForwardCredentials.
	InputHeaders []string
	// Body adds the request body, parsed as JSON, to the input as body.
	// When the input needs it (with the in-process engine, only if the
	// policy reads input.body; see policy.Plan), a non-empty body that
	// is not unambiguous JSON is refused, never judged as absent: 415 when
	// its Content-Type is not one application/json (or +json) in UTF-8 or
	// it has a Content-Encoding, 400 when it is not valid JSON or repeats a
	// key. The handler still reads the whole body.
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
	// ForwardCredentials hands the credentials the middleware consumed
	// (Authorization, Proxy-Authorization and what the Authenticator
	// declares: the API-key header, a session cookie) on to the handler. Off by default: they are removed, in any spelling, from the
	// request the handler gets, so that an upstream never sees (and never
	// believes) a credential it did not have to check. A proxy's access-token
	// headers (X-Forwarded-Access-Token, X-Auth-Request-Access-Token) are
	// identity headers: never handed on as they came.
	ForwardCredentials bool

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
	// DecisionLogLevel is the level of the per-decision line; default
	// slog.LevelDebug, so that a busy service does not log every request
	// unless asked. A decision that fails is always logged at Error.
	DecisionLogLevel slog.Leveler
	// LogInput adds the input document to the per-decision line, with the
	// fields in LogInputMask (slash-separated paths such as
	// "/user/claims/email") removed.
	LogInput     bool
	LogInputMask []string
	// DecisionLogger, when set, receives every decision (for example in OPA's
	// decision-log format; see package bundles). The input it receives has
	// its credentials masked (the key kept, the value replaced by
	// "**REDACTED**"): query parameters whose names look like credentials
	// (?access_token=, ?code=, ?X-Amz-Signature=, ?sig=, ?key=...), the same
	// inside URLs in header values (an OAuth code in Referer), credential
	// headers that InputHeaders let in, and tokens in
	// Sec-WebSocket-Protocol; [authn.LooksLikeCredential] is the rule. The
	// policy's own system.log.mask still applies on top (package bundles).
	DecisionLogger policy.DecisionLogger
	// KeepCredentialsInDecisionLogs gives the DecisionLogger (and the
	// LogInput line) the input unmasked, credentials included: for operators
	// who must keep them, and whose decision logs are guarded as secrets.
	KeepCredentialsInDecisionLogs bool
	// Metrics, when set, is told each request's outcome, each decision's
	// duration, each fallback and, with DryRun, each request let through
	// that would have been refused. Package prommetrics implements it for
	// Prometheus. Nil: nothing is counted, at no cost.
	Metrics Metrics
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
	auth       authn.Authenticator
	eval       Evaluator
	input      *inputBuilder
	skips      []compiledSkip
	cfg        Config
	logger     *slog.Logger
	trace      *tracing
	accessLog  *slog.Logger
	denyStatus int
	maxBody    int64
	readsBody  bool
	// credentials are the headers that carry a credential, in any spelling.
	credentials headers.Set
	// creds is where the authenticator reads credentials; credQuery its
	// query parameters as a set, in queryName's spelling.
	creds     authn.Credentials
	credQuery map[string]bool
	// pipe decides and records: the step every front end shares.
	pipe *pipeline.Pipeline
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
		trace:      newTracing(cfg.TracerProvider, cfg.Evaluator),
		accessLog:  cfg.AccessLog,
		denyStatus: cmp.Or(cfg.DenyStatus, http.StatusForbidden),
		maxBody:    cmp.Or(cfg.MaxBodyBytes, DefaultMaxBodyBytes),
	}
	m.creds = authn.CredentialsOf(cfg.Authenticator)
	m.credentials = credentialSet(m.creds)
	if len(m.creds.Query) > 0 {
		m.credQuery = make(map[string]bool, len(m.creds.Query))
		for _, q := range m.creds.Query {
			m.credQuery[queryName(q)] = true
		}
	}
	layout := cmp.Or(cfg.Layout, LayoutRegoguard)
	if layout != LayoutRegoguard && layout != LayoutFastAPIOPA && layout != LayoutEnvoy {
		return nil, fmt.Errorf("authz: unknown input layout %q (want %q, %q or %q)", layout, LayoutRegoguard, LayoutFastAPIOPA, LayoutEnvoy)
	}
	m.input = &inputBuilder{
		layout:        layout,
		dropHeaders:   headers.NewSet(append(slices.Clone(credentialHeaders), m.credentials.Names()...)...),
		keepHeaders:   headers.NewSet(cfg.InputHeaders...),
		withBody:      cfg.Body,
		enrichers:     cfg.Enrichers,
		preserveToken: cfg.PreserveTokens,
		dropCookies:   m.creds.Cookies,
		dropQuery:     m.credQuery,
	}
	m.readsBody = cfg.Body || layout == LayoutEnvoy || slices.ContainsFunc(cfg.Enrichers, func(e Enricher) bool { return e.NeedsBody })
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
	logLevel := slog.LevelDebug
	if cfg.DecisionLogLevel != nil {
		logLevel = cfg.DecisionLogLevel.Level()
	}
	pcfg := pipeline.Config{
		Evaluator:       cfg.Evaluator,
		Logger:          logger,
		LogLevel:        logLevel,
		LogInput:        cfg.LogInput,
		LogInputMask:    cfg.LogInputMask,
		DecisionLogger:  cfg.DecisionLogger,
		KeepCredentials: cfg.KeepCredentialsInDecisionLogs,
		Abandoned:       ctxDone,
	}
	if cfg.Metrics != nil {
		pcfg.Metrics = cfg.Metrics
	}
	if m.trace != nil {
		pcfg.Tracer, pcfg.EvaluatorName = m.trace.tracer, m.trace.evaluator
	}
	if layout == LayoutEnvoy {
		// The policy reads the credential headers; no log keeps them.
		pcfg.LogInputMask = append(slices.Clone(cfg.LogInputMask), extauthz.LogMask(m.creds.Headers...)...)
		pcfg.EventInput = extauthz.Masker(m.creds.Headers...)
	}
	m.pipe = pipeline.New(pcfg)
	m.warn()
	return m, nil
}

// warn says at start-up, loudly, what weakens the protection.
func (m *Middleware) warn() {
	if m.cfg.DisableAuthorization {
		m.logger.Warn("authorization is DISABLED: every authenticated request goes through without a policy decision")
	}
	if m.cfg.DryRun && !m.cfg.DisableAuthorization {
		m.logger.Warn("DRY RUN: the policy is NOT ENFORCED: requests it refuses are let through, logged and counted as would-have-refused")
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
// request's context ([FromContext]). When the Authenticator serves routes of
// its own ([authn.SessionRoutes]: the browser login, callback and logout, a
// SAML service provider's metadata and assertion consumer service), those
// are served first and sessions are loaded before authentication: no
// wrapping is left to the caller.
func (m *Middleware) Handler(next http.Handler) http.Handler {
	h := http.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.serve(w, r, next)
	}))
	if s, ok := m.auth.(authn.SessionRoutes); ok {
		h = s.Middleware(h)
	}
	return m.observed(h)
}

func (m *Middleware) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	m.serveWith(w, r, next, false)
}

// serveWith serves r; with authOnly, an authenticated caller reaches next
// without a policy decision on the request itself (a decision service,
// which asks the policy about other things: see [Middleware.Authenticated]).
func (m *Middleware) serveWith(w http.ResponseWriter, r *http.Request, next http.Handler, authOnly bool) {
	if !m.cfg.AllowUncleanPaths && !canonicalPath(r) {
		m.refuse(w, r, Refusal{Status: http.StatusBadRequest, Code: CodeBadRequest, Message: "the request path is not in canonical form"})
		return
	}
	if upgradesToHTTP(r) {
		m.refuse(w, r, Refusal{Status: http.StatusBadRequest, Code: CodeBadRequest,
			Message: "upgrading the connection to HTTP/2 (h2c) would let further requests bypass authorization"})
		return
	}
	if name := m.repeatedCredential(r); name != "" {
		m.count(OutcomeUnauthenticated)
		m.challenge(w, r, fmt.Errorf("authz: several %s headers: only one could be verified", name))
		return
	}
	if m.exempt(r) {
		m.count(OutcomeSkipped)
		next.ServeHTTP(w, m.forwarded(withoutIdentity(r)))
		return
	}
	id, err := m.authenticate(r)
	// The identity is now in id: whatever came in under an identity
	// header's name reaches neither the input nor the handler.
	r = withoutIdentity(r)
	switch {
	case errors.Is(err, authn.ErrNoCredential):
		id = nil
		if !m.cfg.AllowAnonymous {
			m.count(OutcomeUnauthenticated)
			m.challenge(w, r, nil)
			return
		}
	case errors.Is(err, authn.ErrUnavailable):
		// The identity provider could not be asked: the credential is
		// neither good nor bad yet, so say so rather than 401.
		m.count(OutcomeError)
		m.refuse(w, r, Refusal{Status: http.StatusServiceUnavailable, Code: CodeAuthenticationUnavailable,
			Message: "the identity provider cannot be reached", Err: err})
		return
	case err != nil:
		m.count(OutcomeUnauthenticated)
		m.logger.InfoContext(r.Context(), "authentication failed", "error", err, "path", r.URL.Path)
		m.challenge(w, r, err)
		return
	}
	if m.cfg.DisableAuthorization || authOnly {
		if id == nil {
			m.challenge(w, r, nil)
			return
		}
		next.ServeHTTP(w, m.forwarded(r).WithContext(withResult(r.Context(), Result{Identity: id})))
		return
	}
	d, ok := m.decide(w, r, id)
	if !ok {
		return
	}
	for k, v := range d.Headers {
		w.Header().Set(k, v)
	}
	if !d.Allow && m.cfg.DryRun {
		m.letThrough(r, id, d)
	} else if !d.Allow {
		if id == nil && d.Status == 0 {
			m.challenge(w, r, nil)
			return
		}
		m.refuse(w, r, Refusal{
			Status: cmp.Or(d.Status, m.denyStatus), Code: CodeForbidden, Message: d.Reason,
			Identity: id, Decision: &d,
		})
		return
	}
	next.ServeHTTP(w, m.forwarded(r).WithContext(withResult(r.Context(), Result{Identity: id, Decision: d})))
}

// decide builds the input and evaluates it. When it cannot (a bad body, an
// evaluator error) it writes the refusal and reports false.
func (m *Middleware) decide(w http.ResponseWriter, r *http.Request, id *authn.Identity) (policy.Decision, bool) {
	req := m.decisionRequest(r, id)
	d, _, err := m.pipe.Decide(r.Context(), &req, func(fields *policy.InputFields) (ast.Value, error) {
		_, span := m.trace.start(r.Context(), spanInput)
		input, err := m.buildInput(r, id, fields)
		endInput(span, err)
		return input, err
	})
	if err != nil {
		if ie := (*pipeline.InputError)(nil); errors.As(err, &ie) {
			m.refuseInput(w, r, ie.Err)
			return policy.Decision{}, false
		}
	}
	if m.accessLog != nil {
		noteDecision(r.Context(), id, d.ID)
	}
	if err != nil && m.cfg.DryRun && !abandoned(r) {
		d.Allow, d.Reason = false, "no policy decision could be made: "+err.Error()
		return d, true
	}
	if err != nil {
		m.refuse(w, r, Refusal{
			Status: http.StatusServiceUnavailable, Code: CodePolicyUnavailable,
			Message: "no policy decision could be made", Identity: id, Decision: &d, Err: err,
		})
		return d, false
	}
	return d, true
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

func (m *Middleware) refuseInput(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, errBodyTooLarge):
		m.refuse(w, r, Refusal{Status: http.StatusRequestEntityTooLarge, Code: CodeBodyTooLarge,
			Message: fmt.Sprintf("the request body is larger than %d bytes", m.maxBody), Err: err})
	case errors.Is(err, ErrUnsupportedMedia):
		m.refuse(w, r, Refusal{Status: http.StatusUnsupportedMediaType, Code: CodeUnsupportedMediaType, Message: err.Error(), Err: err})
	case errors.Is(err, ErrBadRequest):
		m.refuse(w, r, Refusal{Status: http.StatusBadRequest, Code: CodeBadRequest, Message: err.Error(), Err: err})
	default:
		m.count(OutcomeError)
		m.refuse(w, r, Refusal{Status: http.StatusServiceUnavailable, Code: CodePolicyUnavailable,
			Message: "the policy input could not be built", Err: err})
	}
}

// exempt reports whether a skip rule or the CORS pre-flight rule lets r
// through without authentication.
func (m *Middleware) exempt(r *http.Request) bool {
	if m.cfg.AllowCORSPreflight && m.preflight(r) {
		return true
	}
	for _, s := range m.skips {
		if (len(s.methods) == 0 || slices.Contains(s.methods, r.Method)) && matchesWhole(s.path, r.URL.Path) {
			return true
		}
	}
	return false
}

// preflight reports whether r is a genuine CORS pre-flight, as browsers
// send it: OPTIONS with Origin and Access-Control-Request-Method, no body
// and no credential (the Fetch standard sends pre-flights without
// credentials). Anything else is checked like any other request.
func (m *Middleware) preflight(r *http.Request) bool {
	if r.Method != http.MethodOptions || r.Header.Get("Origin") == "" || r.Header.Get("Access-Control-Request-Method") == "" {
		return false
	}
	if r.ContentLength != 0 || len(r.TransferEncoding) > 0 {
		return false
	}
	for name := range r.Header {
		if m.credentials.Has(name) || identityHeaders.Has(name) || strings.EqualFold(name, "Cookie") {
			return false
		}
	}
	return true
}
