// Package authzen serves the OpenID AuthZEN Authorization API 1.0 as a
// policy decision point (PDP) with regoguard's policy engine: a policy
// enforcement point (PEP) asks whether a subject may perform an action on a
// resource, and the Rego policy answers.
//
// # Endpoints
//
//   - POST /access/v1/evaluation: one decision.
//   - POST /access/v1/evaluations: many, in order, sharing the top-level
//     subject, action, resource and context, which each item of evaluations
//     may replace (a key at a time); options.evaluations_semantic is
//     execute_all (the default), deny_on_first_deny or
//     permit_on_first_permit, the last two answering with the results up to
//     and including the item that decided. A request without evaluations
//     (or with an empty array) is one evaluation, answered as by
//     /access/v1/evaluation.
//   - GET /.well-known/authzen-configuration: the PDP's metadata.
//
// The PEP authenticates with the middleware's authenticators (an API key
// is enough); an anonymous PEP is refused with 401. A denial is HTTP 200
// with "decision": false (and the policy's context), never a 403; a request
// that is not valid AuthZEN is 400. An evaluation that fails is a denial
// whose context holds {"error": {"status": 503, "message": ...}}: the PDP
// fails closed. X-Request-ID is echoed.
//
// # Policy
//
// The input of each evaluation is the AuthZEN request:
//
//	{"subject": {"type", "id", "properties"?}, "resource": {"type", "id", "properties"?},
//	 "action": {"name", "properties"?}, "context"?: {...}}
//
// and the decision is a boolean, or an object {"decision": bool,
// "context": {...}} ([ParseResult], to give the engine). Each evaluation is
// its own decision event; those of one /access/v1/evaluations call share a
// batch ID (authz.Middleware.DecideBatch).
//
// Not implemented: the search endpoints (subject, resource, action search),
// signed metadata, and the optional capabilities in the metadata.
package authzen

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/regoguard/regoguard/authz"
	"github.com/regoguard/regoguard/policy"
)

// The evaluations_semantic values.
const (
	ExecuteAll          = "execute_all"
	DenyOnFirstDeny     = "deny_on_first_deny"
	PermitOnFirstPermit = "permit_on_first_permit"
)

// Paths of the API.
const (
	EvaluationPath  = "/access/v1/evaluation"
	EvaluationsPath = "/access/v1/evaluations"
	MetadataPath    = "/.well-known/authzen-configuration"
)

// Defaults of Config.
const (
	DefaultMaxBodyBytes   = 1 << 20
	DefaultMaxEvaluations = 1000
)

// Config configures a [Handler].
type Config struct {
	// Guard authenticates the PEP and makes the decisions (its evaluator
	// should read decisions with [ParseResult]).
	Guard *authz.Middleware
	// BaseURL is the PDP's URL in the metadata (policy_decision_point);
	// default the scheme and host the request came to.
	BaseURL string
	// MaxBodyBytes bounds a request body (default DefaultMaxBodyBytes);
	// MaxEvaluations the items of one evaluations request (default
	// DefaultMaxEvaluations). Larger requests get 413.
	MaxBodyBytes   int64
	MaxEvaluations int
}

// Handler serves the API. Make one with [New].
type Handler struct {
	cfg Config
	mux *http.ServeMux
}

// New returns the AuthZEN handler of cfg.
func New(cfg Config) (*Handler, error) {
	if cfg.Guard == nil {
		return nil, errors.New("authzen: no Guard: give the authz.Middleware that authenticates PEPs and decides")
	}
	cfg.MaxBodyBytes = cmp.Or(cfg.MaxBodyBytes, DefaultMaxBodyBytes)
	cfg.MaxEvaluations = cmp.Or(cfg.MaxEvaluations, DefaultMaxEvaluations)
	cfg.BaseURL = strings.TrimSuffix(cfg.BaseURL, "/")
	h := &Handler{cfg: cfg, mux: http.NewServeMux()}
	h.mux.Handle("POST "+EvaluationPath, cfg.Guard.Authenticated(http.HandlerFunc(h.evaluation)))
	h.mux.Handle("POST "+EvaluationsPath, cfg.Guard.Authenticated(http.HandlerFunc(h.evaluations)))
	h.mux.HandleFunc("GET "+MetadataPath, h.metadata)
	return h, nil
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if id := r.Header.Get("X-Request-ID"); id != "" && len(id) <= 256 && !strings.ContainsAny(id, "\r\n") {
		w.Header().Set("X-Request-ID", id)
	}
	h.mux.ServeHTTP(w, r)
}

func (h *Handler) metadata(w http.ResponseWriter, r *http.Request) {
	base := h.cfg.BaseURL
	if base == "" {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		base = scheme + "://" + r.Host
	}
	writeJSON(w, http.StatusOK, map[string]string{
		"policy_decision_point":       base,
		"access_evaluation_endpoint":  base + EvaluationPath,
		"access_evaluations_endpoint": base + EvaluationsPath,
	})
}

// request is an evaluation or evaluations request, its values kept as
// they came (json.Number) until they become terms.
type request struct {
	Subject     map[string]any   `json:"subject"`
	Resource    map[string]any   `json:"resource"`
	Action      map[string]any   `json:"action"`
	Context     map[string]any   `json:"context"`
	Evaluations []map[string]any `json:"evaluations"`
	Options     struct {
		EvaluationsSemantic string `json:"evaluations_semantic"`
	} `json:"options"`
}

// A Result is the answer to one evaluation.
type Result struct {
	Decision bool           `json:"decision"`
	Context  map[string]any `json:"context,omitempty"`
}

func (h *Handler) evaluation(w http.ResponseWriter, r *http.Request) {
	req, ok := h.read(w, r)
	if !ok {
		return
	}
	inputs, err := inputsOf(req, false)
	if err != nil {
		badRequest(w, err)
		return
	}
	res, _ := authz.FromContext(r.Context())
	writeJSON(w, http.StatusOK, result(h.cfg.Guard.Decide(r, res.Identity, inputs[0])))
}

func (h *Handler) evaluations(w http.ResponseWriter, r *http.Request) {
	req, ok := h.read(w, r)
	if !ok {
		return
	}
	if len(req.Evaluations) > h.cfg.MaxEvaluations {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("at most %d evaluations per request", h.cfg.MaxEvaluations))
		return
	}
	var stop func(authz.BatchItem) bool
	switch req.Options.EvaluationsSemantic {
	case "", ExecuteAll:
	case DenyOnFirstDeny:
		stop = func(it authz.BatchItem) bool { return !it.Decision.Allow || it.Err != nil }
	case PermitOnFirstPermit:
		stop = func(it authz.BatchItem) bool { return it.Decision.Allow && it.Err == nil }
	default:
		badRequest(w, fmt.Errorf("options.evaluations_semantic %q is not one of %s, %s, %s", req.Options.EvaluationsSemantic, ExecuteAll, DenyOnFirstDeny, PermitOnFirstPermit))
		return
	}
	single := len(req.Evaluations) == 0
	inputs, err := inputsOf(req, !single)
	if err != nil {
		badRequest(w, err)
		return
	}
	res, _ := authz.FromContext(r.Context())
	items, _ := h.cfg.Guard.DecideBatch(r, res.Identity, inputs, stop)
	if single {
		writeJSON(w, http.StatusOK, result(items[0]))
		return
	}
	out := struct {
		Evaluations []Result `json:"evaluations"`
	}{Evaluations: make([]Result, len(items))}
	for i, it := range items {
		out.Evaluations[i] = result(it)
	}
	writeJSON(w, http.StatusOK, out)
}

// read decodes the request body: one JSON object, at most MaxBodyBytes.
func (h *Handler) read(w http.ResponseWriter, r *http.Request) (*request, bool) {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, "send the request as application/json")
		return nil, false
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, h.cfg.MaxBodyBytes+1))
	if err != nil {
		badRequest(w, fmt.Errorf("reading the body: %v", err))
		return nil, false
	}
	if int64(len(body)) > h.cfg.MaxBodyBytes {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is larger than %d bytes", h.cfg.MaxBodyBytes))
		return nil, false
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.UseNumber()
	var req request
	if err := dec.Decode(&req); err != nil {
		badRequest(w, fmt.Errorf("the body is not an AuthZEN request: %v", err))
		return nil, false
	}
	if dec.More() {
		badRequest(w, errors.New("the body holds more than one JSON value"))
		return nil, false
	}
	return &req, true
}

// inputsOf builds the input of each evaluation: the top-level subject,
// action, resource and context, each replaced by the item's own when it
// has one. Every input must have a complete subject, resource and action.
func inputsOf(req *request, batch bool) ([]ast.Value, error) {
	common, err := entities(req.Subject, req.Resource, req.Action, req.Context)
	if err != nil {
		return nil, err
	}
	if !batch {
		if err := complete(common); err != nil {
			return nil, err
		}
		return []ast.Value{common}, nil
	}
	items := make([]ast.Object, len(req.Evaluations))
	for i, e := range req.Evaluations {
		s, res, a, c, err := parts(e)
		if err != nil {
			return nil, fmt.Errorf("evaluations[%d]: %w", i, err)
		}
		if items[i], err = entities(s, res, a, c); err != nil {
			return nil, fmt.Errorf("evaluations[%d]: %w", i, err)
		}
	}
	inputs := authz.BatchInputs(common, items)
	for i, in := range inputs {
		if err := complete(in.(ast.Object)); err != nil {
			return nil, fmt.Errorf("evaluations[%d]: %w", i, err)
		}
	}
	return inputs, nil
}

// parts reads the four entities of an evaluations item.
func parts(e map[string]any) (s, res, a, c map[string]any, err error) {
	get := func(k string) (map[string]any, error) {
		v, ok := e[k]
		if !ok || v == nil {
			return nil, nil
		}
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s must be an object", k)
		}
		return m, nil
	}
	if s, err = get("subject"); err != nil {
		return
	}
	if res, err = get("resource"); err != nil {
		return
	}
	if a, err = get("action"); err != nil {
		return
	}
	c, err = get("context")
	return
}

var (
	keySubject  = ast.StringTerm("subject")
	keyResource = ast.StringTerm("resource")
	keyAction   = ast.StringTerm("action")
	keyContext  = ast.StringTerm("context")
)

// entities checks the entities given and returns them as an object.
func entities(subject, resource, action, context map[string]any) (ast.Object, error) {
	out := ast.NewObject()
	add := func(key *ast.Term, m map[string]any, required ...string) error {
		if m == nil {
			return nil
		}
		for _, f := range required {
			s, ok := m[f].(string)
			if !ok || s == "" {
				return fmt.Errorf("%s.%s must be a non-empty string", key.Value.(ast.String), f)
			}
		}
		if p, ok := m["properties"]; ok && p != nil {
			if _, ok := p.(map[string]any); !ok {
				return fmt.Errorf("%s.properties must be an object", key.Value.(ast.String))
			}
		}
		v, err := ast.InterfaceToValue(m)
		if err != nil {
			return fmt.Errorf("%s: %w", key.Value.(ast.String), err)
		}
		out.Insert(key, ast.NewTerm(v))
		return nil
	}
	if err := add(keySubject, subject, "type", "id"); err != nil {
		return nil, err
	}
	if err := add(keyResource, resource, "type", "id"); err != nil {
		return nil, err
	}
	if err := add(keyAction, action, "name"); err != nil {
		return nil, err
	}
	if err := add(keyContext, context); err != nil {
		return nil, err
	}
	return out, nil
}

// complete checks that an evaluation has a subject, a resource and an
// action.
func complete(in ast.Object) error {
	for _, k := range []*ast.Term{keySubject, keyResource, keyAction} {
		if in.Get(k) == nil {
			return fmt.Errorf("no %s (neither at the top level nor in the evaluation)", k.Value.(ast.String))
		}
	}
	return nil
}

// result is the AuthZEN answer of one decision.
func result(it authz.BatchItem) Result {
	if it.Err != nil {
		return Result{Decision: false, Context: map[string]any{"error": map[string]any{
			"status": http.StatusServiceUnavailable, "message": "no policy decision could be made", "decision_id": it.Decision.ID}}}
	}
	r := Result{Decision: it.Decision.Allow}
	if obj, ok := it.Decision.Result.(map[string]any); ok {
		if c, ok := obj["context"].(map[string]any); ok {
			r.Context = c
		}
	}
	if it.DryRun {
		r.Context = map[string]any{"dry_run": map[string]any{"would_refuse": true, "decision_id": it.Decision.ID}}
	}
	return r
}

// ParseResult is a policy.ResultParser for AuthZEN decisions: a boolean,
// or an object whose decision is a boolean, with an optional context
// object. Any other shape is an error (the evaluation is denied).
func ParseResult(res any) (policy.Decision, error) {
	switch v := res.(type) {
	case nil:
		return policy.Decision{Result: res}, nil
	case bool:
		return policy.Decision{Allow: v, Defined: true, Result: res}, nil
	case map[string]any:
		d, ok := v["decision"].(bool)
		if !ok {
			return policy.Decision{}, fmt.Errorf("authzen: the decision object must have a boolean \"decision\", got %T", v["decision"])
		}
		if c, ok := v["context"]; ok && c != nil {
			if _, ok := c.(map[string]any); !ok {
				return policy.Decision{}, fmt.Errorf("authzen: the decision's \"context\" must be an object, got %T", c)
			}
		}
		return policy.Decision{Allow: d, Defined: true, Result: res}, nil
	}
	return policy.Decision{}, fmt.Errorf("authzen: the decision must be a boolean or an object with \"decision\", got %T", res)
}

func badRequest(w http.ResponseWriter, err error) { writeError(w, http.StatusBadRequest, err.Error()) }

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": strings.ReplaceAll(strings.ToLower(http.StatusText(status)), " ", "_"), "message": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
