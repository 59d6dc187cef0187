package filter

import (
	"encoding/json"
	"fmt"

	"github.com/open-policy-agent/opa/v1/ast"
)

// UCASTForm is a variant of UCAST, as in OPA's media types: what its
// consumers can interpret.
type UCASTForm string

// The UCAST forms of OPA's Compile API.
const (
	// UCASTAll has every operator: comparisons, in, startswith, endswith,
	// contains, not, and comparisons of two fields.
	UCASTAll UCASTForm = "all"
	// UCASTMinimal has comparisons (eq, ne, lt, lte, gt, gte), and, or.
	UCASTMinimal UCASTForm = "minimal"
	// UCASTPrisma is for Prisma: UCASTAll without comparisons of two fields.
	UCASTPrisma UCASTForm = "prisma"
)

// UCAST renders the filter as a UCAST tree of JSON values
// ({"type":"field","operator":"eq","field":"docs.owner","value":"alice"}),
// with mappings applied as in [SQLOptions.Mappings] (under "ucast" or the
// form's name). A filter that selects every row is an empty object; one
// that selects none is nil. A condition the form cannot express is an
// *Error.
//
// A value of null stands for an absent field (SQL NULL): {"operator":"eq",
// "value":null} is IS NULL. A negated comparison is written with the
// presence of its fields ({"and": [ne null, not ...]}), so that consumers
// that interpret not with two-valued logic select no more rows than SQL.
func (f *Filter) UCAST(form UCASTForm, mappings map[string]any) (map[string]any, error) {
	switch form {
	case UCASTAll, UCASTMinimal, UCASTPrisma:
	default:
		return nil, fmt.Errorf("filter: unknown UCAST form %q (all, minimal, prisma)", string(form))
	}
	switch {
	case f.never:
		return nil, nil
	case f.always:
		return map[string]any{}, nil
	}
	m, err := lookupMappings(mappings, "ucast", string(form))
	if err != nil {
		return nil, err
	}
	r := ucastRenderer{form: form, mappings: m}
	out, err := r.node(f.cond)
	if err != nil {
		fe := &Error{Reason: err.Error()}
		fe.Rule, fe.Target = f.rule, "ucast+"+string(form)
		return nil, fe
	}
	return out, nil
}

type ucastRenderer struct {
	form     UCASTForm
	mappings map[string]any
}

func compound(op string, kids ...map[string]any) map[string]any {
	return map[string]any{"type": "compound", "operator": op, "value": kids}
}

func (r *ucastRenderer) fieldNode(op string, f field, v any) map[string]any {
	return map[string]any{"type": "field", "operator": op, "field": translateField(f, r.mappings), "value": v}
}

func ucastValue(v ast.Value) any {
	switch v := v.(type) {
	case ast.String:
		return string(v)
	case ast.Boolean:
		return bool(v)
	case ast.Number:
		return json.Number(v)
	}
	return nil
}

func (r *ucastRenderer) node(n *node) (map[string]any, error) {
	switch n.kind {
	case kAnd, kOr:
		kids := make([]map[string]any, len(n.kids))
		for i, k := range n.kids {
			m, err := r.node(k)
			if err != nil {
				return nil, err
			}
			kids[i] = m
		}
		op := "and"
		if n.kind == kOr {
			op = "or"
		}
		return compound(op, kids...), nil
	case kNull:
		return r.fieldNode("eq", n.field, nil), nil
	case kNotNull:
		return r.fieldNode("ne", n.field, nil), nil
	case kLeaf:
		return r.leaf(n)
	case kNot:
		leaf := n.kids[0]
		if r.form == UCASTMinimal {
			return r.complement(leaf)
		}
		m, err := r.leaf(leaf)
		if err != nil {
			return nil, err
		}
		kids := []map[string]any{}
		for _, f := range leaf.fields() {
			kids = append(kids, r.fieldNode("ne", f, nil))
		}
		return compound("and", append(kids, compound("not", m))...), nil
	}
	return nil, fmt.Errorf("a constant inside a condition")
}

var complements = map[op]op{opEq: opNe, opNe: opEq, opLt: opGte, opLte: opGt, opGt: opLte, opGte: opLt}

// complement writes not-leaf without not, for the minimal form: the
// opposite comparison, which is NULL (not selected) too when a field is.
func (r *ucastRenderer) complement(leaf *node) (map[string]any, error) {
	switch leaf.op {
	case opTrue:
		return r.fieldNode("eq", leaf.field, false), nil
	case opIn, opStartsWith, opEndsWith, opContains:
		return nil, fmt.Errorf("not %s cannot be expressed without not", opNames[leaf.op])
	}
	c := *leaf
	c.op = complements[leaf.op]
	return r.leaf(&c)
}

func (r *ucastRenderer) leaf(n *node) (map[string]any, error) {
	switch n.op {
	case opTrue:
		return r.fieldNode("eq", n.field, true), nil
	case opIn:
		if r.form == UCASTMinimal {
			return nil, fmt.Errorf("in cannot be expressed in the minimal form")
		}
		vs := make([]any, len(n.values))
		for i, v := range n.values {
			vs[i] = ucastValue(v)
		}
		return r.fieldNode("in", n.field, vs), nil
	case opStartsWith, opEndsWith, opContains:
		if r.form == UCASTMinimal {
			return nil, fmt.Errorf("%s cannot be expressed in the minimal form", opNames[n.op])
		}
		return r.fieldNode(opNames[n.op], n.field, ucastValue(n.value)), nil
	}
	if n.other != nil {
		if r.form != UCASTAll {
			return nil, fmt.Errorf("comparing two fields can be expressed only in the all form")
		}
		return r.fieldNode(opNames[n.op], n.field, map[string]any{"field": translateField(*n.other, r.mappings)}), nil
	}
	return r.fieldNode(opNames[n.op], n.field, ucastValue(n.value)), nil
}
