package filter

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/server/types"
)

// Target is what a filter is rendered as: a language ("sql" or "ucast") and
// a dialect or form ("postgresql", "all").
type Target struct {
	Lang    string
	Dialect string
}

const mediaPrefix = "application/vnd.opa."

// ParseTarget reads a target as the CLI writes it ("sql+postgresql",
// "ucast+all") or as OPA's Accept media type
// ("application/vnd.opa.sql.postgresql+json").
func ParseTarget(s string) (Target, error) {
	var t Target
	if rest, ok := strings.CutPrefix(s, mediaPrefix); ok {
		rest, ok = strings.CutSuffix(rest, "+json")
		if !ok {
			return Target{}, fmt.Errorf("filter: unknown target %q", s)
		}
		t.Lang, t.Dialect, _ = strings.Cut(rest, ".")
	} else {
		t.Lang, t.Dialect, _ = strings.Cut(s, "+")
	}
	switch t.Lang {
	case "sql":
		if _, err := Dialect(t.Dialect).flavor(); err == nil {
			return t, nil
		}
	case "ucast":
		switch UCASTForm(t.Dialect) {
		case UCASTAll, UCASTMinimal, UCASTPrisma:
			return t, nil
		}
	}
	return Target{}, fmt.Errorf("filter: unknown target %q (sql+postgresql, sql+mysql, sql+sqlite, sql+sqlserver, ucast+all, ucast+minimal, ucast+prisma)", s)
}

// MediaType is the target's media type in OPA's Compile API, such as
// application/vnd.opa.sql.postgresql+json.
func (t Target) MediaType() string {
	return mediaPrefix + t.Lang + "." + t.Dialect + "+json"
}

// String is the target as the CLI writes it, such as "sql+postgresql".
func (t Target) String() string { return t.Lang + "+" + t.Dialect }

// ResponseOptions are a Compile API request's options.
type ResponseOptions struct {
	// Parameterized renders SQL with placeholders and adds "args".
	Parameterized bool
	// Mappings is the request's targetSQLTableMappings.
	Mappings map[string]any
}

// Result returns the value OPA's Compile API answers under "result" for t:
// {"query": "WHERE ..."} ({"query": ..., "args": [...]} when
// parameterized), or nil for a filter that selects no row. It is what a
// decision log records as the decision's result.
func (f *Filter) Result(t Target, opts ResponseOptions) (any, error) {
	if f.never {
		return nil, nil
	}
	switch t.Lang {
	case "sql":
		q, err := f.SQL(Dialect(t.Dialect), SQLOptions{Parameterized: opts.Parameterized, Mappings: opts.Mappings})
		if err != nil {
			return nil, err
		}
		if opts.Parameterized {
			args := q.Args
			if args == nil {
				args = []any{}
			}
			return paramResult{Query: q.Where, Args: args}, nil
		}
		return queryResult{Query: q.Where}, nil
	case "ucast":
		u, err := f.UCAST(UCASTForm(t.Dialect), opts.Mappings)
		if err != nil {
			return nil, err
		}
		return queryResult{Query: u}, nil
	}
	return nil, fmt.Errorf("filter: unknown target %q", t.String())
}

type queryResult struct {
	Query any `json:"query"`
}

type paramResult struct {
	Query string `json:"query"`
	Args  []any  `json:"args"`
}

// Response returns the body OPA's Compile API (POST /v1/compile/{path})
// answers for t, followed by a newline as OPA writes it:
// {"result":{"query":"WHERE ..."}} for a condition, {"result":{"query":""}}
// (SQL) or {"result":{"query":{}}} (UCAST) for always, and {} for never.
// With opts.Parameterized the result also has "args":[...].
func (f *Filter) Response(t Target, opts ResponseOptions) ([]byte, error) {
	res, err := f.Result(t, opts)
	if err != nil {
		return nil, err
	}
	var body struct {
		Result any `json:"result,omitempty"`
	}
	body.Result = res
	var b bytes.Buffer
	// OPA's encoder: HTML-escaped, one line, a newline at the end.
	if err := json.NewEncoder(&b).Encode(body); err != nil {
		return nil, fmt.Errorf("filter: encode response: %w", err)
	}
	return b.Bytes(), nil
}

// ErrorResponse returns the HTTP status and body OPA's Compile API answers
// for err, a failure of [Compiler.Compile] or of rendering: 400 with
// {"code":"evaluation_error","message":...,"errors":[...]} and the
// untranslatable expression's location for an *Error, 400 for invalid
// mappings, 500 otherwise.
func ErrorResponse(err error) (status int, body []byte) {
	var fe *Error
	switch {
	case errors.As(err, &fe):
		e := &ast.Error{Code: "pe_fragment_error", Message: fe.Reason}
		if fe.Expr != "" {
			e.Message = fe.Expr + ": " + fe.Reason
		}
		if fe.Target != "" {
			e.Message += " (target " + fe.Target + ")"
		}
		if fe.Line > 0 {
			e.Location = &ast.Location{File: fe.File, Row: fe.Line, Col: fe.Column}
		}
		v := types.NewErrorV1(types.CodeEvaluation, types.MsgEvaluationError).WithASTErrors([]*ast.Error{e})
		return http.StatusBadRequest, append(v.Bytes(), '\n')
	case errors.Is(err, ErrInvalidMappings):
		return http.StatusBadRequest, append(types.NewErrorV1(types.CodeInvalidParameter, "%s", err.Error()).Bytes(), '\n')
	}
	return http.StatusInternalServerError, append(types.NewErrorV1(types.CodeInternal, "%s", err.Error()).Bytes(), '\n')
}
