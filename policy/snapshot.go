package policy

import (
	"maps"
	"slices"

	"github.com/open-policy-agent/opa/v1/ast"
)

// A Plan says, at one moment, which revision an evaluator decides with and
// what its decisions read of their input, so that a caller builds only
// those fields. [Engine.Plan] gives one; evaluators that wrap or combine
// others (a decision cache, a fallback, a remote OPA) give their own (see
// authz.Planner), so that what a plan promises survives the wrapping.
//
// A plan does not evaluate: whoever asks for it still calls the
// evaluator's own Eval, so a wrapper's Eval always runs. A reload can come
// between the plan and the evaluation; the decision then names another
// revision (Decision.Revision), and a caller that built only the plan's
// Fields builds the whole input and asks again (package authz does).
type Plan struct {
	// Revision names the revision decisions are made with. It is "" when
	// no single, known revision decides (a remote OPA server, whose policy
	// can change unseen): nothing may then be cached or compared across
	// revisions on its account.
	Revision string
	// Fields is what an evaluation may read of its input, key by key: the
	// fields to build. It is nil when the whole input may be read (or the
	// evaluator cannot tell).
	Fields *InputFields
	// RevisionFields is what the revision named by Revision reads: a
	// decision whose Revision is that revision depends on these fields
	// only. It is Fields, unless the evaluator may also ask an evaluator
	// of another revision (a fallback), whose fields Fields adds.
	RevisionFields *InputFields
	// Decision names the decision document, such as data.httpapi.authz, for
	// decision logs; "" when the evaluator does not say.
	Decision string
}

// Plan returns the plan of the revision being served. Before the first
// successful Load it returns ErrNoPolicy, with a plan that names only the
// decision document. Taking a plan costs nothing per request: it is made
// once per revision.
func (e *Engine) Plan() (Plan, error) {
	c := e.current.Load()
	if c == nil {
		return Plan{Decision: e.decision}, ErrNoPolicy
	}
	return c.plan, nil
}

// InputFields is what a policy may read of an object in its input, as a
// tree of keys: for a policy that refers to input.method and
// input.user.claims.groups, the input's tree holds method, and user, under
// which claims, under which groups. Reading stops at the first part of a
// reference that is not a string known before evaluation: input.user.claims[k]
// reads all of claims, input.path_segments[0] all of path_segments. A nil
// *InputFields is an object read as a whole: every key, and all below it.
type InputFields struct {
	keys map[string]*InputFields // a key read whole maps to nil
}

// Reads reports whether the policy may read key, or anything under it.
func (f *InputFields) Reads(key string) bool {
	if f == nil {
		return true
	}
	_, ok := f.keys[key]
	return ok
}

// Under returns what the policy may read under key: nil (everything) when it
// reads key as a whole. Ask Reads first: a key never read has nothing under it
// either.
func (f *InputFields) Under(key string) *InputFields {
	if f == nil {
		return nil
	}
	return f.keys[key]
}

// Keys returns the keys the policy may read, sorted; nil when f is nil
// (every key).
func (f *InputFields) Keys() []string {
	if f == nil {
		return nil
	}
	return slices.Sorted(maps.Keys(f.keys))
}

// Union returns what a policy reading f or g may read: for an evaluator
// that may ask either of two policies, such as a fallback. It never
// modifies f or g.
func (f *InputFields) Union(g *InputFields) *InputFields {
	if f == nil || g == nil {
		return nil
	}
	u := &InputFields{keys: make(map[string]*InputFields, len(f.keys)+len(g.keys))}
	for k, sub := range f.keys {
		u.keys[k] = sub
	}
	for k, sub := range g.keys {
		if mine, ok := u.keys[k]; ok {
			u.keys[k] = mine.Union(sub)
		} else {
			u.keys[k] = sub
		}
	}
	return u
}

// add records that the policy reads path (string keys below input) and
// everything under its end.
func (f *InputFields) add(path ast.Ref) {
	for i, t := range path {
		key := string(t.Value.(ast.String))
		next, seen := f.keys[key]
		switch {
		case seen && next == nil:
			return // already read whole
		case i == len(path)-1:
			f.keys[key] = nil
			return
		case !seen:
			next = &InputFields{keys: map[string]*InputFields{}}
			f.keys[key] = next
		}
		f = next
	}
}

// inputFields returns what modules and the decision reference
// (data.tenants[input.tenant]) read of the input, or nil when some module
// reads the input whole or by a key computed at evaluation time. It walks
// compiled modules, in which imports such as "import input.user" are already
// resolved to input.user refs.
func inputFields(modules map[string]*ast.Module, decision ast.Ref) *InputFields {
	root := &InputFields{keys: map[string]*InputFields{}}
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
			path := staticKeys(v[1:])
			if len(path) == 0 {
				// input, or input[k] with k known only at evaluation.
				whole = true
				return true
			}
			root.add(path)
			for _, x := range v[1+len(path):] {
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
	return root
}

// staticKeys is the leading part of ref made of strings: the object keys
// known before evaluation.
func staticKeys(ref ast.Ref) ast.Ref {
	for i, t := range ref {
		if _, ok := t.Value.(ast.String); !ok {
			return ref[:i]
		}
	}
	return ref
}
