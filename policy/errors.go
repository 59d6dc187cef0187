package policy

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/loader"
)

// ErrNoPolicy is returned by [Engine.Eval] before any policy has been loaded.
var ErrNoPolicy = errors.New("policy: no policy loaded")

// ErrUndefinedDecision is returned (wrapped) when nothing in a policy
// defines the decision it is asked for: usually a wrong package name or
// decision path.
var ErrUndefinedDecision = errors.New("policy: undefined decision")

// packageHint names the packages a policy does define, so that a wrong
// decision path is easy to correct.
func packageHint(p *Policy) string {
	seen := map[string]bool{}
	var pkgs []string
	for _, m := range p.Modules {
		if m.Package == nil {
			continue
		}
		name := strings.TrimPrefix(m.Package.Path.String(), "data.")
		if !seen[name] && !strings.HasSuffix(name, "_test") {
			seen[name] = true
			pkgs = append(pkgs, name)
		}
	}
	if len(pkgs) == 0 {
		return " (is the package name right?)"
	}
	sort.Strings(pkgs)
	if len(pkgs) > 5 {
		pkgs = append(pkgs[:5], "...")
	}
	return " (the policy's packages: " + strings.Join(pkgs, ", ") + ")"
}

// Problem is one parse or compile error, located in its source file.
type Problem struct {
	File    string // the source file, when known
	Line    int    // 1-based; 0 when unknown
	Column  int    // 1-based; meaningful only with Line
	Code    string // OPA's error code, such as rego_parse_error
	Message string // OPA's description of the problem
}

// String formats p as "file:line:column: code: message", leaving out what is
// unknown.
func (p Problem) String() string {
	var b strings.Builder
	if p.File != "" {
		fmt.Fprintf(&b, "%s:", p.File)
	}
	if p.Line > 0 {
		fmt.Fprintf(&b, "%d:%d:", p.Line, p.Column)
	}
	if b.Len() > 0 {
		b.WriteByte(' ')
	}
	if p.Code != "" {
		b.WriteString(p.Code + ": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// CompileError is returned when a policy fails to parse or compile. Each
// problem names its file, line and column.
type CompileError struct {
	// Problems are every error OPA reported, in its order.
	Problems []Problem
}

// Error joins the problems, each in the form of [Problem.String].
func (e *CompileError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return "policy: " + strings.Join(lines, "; ")
}

// locate turns OPA's parse, load and compile errors into a *CompileError
// whose message names file, line and column. Other errors are returned as
// they are.
func locate(err error) error {
	var problems []Problem
	collect(err, &problems)
	if len(problems) == 0 {
		return err
	}
	return &CompileError{Problems: problems}
}

func collect(err error, into *[]Problem) {
	var astErrs ast.Errors
	var astErr *ast.Error
	var loadErrs loader.Errors
	switch {
	case errors.As(err, &loadErrs):
		for _, e := range loadErrs {
			before := len(*into)
			collect(e, into)
			if len(*into) == before {
				*into = append(*into, Problem{Message: e.Error()})
			}
		}
	case errors.As(err, &astErrs):
		for _, e := range astErrs {
			*into = append(*into, problemOf(e))
		}
	case errors.As(err, &astErr):
		*into = append(*into, problemOf(astErr))
	}
}

func problemOf(e *ast.Error) Problem {
	p := Problem{Code: e.Code, Message: e.Message}
	if e.Location != nil {
		p.File, p.Line, p.Column = e.Location.File, e.Location.Row, e.Location.Col
	}
	return p
}
