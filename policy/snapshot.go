package policy

import (
	"context"

	"github.com/open-policy-agent/opa/v1/ast"
)

// Snapshot is the revision an Engine served when it was taken. It tells
// which fields of the input that revision reads, so that a caller builds
// only those, and evaluates with that same revision even if a new one is
// loaded in between: the fields and the policy always match. A Snapshot
// never changes and is safe for concurrent use; the same revision always
// gives the same one.
type Snapshot struct {
	e *Engine
	c *compiled
}

// Snapshot returns the revision being served, or ErrNoPolicy before the
// first successful Load.
func (e *Engine) Snapshot() (*Snapshot, error) {
	c := e.current.Load()
	if c == nil {
		return nil, ErrNoPolicy
	}
	return c.snapshot, nil
}

// Reads reports whether the policy may read the top-level input field
// (input.<field>). It is false only when no rule, function or test of the
// policy refers to that field and none reads the input as a whole (such as
// walk(input, ...)) or by a computed key (input[k]).
func (s *Snapshot) Reads(field string) bool {
	return s.c.inputFields == nil || s.c.inputFields[field]
}

// Revision is the snapshot's policy revision.
func (s *Snapshot) Revision() string { return s.c.revision }

// Eval is [Engine.Eval] on the snapshot's revision.
func (s *Snapshot) Eval(ctx context.Context, input ast.Value) (Decision, error) {
	return s.e.eval(ctx, s.c, input, nil)
}

// inputFields returns the top-level input fields that modules and the
// decision reference (data.tenants[input.tenant]) refer to, or nil when
// some module reads the input whole or by a key computed at evaluation time.
// It walks compiled modules, in which imports such as "import input.user"
// are already resolved to input.user refs.
func inputFields(modules map[string]*ast.Module, decision ast.Ref) map[string]bool {
	fields := map[string]bool{}
	whole := false
	var visit func(t *ast.Term) bool
	visit = func(t *ast.Term) bool {
		if whole {
			return true
		}
		switch v := t.Value.(type) {
		case ast.Var:
			// input on its own: passed to a function, printed, walked.
			whole = whole || v.Equal(ast.InputRootDocument.Value)
		case ast.Ref:
			if !v[0].Equal(ast.InputRootDocument) {
				return false
			}
			var name ast.String
			if len(v) > 1 {
				name, _ = v[1].Value.(ast.String)
			}
			if name == "" {
				// input, or input[k] with k known only at evaluation.
				whole = true
				return true
			}
			fields[string(name)] = true
			for _, x := range v[2:] {
				ast.WalkTerms(x, visit)
			}
			return true
		}
		return false
	}
	for _, m := range modules {
		ast.WalkTerms(m, visit)
	}
	ast.WalkTerms(decision, visit)
	if whole {
		return nil
	}
	return fields
}
