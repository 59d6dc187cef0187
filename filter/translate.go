package filter

import (
	"fmt"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
)

// maxDepth bounds the nesting of negated helper rules followed.
const maxDepth = 32

// translator turns the result of partial evaluation into a condition.
type translator struct {
	rule     string
	unknowns map[string]bool // table names: docs for input.docs
	support  map[string][]*ast.Rule
	// origin holds the policy's compiled expressions by location, to tell
	// a field the policy names in a negation from one partial evaluation
	// copied there.
	origin *originIndex
}

// originIndex indexes the policy's compiled expressions.
type originIndex struct {
	// exprs holds the expressions by location.
	exprs map[locKey][]*ast.Expr
	// rowVars holds the variables bound to a whole unknown (d := input.docs)
	// and what they are bound to. Compiled local variables are unique
	// across the policy's modules (__local3__).
	rowVars map[ast.Var]ast.Ref
}

type locKey struct {
	file     string
	row, col int
}

// origins indexes the expressions of the compiled modules by location, and
// the variables bound to a whole document of the input (d := input.docs).
func origins(c *ast.Compiler) *originIndex {
	out := &originIndex{exprs: map[locKey][]*ast.Expr{}, rowVars: map[ast.Var]ast.Ref{}}
	for _, m := range c.Modules {
		ast.WalkExprs(m, func(e *ast.Expr) bool {
			if e.Location != nil {
				k := locKey{e.Location.File, e.Location.Row, e.Location.Col}
				out.exprs[k] = append(out.exprs[k], e)
			}
			if v, r, ok := rowBinding(e); ok {
				out.rowVars[v] = r
			}
			return false
		})
	}
	return out
}

// rowBinding reports whether e binds a variable to a whole document of the
// input, as in d := input.docs (compiled as __local0__ = input.docs).
func rowBinding(e *ast.Expr) (ast.Var, ast.Ref, bool) {
	if e.Negated || !e.IsCall() || len(e.With) > 0 {
		return "", nil, false
	}
	switch e.Operator().String() {
	case ast.Equality.Name, ast.Assign.Name:
	default:
		return "", nil, false
	}
	ops := e.Operands()
	if len(ops) != 2 {
		return "", nil, false
	}
	for i := range 2 {
		v, ok1 := ops[i].Value.(ast.Var)
		r, ok2 := ops[1-i].Value.(ast.Ref)
		if ok1 && ok2 && !v.IsWildcard() && len(r) == 2 && r.HasPrefix(ast.InputRootRef) {
			if _, ok := r[1].Value.(ast.String); ok {
				return v, r, true
			}
		}
	}
	return "", nil, false
}

// lazyFields returns the fields of the row that OPA reads under the not in
// the policy's expression at e's location, when it reads one through a
// variable bound to the whole row (d.archived with d := input.docs): then
// every field the expression names, and an absent one makes the negated
// expression true. Otherwise none: a field passed to a call or bound to a
// variable of its own is read before the not, and an absent one leaves
// the expression undefined.
func (t *translator) lazyFields(e *ast.Expr) map[field]bool {
	if e.Location == nil || t.origin == nil {
		return nil
	}
	var out map[field]bool
	direct := map[field]bool{}
	for _, o := range t.origin.exprs[locKey{e.Location.File, e.Location.Row, e.Location.Col}] {
		ast.WalkRefs(o, func(r ast.Ref) bool {
			if f, ok := t.field(r); ok {
				direct[f] = true
				return false
			}
			v, ok := r[0].Value.(ast.Var)
			if !ok || len(r) != 2 {
				return false
			}
			row, ok := t.origin.rowVars[v]
			if !ok {
				return false
			}
			if f, ok := t.field(append(row.Copy(), r[1])); ok {
				if out == nil {
					out = map[field]bool{}
				}
				out[f] = true
			}
			return false
		})
	}
	if out != nil {
		// Measured against OPA's evaluation (named case
		// row_variable_beside_direct_field_absent): beside a field read
		// through the row variable, a field named directly in the same
		// expression is read under the not as well.
		for f := range direct {
			out[f] = true
		}
	}
	return out
}

func newTranslator(rule string, unknowns []ast.Ref, pq *rego.PartialQueries, origin *originIndex) *translator {
	t := &translator{rule: rule, unknowns: map[string]bool{}, support: map[string][]*ast.Rule{}, origin: origin}
	for _, u := range unknowns {
		t.unknowns[string(u[1].Value.(ast.String))] = true
	}
	for _, m := range pq.Support {
		for _, r := range m.Rules {
			ref := supportRef(m, r)
			t.support[ref.String()] = append(t.support[ref.String()], r)
		}
	}
	return t
}

// supportRef is the full reference of a support rule: data.partial.x.
func supportRef(m *ast.Module, r *ast.Rule) ast.Ref {
	head := r.Head.Ref()
	ref := m.Package.Path.Copy()
	if v, ok := head[0].Value.(ast.Var); ok {
		ref = append(ref, ast.StringTerm(string(v)))
	} else {
		ref = append(ref, head[0])
	}
	return append(ref, head[1:]...)
}

// queries translates the disjunction of the queries: none is never, an
// empty one is always.
func (t *translator) queries(qs []ast.Body) (*node, error) {
	if len(qs) == 0 {
		return nodeFalse, nil
	}
	kids := make([]*node, 0, len(qs))
	for _, q := range qs {
		n, err := t.body(q, 0)
		if err != nil {
			return nil, err
		}
		kids = append(kids, n)
	}
	return or(kids...), nil
}

func (t *translator) body(b ast.Body, depth int) (*node, error) {
	kids := make([]*node, 0, len(b))
	vars := bodyVars(b)
	for _, e := range b {
		n, err := t.expr(e, vars, depth)
		if err != nil {
			return nil, err
		}
		kids = append(kids, n)
	}
	return and(kids...), nil
}

// bodyVars counts the occurrences of each variable in a body: a variable
// bound once (x = input.docs.a) only tests that the field exists.
func bodyVars(b ast.Body) map[ast.Var]int {
	counts := map[ast.Var]int{}
	ast.WalkVars(b, func(v ast.Var) bool {
		counts[v]++
		return false
	})
	return counts
}

func (t *translator) fail(e *ast.Expr, format string, args ...any) error {
	err := &Error{Rule: t.rule, Expr: exprText(e), Reason: fmt.Sprintf(format, args...)}
	if e != nil && e.Location != nil {
		err.File, err.Line, err.Column = e.Location.File, e.Location.Row, e.Location.Col
	}
	return err
}

// exprText is the expression as the policy writes it, else as partial
// evaluation left it.
func exprText(e *ast.Expr) string {
	if e == nil {
		return ""
	}
	if e.Location != nil && len(e.Location.Text) > 0 {
		return string(e.Location.Text)
	}
	c := e.Copy()
	c.Index = 0
	return c.String()
}

func (t *translator) expr(e *ast.Expr, vars map[ast.Var]int, depth int) (*node, error) {
	switch {
	case len(e.With) > 0:
		return nil, t.fail(e, "`with` cannot be translated into a filter")
	case e.IsEvery():
		return nil, t.fail(e, "`every` over the row cannot be translated into a filter")
	}
	if term, ok := e.Terms.(*ast.Term); ok {
		return t.term(e, term, vars, depth)
	}
	if !e.IsCall() {
		return nil, t.fail(e, "this expression cannot be translated into a filter")
	}
	name := e.Operator().String()
	ops := e.Operands()
	switch name {
	case "internal.print":
		// print() is always true; its output is not the filter's concern.
		return t.negated(e, nodeTrue, false), nil
	case ast.Equality.Name, ast.Equal.Name, ast.Assign.Name:
		return t.equality(e, name, ops, vars)
	case ast.NotEqual.Name, ast.LessThan.Name, ast.LessThanEq.Name, ast.GreaterThan.Name, ast.GreaterThanEq.Name:
		leaf, err := t.compare(e, name, ops)
		if err != nil {
			return nil, err
		}
		return t.negated(e, leaf, true), nil
	case ast.Member.Name:
		leaf, err := t.member(e, ops)
		if err != nil {
			return nil, err
		}
		return t.negated(e, leaf, true), nil
	case ast.StartsWith.Name, ast.EndsWith.Name, ast.Contains.Name:
		leaf, err := t.stringOp(e, name, ops)
		if err != nil {
			return nil, err
		}
		return t.negated(e, leaf, true), nil
	}
	return nil, t.fail(e, "%s on a field of the row cannot be translated into a filter (supported: ==, !=, <, <=, >, >=, in, startswith, endswith, contains)", name)
}

// negated applies the expression's not. OPA evaluates a call's operands
// before it negates, so a NULL field leaves `not call(...)` undefined: the
// row is not selected. An equality (=) or a reference is evaluated under
// the not, so a NULL field makes it true. Partial evaluation writes one
// more case as an equality or a reference although it is not one: a field
// passed to a function or bound to a variable (`x := input.docs.a; not x`)
// is copied into the negated expression, which OPA's evaluation never
// reaches when the field is absent. Those are told by the policy's own
// expression at the same location, which does not name the field (or by
// having no location); they are negated as calls.
func (t *translator) negated(e *ast.Expr, n *node, call bool) *node {
	if !e.Negated {
		return n
	}
	fields := t.exprFields(e)
	if !call && t.named(e, fields) {
		return negate(n)
	}
	// Fields read through a variable bound to the whole row are read
	// under the not; the others must be present.
	lazy := t.lazyFields(e)
	kids := make([]*node, 0, len(fields)+1)
	for _, f := range fields {
		if !lazy[f] {
			kids = append(kids, &node{kind: kNotNull, field: f})
		}
	}
	if n.kind == kLeaf && len(kids) == len(fields) {
		return notDefined(n)
	}
	return and(append(kids, negate(n))...)
}

// named reports whether the policy's expression at e's location names
// every field of fields itself (input.docs.a), rather than through a
// variable or a function's argument.
func (t *translator) named(e *ast.Expr, fields []field) bool {
	if e.Location == nil {
		return false
	}
	if t.origin == nil {
		return false
	}
	origins := t.origin.exprs[locKey{e.Location.File, e.Location.Row, e.Location.Col}]
	for _, o := range origins {
		if term, ok := o.Terms.(*ast.Term); ok && o.Negated {
			if r, ok := term.Value.(ast.Ref); ok && r.HasPrefix(ast.DefaultRootRef) {
				// not of a rule: true whenever the rule is not, absent
				// fields included.
				return true
			}
		}
	}
	for _, f := range fields {
		found := false
		for _, o := range origins {
			ast.WalkRefs(o, func(r ast.Ref) bool {
				if g, ok := t.field(r); ok && g == f {
					found = true
				}
				return found
			})
		}
		if !found {
			return false
		}
	}
	return len(origins) > 0
}

// exprFields returns the fields of the row an expression's operands name.
func (t *translator) exprFields(e *ast.Expr) []field {
	var out []field
	seen := map[field]bool{}
	ast.WalkRefs(e, func(r ast.Ref) bool {
		if f, ok := t.field(r); ok && !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
		return false
	})
	return out
}

// term translates an expression that is a single term: a boolean field, a
// helper rule left by partial evaluation, or a constant.
func (t *translator) term(e *ast.Expr, term *ast.Term, vars map[ast.Var]int, depth int) (*node, error) {
	switch v := term.Value.(type) {
	case ast.Boolean:
		n := nodeFalse
		if v {
			n = nodeTrue
		}
		return t.negated(e, n, false), nil
	case ast.Ref:
		if f, ok := t.field(v); ok {
			return t.negated(e, &node{kind: kLeaf, op: opTrue, field: f}, false), nil
		}
		if rules, ok := t.support[v.String()]; ok {
			n, err := t.supportRules(e, v, rules, depth)
			if err != nil {
				return nil, err
			}
			if e.Negated {
				// not of a helper rule: true when none of its bodies is.
				return negate(n), nil
			}
			return n, nil
		}
		return nil, t.fail(e, "reference %v cannot be translated into a filter (a rule with `else`, or a function, depending on the row?)", v)
	case ast.Call:
		// A call written as a term (as support rules hold them): the same
		// as the call expression.
		call := &ast.Expr{Terms: []*ast.Term(v), Negated: e.Negated, Location: e.Location}
		return t.expr(call, vars, depth)
	}
	if ast.IsConstant(term.Value) {
		// A defined value other than false is true.
		return t.negated(e, nodeTrue, false), nil
	}
	return nil, t.fail(e, "this expression cannot be translated into a filter")
}

// supportRules translates a helper rule that partial evaluation kept
// (typically one that is negated): true when one of its bodies is.
func (t *translator) supportRules(e *ast.Expr, ref ast.Ref, rules []*ast.Rule, depth int) (*node, error) {
	if depth >= maxDepth {
		return nil, t.fail(e, "helper rules nest deeper than %d", maxDepth)
	}
	kids := make([]*node, 0, len(rules))
	for _, r := range rules {
		switch {
		case r.Default && r.Head.Value != nil && r.Head.Value.Value.Compare(ast.InternedTerm(false).Value) == 0:
			// default x := false: false is not true, and not x is true
			// exactly when no other body is (x false or undefined alike).
			continue
		case r.Default:
			return nil, t.fail(e, "the default value of %v cannot be translated into a filter", ref)
		case r.Else != nil:
			return nil, t.fail(e, "a rule with `else` (%v) cannot be translated into a filter", ref)
		case len(r.Head.Args) > 0:
			return nil, t.fail(e, "function %v of the row cannot be translated into a filter", ref)
		case r.Head.RuleKind() != ast.SingleValue || len(r.Head.Ref()) > 1:
			// A set is defined even when empty: its bodies do not say
			// whether it is true.
			return nil, t.fail(e, "the multi-value rule %v cannot be translated into a filter", ref)
		}
		if r.Head.Value != nil {
			switch v := r.Head.Value.Value.(type) {
			case ast.Boolean:
				if !v {
					continue // a false value is not true whatever the body
				}
			default:
				if !r.Head.Value.IsGround() {
					return nil, t.fail(e, "the value of %v depends on the row; only boolean rules can be translated", ref)
				}
			}
		}
		n, err := t.body(r.Body, depth+1)
		if err != nil {
			return nil, err
		}
		kids = append(kids, n)
	}
	return or(kids...), nil
}

// field reports whether ref is a column of an unknown: input.docs.owner.
func (t *translator) field(ref ast.Ref) (field, bool) {
	if len(ref) != 3 || !ref[0].Equal(ast.InputRootDocument) {
		return field{}, false
	}
	table, ok1 := ref[1].Value.(ast.String)
	col, ok2 := ref[2].Value.(ast.String)
	if !ok1 || !ok2 || !t.unknowns[string(table)] {
		return field{}, false
	}
	return field{table: string(table), column: string(col)}, true
}

// operand classifies a call operand: a field, or a ground value.
func (t *translator) operand(e *ast.Expr, term *ast.Term) (f field, isField bool, v ast.Value, err error) {
	if ref, ok := term.Value.(ast.Ref); ok {
		if f, ok := t.field(ref); ok {
			return f, true, nil, nil
		}
		if ref.HasPrefix(ast.InputRootRef) && len(ref) > 1 {
			if tb, ok := ref[1].Value.(ast.String); ok && t.unknowns[string(tb)] {
				if len(ref) == 2 {
					return field{}, false, nil, t.fail(e, "the whole row %v cannot be compared; compare its fields", ref)
				}
				return field{}, false, nil, t.fail(e, "%v is not a column: only input.<table>.<column> can be translated (nested objects, arrays and computed keys cannot)", ref)
			}
		}
		return field{}, false, nil, t.fail(e, "%v is not known at compile time", ref)
	}
	if c, ok := term.Value.(ast.Call); ok {
		return field{}, false, nil, t.fail(e, "%v of the row cannot be translated into a filter (supported: ==, !=, <, <=, >, >=, in, startswith, endswith, contains on its fields)", c[0])
	}
	if !ast.IsConstant(term.Value) {
		return field{}, false, nil, t.fail(e, "%v is not known at compile time", term)
	}
	return field{}, false, term.Value, nil
}

var compareOps = map[string]op{
	ast.Equality.Name: opEq, ast.Equal.Name: opEq, ast.Assign.Name: opEq,
	ast.NotEqual.Name: opNe, ast.LessThan.Name: opLt, ast.LessThanEq.Name: opLte,
	ast.GreaterThan.Name: opGt, ast.GreaterThanEq.Name: opGte,
}

var mirror = map[op]op{opLt: opGt, opLte: opGte, opGt: opLt, opGte: opLte, opEq: opEq, opNe: opNe}

// equality translates = and ==.
func (t *translator) equality(e *ast.Expr, name string, ops []*ast.Term, vars map[ast.Var]int) (*node, error) {
	if len(ops) != 2 {
		return nil, t.fail(e, "malformed equality")
	}
	// x = input.docs.a, with x used nowhere else: the field exists.
	for i := range 2 {
		v, ok := ops[i].Value.(ast.Var)
		if !ok {
			continue
		}
		f, isField, _, err := t.operand(e, ops[1-i])
		if err != nil || !isField {
			break
		}
		if vars[v] > 1 && !v.IsWildcard() {
			return nil, t.fail(e, "variable %v bound to a field of the row is used in other expressions; only direct comparisons of fields can be translated", v)
		}
		return t.negated(e, &node{kind: kNotNull, field: f}, name != ast.Equality.Name), nil
	}
	leaf, err := t.compare(e, name, ops)
	if err != nil {
		return nil, err
	}
	// Unification (=) is evaluated under the not; == is a call.
	return t.negated(e, leaf, name != ast.Equality.Name), nil
}

// compare translates a comparison of a field with a value or another field.
func (t *translator) compare(e *ast.Expr, name string, ops []*ast.Term) (*node, error) {
	if len(ops) != 2 {
		return nil, t.fail(e, "malformed comparison")
	}
	o := compareOps[name]
	lf, lIs, lv, err := t.operand(e, ops[0])
	if err != nil {
		return nil, err
	}
	rf, rIs, rv, err := t.operand(e, ops[1])
	if err != nil {
		return nil, err
	}
	switch {
	case lIs && rIs:
		other := rf
		return &node{kind: kLeaf, op: o, field: lf, other: &other}, nil
	case rIs:
		lf, o = rf, mirror[o]
	case !lIs:
		return nil, t.fail(e, "no field of the row in this comparison")
	default:
		lv = rv
	}
	return t.scalarCompare(e, o, lf, lv)
}

// scalarCompare compares field f (a column holding one type of scalar)
// with the value v.
func (t *translator) scalarCompare(e *ast.Expr, o op, f field, v ast.Value) (*node, error) {
	switch v.(type) {
	case ast.Null, ast.Object, ast.Set, *ast.Array:
		// A column never holds null (NULL is an absent field) nor a
		// collection: equal never, different whenever present.
		switch o {
		case opEq:
			return nodeFalse, nil
		case opNe:
			return &node{kind: kNotNull, field: f}, nil
		}
		return nil, t.fail(e, "ordering a field against %v cannot be translated into a filter", v)
	case ast.Boolean:
		if o != opEq && o != opNe {
			return nil, t.fail(e, "ordering a field against a boolean cannot be translated into a filter")
		}
	case ast.String, ast.Number:
	default:
		return nil, t.fail(e, "%v cannot be compared with a field in a filter", v)
	}
	if _, ok := v.(ast.Number); ok {
		if _, err := numberArg(v.(ast.Number)); err != nil {
			return nil, t.fail(e, "%v", err)
		}
	}
	return &node{kind: kLeaf, op: o, field: f, value: v}, nil
}

// member translates input.docs.x in {...}.
func (t *translator) member(e *ast.Expr, ops []*ast.Term) (*node, error) {
	if len(ops) != 2 {
		return nil, t.fail(e, "malformed `in`")
	}
	f, isField, _, err := t.operand(e, ops[0])
	if err != nil {
		return nil, err
	}
	if !isField {
		return nil, t.fail(e, "`in` over a field of the row (an array or set column) cannot be translated into a filter")
	}
	_, collIsField, coll, err := t.operand(e, ops[1])
	if err != nil {
		return nil, err
	}
	if collIsField {
		return nil, t.fail(e, "`in` over a field of the row cannot be translated into a filter")
	}
	var elems []*ast.Term
	switch c := coll.(type) {
	case ast.Set:
		c.Foreach(func(el *ast.Term) { elems = append(elems, el) })
	case *ast.Array:
		for i := range c.Len() {
			elems = append(elems, c.Elem(i))
		}
	case ast.Object:
		// x in object tests the object's values.
		for _, k := range c.Keys() {
			elems = append(elems, c.Get(k))
		}
	default:
		return nil, t.fail(e, "`in` needs a collection on its right, not %v", coll)
	}
	values := make([]ast.Value, 0, len(elems))
	seen := map[string]bool{}
	for _, el := range elems {
		switch v := el.Value.(type) {
		case ast.String, ast.Boolean:
		case ast.Number:
			if _, err := numberArg(v); err != nil {
				return nil, t.fail(e, "%v", err)
			}
		default:
			continue // null and collections equal no column
		}
		if k := el.Value.String(); !seen[k] {
			seen[k] = true
			values = append(values, el.Value)
		}
	}
	if len(values) == 0 {
		return nodeFalse, nil
	}
	return &node{kind: kLeaf, op: opIn, field: f, values: values}, nil
}

var stringOps = map[string]op{ast.StartsWith.Name: opStartsWith, ast.EndsWith.Name: opEndsWith, ast.Contains.Name: opContains}

// stringOp translates startswith, endswith and contains of a field.
func (t *translator) stringOp(e *ast.Expr, name string, ops []*ast.Term) (*node, error) {
	if len(ops) != 2 {
		return nil, t.fail(e, "malformed %s", name)
	}
	f, isField, _, err := t.operand(e, ops[0])
	if err != nil {
		return nil, err
	}
	if !isField {
		return nil, t.fail(e, "%s with a known string first and a field second cannot be translated into a filter", name)
	}
	_, pIsField, p, err := t.operand(e, ops[1])
	if err != nil {
		return nil, err
	}
	if pIsField {
		return nil, t.fail(e, "%s of two fields cannot be translated into a filter", name)
	}
	if _, ok := p.(ast.String); !ok {
		return nil, t.fail(e, "%s needs a string, not %v", name, p)
	}
	return &node{kind: kLeaf, op: stringOps[name], field: f, value: p}, nil
}
