package main

import (
	"context"
	"errors"
	"net/http"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/rego/compile"
	"github.com/open-policy-agent/opa/v1/storage/inmem"

	"github.com/regoguard/regoguard/policy"
)

// opaFilters compiles filters with OPA's own v1/rego/compile: a stand-in
// until the filter package is merged.
type opaFilters struct {
	p *policy.Policy
}

func (o *opaFilters) compileFilter(ctx context.Context, req *filterRequest) (filterAnswer, error) {
	// Parameterized: inlined until the filter package is merged.
	var opts []compile.CompileOption
	for _, t := range req.Targets {
		opts = append(opts, compile.Target(t.Target, t.Dialect))
	}
	unks := make([]*ast.Term, len(req.Unknowns))
	for i, u := range req.Unknowns {
		unks[i] = ast.NewTerm(u)
	}
	modules := make([]func(*rego.Rego), 0, len(o.p.Modules))
	for name, m := range o.p.Modules {
		modules = append(modules, rego.ParsedModule(m))
		_ = name
	}
	opts = append(opts, compile.ParsedUnknowns(unks...), compile.ParsedQuery(ast.NewBody(ast.NewExpr(ast.NewTerm(req.Query)))),
		compile.Mappings(req.Mappings),
		compile.Rego(append(modules, rego.Store(inmem.NewFromObject(o.p.Data)))...))
	prep, err := compile.New(opts...).Prepare(ctx)
	if err != nil {
		var errs ast.Errors
		if errors.As(err, &errs) {
			return nil, &compileAPIError{Status: http.StatusBadRequest, Code: codeInvalidParameter, Message: "error(s) occurred while compiling module(s)", Errors: errs}
		}
		return nil, err
	}
	var in []rego.EvalOption
	if req.Input != nil {
		in = append(in, rego.EvalParsedInput(req.Input))
	}
	fs, err := prep.Compile(ctx, in...)
	if err != nil {
		var errs ast.Errors
		switch {
		case errors.Is(err, compile.ErrInvalidMappings):
			return nil, badCompileRequest("%v", err)
		case errors.As(err, &errs):
			return nil, &compileAPIError{Status: http.StatusBadRequest, Code: codeEvaluation, Message: msgEvaluationError, Errors: errs}
		}
		return nil, err
	}
	ans := filterAnswer{}
	for _, t := range req.Targets {
		if f := fs.For(t.Target, t.Dialect); f.Query != nil {
			ans[t] = &filterResult{Query: f.Query}
		}
	}
	return ans, nil
}
