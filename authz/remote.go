package authz

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/regoguard/regoguard/policy"
)

// DefaultRemoteTimeout bounds one decision asked of a remote OPA server.
const DefaultRemoteTimeout = 2 * time.Second

// maxRemoteResponse bounds the answer read from a remote OPA server.
const maxRemoteResponse = 1 << 20

// RemoteConfig configures a [Remote] evaluator.
type RemoteConfig struct {
	// URL is the OPA server, such as http://127.0.0.1:8181 (fastapi-opa's
	// opa_host).
	URL string
	// Decision is the decision path ("httpapi/authz"), as in policy.Config.
	Decision string
	// Timeout bounds each decision, connection included.
	// Default DefaultRemoteTimeout.
	Timeout time.Duration
	// Token, when set, is sent as a bearer token (OPA's --authentication=token).
	Token string
	// HTTPClient replaces the default client, a keep-alive pool sized for a
	// busy proxy. Its own Timeout, if any, also applies.
	HTTPClient *http.Client
	// TracerProvider, when set, traces each decision asked (a client span,
	// regoguard.remote_opa). With or without it, the W3C traceparent of the
	// context's span, if any, is sent to the OPA server, so that its own
	// traces join the request's.
	TracerProvider trace.TracerProvider
	// ResultParser reads the decision document, as policy.Config's does;
	// default policy.ParseResult.
	ResultParser policy.ResultParser
}

// Remote asks a remote OPA server for each decision over its REST API
// (POST /v1/data/{path} with {"input": ...}): the mode fastapi-opa users
// know, kept for migrations and as a fallback.
type Remote struct {
	decision string // the decision document, data.httpapi.authz
	endpoint string
	host     string // of endpoint, for the span
	timeout  time.Duration
	token    string
	client   *http.Client
	tracer   trace.Tracer
	parse    policy.ResultParser
}

// NewRemote returns a Remote evaluator for cfg.
func NewRemote(cfg RemoteConfig) (*Remote, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("authz: remote OPA URL %q must be an absolute http(s) URL", cfg.URL)
	}
	ref, err := policy.DecisionRef(cfg.Decision)
	if err != nil {
		return nil, err
	}
	segments := make([]string, 0, len(ref)-1)
	for _, t := range ref[1:] {
		s, ok := t.Value.(ast.String)
		if !ok {
			return nil, fmt.Errorf("authz: decision %s cannot be asked of a remote OPA", ref)
		}
		segments = append(segments, url.PathEscape(string(s)))
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultRemoteTimeout
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Transport: newPooledTransport(timeout)}
	}
	return &Remote{
		decision: ref.String(),
		endpoint: strings.TrimSuffix(u.String(), "/") + "/v1/data/" + strings.Join(segments, "/"),
		host:     u.Host,
		timeout:  timeout,
		token:    cfg.Token,
		client:   client,
		tracer:   remoteTracer(cfg.TracerProvider),
		parse:    cfg.ResultParser,
	}, nil
}

// newPooledTransport keeps enough idle connections to one OPA server that a
// busy proxy does not open a connection per request: Go's default of two
// idle connections per host costs a handshake on most concurrent requests.
func newPooledTransport(timeout time.Duration) *http.Transport {
	return &http.Transport{
		Proxy:                 nil, // the OPA server is a local peer, never behind a proxy
		DialContext:           (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		ForceAttemptHTTP2:     true,
	}
}

// Endpoint returns the URL that decisions are posted to.
func (c *Remote) Endpoint() string { return c.endpoint }

// Plan implements [Planner], to say what regoguard cannot know of a remote
// OPA: which revision decides (""), so that nothing is cached on its
// account, and what it reads (everything). It names the decision.
func (c *Remote) Plan() (policy.Plan, error) { return policy.Plan{Decision: c.decision}, nil }

// Eval implements [Evaluator]. An absent result is an undefined decision (a
// deny); a status other than 200, an answer that is not OPA's, or a timeout
// is an error, which the middleware turns into a refusal.
func (c *Remote) Eval(ctx context.Context, input ast.Value) (_ policy.Decision, err error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	body, err := encodeInput(input)
	if err != nil {
		return policy.Decision{}, err
	}
	if c.tracer != nil {
		var span trace.Span
		ctx, span = c.tracer.Start(ctx, spanRemote, trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(attribute.String("server.address", c.host)))
		defer func() { endRemote(span, err) }()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, bytes.NewReader(body))
	if err != nil {
		return policy.Decision{}, fmt.Errorf("authz: remote OPA: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	injectTraceContext(ctx, req.Header)
	resp, err := c.client.Do(req)
	if err != nil {
		return policy.Decision{}, fmt.Errorf("authz: remote OPA %s: %w", c.endpoint, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxRemoteResponse+1))
	if err != nil {
		return policy.Decision{}, fmt.Errorf("authz: remote OPA %s: reading answer: %w", c.endpoint, err)
	}
	if len(data) > maxRemoteResponse {
		return policy.Decision{}, fmt.Errorf("authz: remote OPA %s: answer larger than %d bytes", c.endpoint, maxRemoteResponse)
	}
	if resp.StatusCode != http.StatusOK {
		return policy.Decision{}, remoteError(c.endpoint, resp.StatusCode, data)
	}
	return decodeAnswer(c.endpoint, data, c.parse)
}

func encodeInput(input ast.Value) ([]byte, error) {
	// OPA's own encoder writes the value as JSON without converting it to
	// Go maps first.
	var b bytes.Buffer
	b.WriteString(`{"input":`)
	if input == nil {
		b.WriteString("null")
	} else {
		j, err := ast.JSON(input)
		if err != nil {
			return nil, fmt.Errorf("authz: input for remote OPA: %w", err)
		}
		if err := json.NewEncoder(&b).Encode(j); err != nil {
			return nil, fmt.Errorf("authz: input for remote OPA: %w", err)
		}
	}
	b.WriteString("}")
	return b.Bytes(), nil
}

func decodeAnswer(endpoint string, data []byte, parse policy.ResultParser) (policy.Decision, error) {
	var answer struct {
		Result json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(data, &answer); err != nil {
		return policy.Decision{}, fmt.Errorf("authz: remote OPA %s: answer is not JSON: %w", endpoint, err)
	}
	var result any
	if len(answer.Result) > 0 {
		dec := json.NewDecoder(bytes.NewReader(answer.Result))
		dec.UseNumber()
		if err := dec.Decode(&result); err != nil {
			return policy.Decision{}, fmt.Errorf("authz: remote OPA %s: %w", endpoint, err)
		}
	}
	if parse == nil {
		parse = policy.ParseResult
	}
	d, err := parse(result)
	if err != nil {
		return d, fmt.Errorf("authz: remote OPA %s: %w", endpoint, err)
	}
	return d, nil
}

// remoteError describes a non-200 answer, with OPA's own code and message
// when the body has them ({"code": "...", "message": "..."}).
func remoteError(endpoint string, status int, body []byte) error {
	var e struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &e) == nil && e.Message != "" {
		return fmt.Errorf("authz: remote OPA %s: %d %s: %s", endpoint, status, e.Code, e.Message)
	}
	return fmt.Errorf("authz: remote OPA %s: status %d", endpoint, status)
}

// Fallback evaluates with Primary and, when Primary fails (no policy
// loaded yet, an evaluation error, a remote server that does not answer),
// with Secondary. An undefined or denying decision is an answer, not a
// failure: it is never retried. With both failing the request is refused;
// the error names both failures.
//
// A Fallback is a [Planner]: its plan reads what either evaluator reads, and
// has the revision of the one expected to answer (Primary, unless it cannot
// decide at all), so that a [Cache] in front keeps Primary's decisions and
// passes Secondary's through.
type Fallback struct {
	Primary, Secondary Evaluator
	// OnFallback, when set, is called each time Secondary is asked, with
	// Primary's error. (The middleware counts fallbacks in its metrics
	// through an [EvalTrace], not through this field.)
	OnFallback func(err error)

	// union is the last union of the two revisions' input fields, made
	// again only when one of them changes, not for each request.
	union atomic.Pointer[fieldsUnion]
}

type fieldsUnion struct{ primary, secondary, both *policy.InputFields }

// unionFields returns what an evaluation may read when it may ask either
// revision.
func (f *Fallback) unionFields(primary, secondary *policy.InputFields) *policy.InputFields {
	if u := f.union.Load(); u != nil && u.primary == primary && u.secondary == secondary {
		return u.both
	}
	u := &fieldsUnion{primary: primary, secondary: secondary, both: primary.Union(secondary)}
	f.union.Store(u)
	return u.both
}

// Eval implements [Evaluator].
func (f *Fallback) Eval(ctx context.Context, input ast.Value) (policy.Decision, error) {
	d, err := f.Primary.Eval(ctx, input)
	if err == nil {
		return d, nil
	}
	return f.second(ctx, input, err, f.Secondary.Eval)
}

// second asks the secondary after the primary failed with err.
func (f *Fallback) second(ctx context.Context, input ast.Value, err error,
	eval func(context.Context, ast.Value) (policy.Decision, error)) (policy.Decision, error) {
	if ctx.Err() != nil {
		// The caller gave up; asking another evaluator cannot help.
		return policy.Decision{}, err
	}
	if f.OnFallback != nil {
		f.OnFallback(err)
	}
	markFallback(ctx)
	if t := ContextEvalTrace(ctx); t != nil && t.Fallback != nil {
		t.Fallback(err)
	}
	d, err2 := eval(ctx, input)
	if err2 != nil {
		return policy.Decision{}, errors.Join(err, err2)
	}
	return d, nil
}

// Plan implements [Planner]. It fails only when neither evaluator can
// decide at all.
func (f *Fallback) Plan() (policy.Plan, error) {
	p, perr := PlanOf(f.Primary)
	s, serr := PlanOf(f.Secondary)
	switch {
	case perr != nil && serr != nil:
		return policy.Plan{Decision: cmp.Or(p.Decision, s.Decision)}, errors.Join(perr, serr)
	case perr != nil:
		s.Decision = cmp.Or(p.Decision, s.Decision)
		return s, nil
	case serr != nil:
		p.Decision = cmp.Or(p.Decision, s.Decision)
		return p, nil
	}
	p.Fields = f.unionFields(p.Fields, s.Fields)
	p.Decision = cmp.Or(p.Decision, s.Decision)
	return p, nil
}
