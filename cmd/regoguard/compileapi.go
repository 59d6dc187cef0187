package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/regoguard/regoguard/filter"
	"github.com/regoguard/regoguard/internal/pipeline"
	"github.com/regoguard/regoguard/policy"
)

// This file speaks OPA's Compile API (POST /v1/compile/{path}, OPA v1.22):
// the request body, the Accept media types, the answers and the error
// shapes, so that a client written for OPA works unchanged against
// `regoguard serve`, and `regoguard filter` prints what OPA would answer.
// The translation itself is the filter package's; see filterCompiler.

// The targets regoguard renders (filter.ParseTarget reads them), in the
// order usage lists them. OPA's ucast+linq
// (application/vnd.opa.ucast.linq+json) is not among them.
var filterTargets = []filter.Target{
	{Lang: "sql", Dialect: "postgresql"}, {Lang: "sql", Dialect: "mysql"}, {Lang: "sql", Dialect: "sqlserver"}, {Lang: "sql", Dialect: "sqlite"},
	{Lang: "ucast", Dialect: "all"}, {Lang: "ucast", Dialect: "minimal"}, {Lang: "ucast", Dialect: "prisma"},
}

const (
	multiTargetMediaType = "application/vnd.opa.multitarget+json"
	// astMediaType is the Accept of OPA's residual-AST answer, which
	// regoguard does not give.
	astMediaType = "application/json"
)

// parseFilterTarget reads a --target word such as sql+sqlite.
func parseFilterTarget(s string) (filter.Target, error) {
	t, err := filter.ParseTarget(strings.ToLower(strings.TrimSpace(s)))
	if err != nil || !slices.Contains(filterTargets, t) {
		names := make([]string, len(filterTargets))
		for i, k := range filterTargets {
			names[i] = k.String()
		}
		return filter.Target{}, fmt.Errorf("%q is not one of %s", s, strings.Join(names, ", "))
	}
	return t, nil
}

// filterRequest is one Compile API request, parsed.
type filterRequest struct {
	// Query is the rule to compile: data.filters.include for the path
	// filters/include.
	Query ast.Ref
	// Input is the known input; nil when the request has none.
	Input ast.Value
	// Unknowns are the references left unknown (input.docs); nil when the
	// request gives none (the rule's METADATA may then name them).
	Unknowns []ast.Ref
	// Targets are what the filter is rendered as: one, or several for the
	// multitarget media type.
	Targets []filter.Target
	// Multi is set for the multitarget media type: the answer is keyed by
	// target.
	Multi bool
	// Mappings is options.targetSQLTableMappings, as given.
	Mappings map[string]any
	// Parameterized asks for SQL with placeholders and an args list
	// (a regoguard extension: options.parameterized, --parameterized).
	Parameterized bool
}

// filterCompiler compiles the rule of a Compile API request, with its
// known input, against the policy it serves. An error is a
// *compileAPIError (the request's fault), a *filter.Error (the rule cannot
// be translated), or another error (500).
type filterCompiler interface {
	compileFilter(ctx context.Context, req *filterRequest) (*filter.Filter, error)
}

// compileAPIError is an error answer in the shape of OPA's server
// (types.ErrorV1): {"code":..., "message":..., "errors":[...]}.
type compileAPIError struct {
	Status  int          `json:"-"`
	Code    string       `json:"code"`
	Message string       `json:"message"`
	Errors  []*ast.Error `json:"errors,omitempty"`
}

func (e *compileAPIError) Error() string {
	if len(e.Errors) == 0 {
		return e.Message
	}
	msgs := make([]string, len(e.Errors))
	for i, d := range e.Errors {
		msgs[i] = d.Error()
	}
	return e.Message + ": " + strings.Join(msgs, "; ")
}

// OPA's error codes and messages (v1/server/types).
const (
	codeInvalidParameter = "invalid_parameter"
)

func badCompileRequest(format string, args ...any) *compileAPIError {
	return &compileAPIError{Status: http.StatusBadRequest, Code: codeInvalidParameter, Message: fmt.Sprintf(format, args...)}
}

// writeCompileError writes err as OPA's server would: indented JSON and a
// newline. A *compileAPIError is the request's fault; the rest (a rule that
// cannot be translated, invalid mappings, a failure) is answered as
// filter.ErrorResponse says.
func writeCompileError(w http.ResponseWriter, err error) {
	status, body := compileErrorBody(err)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func compileErrorBody(err error) (int, []byte) {
	var ae *compileAPIError
	if !errors.As(err, &ae) {
		return filter.ErrorResponse(err)
	}
	body, _ := json.MarshalIndent(ae, "", "  ")
	return ae.Status, append(body, '\n')
}

// compileRequestBody is the JSON body of a Compile API request. Fields OPA
// ignores (extra top-level keys, its request metadata) are ignored here
// too; the options regoguard cannot honour are refused rather than
// ignored, since ignoring a mask or an inlining choice would change what a
// caller sees.
type compileRequestBody struct {
	Input    *any      `json:"input"`
	Query    string    `json:"query"`
	Unknowns *[]string `json:"unknowns"`
	Options  struct {
		Mappings        map[string]any `json:"targetSQLTableMappings"`
		TargetDialects  []string       `json:"targetDialects"`
		MaskRule        string         `json:"maskRule"`
		DisableInlining []string       `json:"disableInlining"`
		Parameterized   bool           `json:"parameterized"`
	} `json:"options"`
}

// decodeCompileRequest parses a Compile API body (empty is allowed, as OPA
// allows it) for the rule at path and the Accept header.
func decodeCompileRequest(body []byte, path, accept string) (*filterRequest, error) {
	var b compileRequestBody
	if len(bytes.TrimSpace(body)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		if err := dec.Decode(&b); err != nil {
			return nil, badCompileRequest("error(s) occurred while decoding request: %v", err)
		}
		if dec.More() {
			return nil, badCompileRequest("error(s) occurred while decoding request: more than one JSON value")
		}
	}
	ref, err := compilePathRef(path)
	if err != nil {
		return nil, err
	}
	req := &filterRequest{Query: ref, Mappings: b.Options.Mappings, Parameterized: b.Options.Parameterized}
	if b.Query != "" {
		return nil, badCompileRequest("query: regoguard compiles the rule named by the path (/v1/compile/%s), not an ad-hoc query", path)
	}
	if b.Options.MaskRule != "" {
		return nil, badCompileRequest("options.maskRule: column masks are not supported by regoguard")
	}
	if len(b.Options.DisableInlining) > 0 {
		return nil, badCompileRequest("options.disableInlining: not supported by regoguard")
	}
	if b.Input != nil {
		if req.Input, err = ast.InterfaceToValue(*b.Input); err != nil {
			return nil, badCompileRequest("error(s) occurred while converting input: %v", err)
		}
	}
	if b.Unknowns != nil {
		req.Unknowns = make([]ast.Ref, 0, len(*b.Unknowns))
		for _, s := range *b.Unknowns {
			r, err := ast.ParseRef(s)
			if err != nil {
				return nil, badCompileRequest("error(s) occurred while parsing unknowns: %v", err)
			}
			req.Unknowns = append(req.Unknowns, r)
		}
	}
	if err := req.setTargets(accept, b.Options.TargetDialects); err != nil {
		return nil, err
	}
	return req, nil
}

// setTargets reads the Accept header as OPA does: exactly one known media
// type, no lists, no parameters.
func (req *filterRequest) setTargets(accept string, dialects []string) error {
	switch {
	case accept == "":
		return badCompileRequest("Accept header: missing required header")
	case strings.Contains(accept, ","):
		return badCompileRequest("Accept header: multiple headers not supported")
	case accept == astMediaType:
		return &compileAPIError{Status: http.StatusNotAcceptable, Code: codeInvalidParameter,
			Message: "Accept header: " + astMediaType + " (residual queries as AST) is not supported by regoguard; ask for an SQL or UCAST media type"}
	case accept == multiTargetMediaType:
		req.Multi = true
		if len(dialects) == 0 {
			return badCompileRequest("options.targetDialects: the multitarget media type needs at least one target, such as sql+postgresql")
		}
		for _, d := range dialects {
			t, err := parseFilterTarget(d)
			if err != nil {
				return badCompileRequest("options.targetDialects: %v", err)
			}
			if !slices.Contains(req.Targets, t) {
				req.Targets = append(req.Targets, t)
			}
		}
		return nil
	}
	for _, t := range filterTargets {
		if t.MediaType() == accept {
			req.Targets = []filter.Target{t}
			return nil
		}
	}
	if accept == (filter.Target{Lang: "ucast", Dialect: "linq"}).MediaType() {
		return &compileAPIError{Status: http.StatusNotAcceptable, Code: codeInvalidParameter,
			Message: "Accept header: " + accept + " is not supported by regoguard"}
	}
	return badCompileRequest("Accept header: unsupported header: %s", accept)
}

// compilePathRef makes the rule's reference of a URL path, as OPA does:
// filters/include is data.filters.include; each segment is unescaped.
func compilePathRef(path string) (ast.Ref, error) {
	ref := ast.Ref{ast.DefaultRootDocument}
	for seg := range strings.SplitSeq(path, "/") {
		if seg == "" {
			continue
		}
		if s, err := url.PathUnescape(seg); err == nil {
			seg = s
		}
		if strings.Contains(seg, `"`) {
			return nil, badCompileRequest("invalid path: invalid ref term '%s'", seg)
		}
		ref = append(ref, ast.StringTerm(seg))
	}
	if len(ref) == 1 {
		return nil, badCompileRequest("missing required 'path' parameter")
	}
	return ref, nil
}

// marshalAnswer writes the body OPA's Compile API answers with: for one
// target {"result":{"query":...}} or {} (never); for multitarget
// {"result":{"postgresql":{...},"ucast":{...}}} with a never target left
// out. It ends with a newline, as OPA's json.Encoder does.
func marshalAnswer(req *filterRequest, f *filter.Filter) ([]byte, error) {
	opts := filter.ResponseOptions{Parameterized: req.Parameterized, Mappings: req.Mappings}
	if !req.Multi {
		return f.Response(req.Targets[0], opts)
	}
	// OPA's multitarget answer is a struct: this order, the first UCAST
	// form asked for, a never target left out, and a result even when
	// every target is never.
	var m struct {
		UCAST     any `json:"ucast,omitempty"`
		Postgres  any `json:"postgresql,omitempty"`
		MySQL     any `json:"mysql,omitempty"`
		SQLServer any `json:"sqlserver,omitempty"`
		SQLite    any `json:"sqlite,omitempty"`
	}
	ucastDone := false
	for _, t := range req.Targets {
		if t.Lang == "ucast" && ucastDone {
			continue
		}
		r, err := f.Result(t, opts)
		if err != nil {
			return nil, err
		}
		switch t.String() {
		case "sql+postgresql":
			m.Postgres = r
		case "sql+mysql":
			m.MySQL = r
		case "sql+sqlserver":
			m.SQLServer = r
		case "sql+sqlite":
			m.SQLite = r
		default:
			m.UCAST, ucastDone = r, true
		}
	}
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(struct {
		Result any `json:"result"`
	}{&m}); err != nil {
		return nil, fmt.Errorf("encoding the answer: %w", err)
	}
	return buf.Bytes(), nil
}

// maxCompileBody bounds a Compile API request body.
const maxCompileBody = 1 << 20

// compileAPIHandler serves POST /v1/compile/{path} from c. It is mounted
// only behind authentication or on the admin listener (see serve). With a
// decision logger, each compilation (answered or refused) is an event in
// the shape of OPA's compile events: the path, the input, the result,
// custom.type "open-policy-agent/compile" and the unknowns.
func compileAPIHandler(c filterCompiler, logger *slog.Logger, dl policy.DecisionLogger) http.Handler {
	ids := pipeline.NewIDs()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeCompileError(w, &compileAPIError{Status: http.StatusMethodNotAllowed, Code: codeInvalidParameter, Message: "method not allowed: use POST"})
			return
		}
		path, ok := strings.CutPrefix(r.URL.EscapedPath(), "/v1/compile/")
		if !ok || path == "" {
			writeCompileError(w, badCompileRequest("missing required 'path' parameter"))
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxCompileBody))
		if err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				writeCompileError(w, &compileAPIError{Status: http.StatusRequestEntityTooLarge, Code: codeInvalidParameter, Message: "request body too large"})
				return
			}
			writeCompileError(w, badCompileRequest("error(s) occurred while reading request: %v", err))
			return
		}
		req, err := decodeCompileRequest(body, path, r.Header.Get("Accept"))
		if err != nil {
			writeCompileError(w, err)
			return
		}
		start := time.Now()
		f, err := c.compileFilter(r.Context(), req)
		var out []byte
		if err == nil {
			out, err = marshalAnswer(req, f)
		}
		if dl != nil {
			logCompile(r.Context(), dl, logger, ids.Next(), path, req, f, start, err)
		}
		if err != nil {
			if status, _ := compileErrorBody(err); status >= 500 {
				logger.Error("compiling a filter failed", "path", path, "error", err)
			} else {
				logger.Debug("filter refused", "path", path, "error", err)
			}
			writeCompileError(w, err)
			return
		}
		ct := multiTargetMediaType
		if !req.Multi {
			ct = req.Targets[0].MediaType()
		}
		w.Header().Set("Content-Type", ct)
		_, _ = w.Write(out)
	})
}

// logCompile records one compilation as a decision event.
func logCompile(ctx context.Context, dl policy.DecisionLogger, logger *slog.Logger, id, path string, req *filterRequest, f *filter.Filter, start time.Time, err error) {
	unknowns := make([]string, len(req.Unknowns))
	for i, u := range req.Unknowns {
		unknowns[i] = u.String()
	}
	targets := make([]string, len(req.Targets))
	for i, t := range req.Targets {
		targets[i] = t.String()
	}
	d := policy.Decision{ID: id}
	if f != nil && err == nil {
		d.Revision = f.Revision()
		d.Result, _ = f.Result(req.Targets[0], filter.ResponseOptions{Parameterized: req.Parameterized, Mappings: req.Mappings})
	}
	// The one place events are made, so that the caller's input has its
	// credentials masked as every other decision's (always, here: the
	// compile API has no switch to keep them).
	ev := pipeline.NewEvent(path, nil, req.Input, d, err, start, time.Since(start), false)
	ev.Custom = map[string]any{"type": "open-policy-agent/compile", "unknowns": unknowns, "targets": targets}
	if f != nil && err == nil {
		ev.Custom["filter"] = f.String()
	}
	if lerr := dl.LogDecision(ctx, ev); lerr != nil && !errors.Is(lerr, policy.ErrDecisionDropped) {
		logger.WarnContext(ctx, "decision log", "error", lerr, "decision_id", id)
	}
}
