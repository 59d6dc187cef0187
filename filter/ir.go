package filter

import (
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
)

// kind is the kind of a condition node.
type kind uint8

const (
	kTrue    kind = iota // every row
	kFalse               // no row
	kAnd                 // all of kids
	kOr                  // any of kids
	kLeaf                // a predicate on fields: true when they are not NULL and it holds
	kNot                 // SQL NOT of a leaf (kids[0]): true when its fields are not NULL and it does not hold
	kNull                // field IS NULL (absent from the row's object)
	kNotNull             // field IS NOT NULL
)

// op is the predicate of a leaf.
type op uint8

const (
	opEq op = iota
	opNe
	opLt
	opLte
	opGt
	opGte
	opIn
	opStartsWith
	opEndsWith
	opContains
	opTrue // a bare reference to a boolean field: field = true
)

var opNames = [...]string{"eq", "ne", "lt", "lte", "gt", "gte", "in", "startswith", "endswith", "contains", "eq"}

var opSymbols = [...]string{"=", "<>", "<", "<=", ">", ">=", "IN", "startswith", "endswith", "contains", "="}

// field is a column of an unknown: docs.owner for input.docs.owner.
type field struct {
	table, column string
}

func (f field) String() string { return f.table + "." + f.column }

// node is a condition on a row, in SQL's terms: a row is selected when the
// condition is TRUE. Leaves are NULL (not TRUE) when a field they read is
// NULL; the builder adds IS NULL tests wherever OPA's semantics select a row
// with an absent field.
type node struct {
	kind  kind
	op    op
	kids  []*node
	field field
	// other is the second field of a comparison of two fields.
	other *field
	// value is the value compared with (a scalar), values those of in.
	value  ast.Value
	values []ast.Value
}

var (
	nodeTrue  = &node{kind: kTrue}
	nodeFalse = &node{kind: kFalse}
)

// fields returns the fields a leaf reads.
func (n *node) fields() []field {
	if n.other != nil {
		return []field{n.field, *n.other}
	}
	return []field{n.field}
}

func and(kids ...*node) *node { return junction(kAnd, kids) }

func or(kids ...*node) *node { return junction(kOr, kids) }

// junction flattens and folds constants: and() of nothing is true, or() of
// nothing false.
func junction(k kind, kids []*node) *node {
	unit, zero := nodeTrue, nodeFalse
	if k == kOr {
		unit, zero = nodeFalse, nodeTrue
	}
	out := make([]*node, 0, len(kids))
	for _, c := range kids {
		switch {
		case c.kind == unit.kind:
			continue
		case c.kind == zero.kind:
			return zero
		case c.kind == k:
			out = append(out, c.kids...)
		default:
			out = append(out, c)
		}
	}
	switch len(out) {
	case 0:
		return unit
	case 1:
		return out[0]
	}
	// f IS NULL and f IS NOT NULL together: never both, always one.
	nulls := map[field]kind{}
	for _, c := range out {
		if c.kind != kNull && c.kind != kNotNull {
			continue
		}
		if prev, ok := nulls[c.field]; ok && prev != c.kind {
			return zero
		}
		nulls[c.field] = c.kind
	}
	return &node{kind: k, kids: out}
}

// negate returns the condition true exactly when n is not TRUE: Rego's
// not, under which a NULL leaf counts as false.
func negate(n *node) *node {
	switch n.kind {
	case kTrue:
		return nodeFalse
	case kFalse:
		return nodeTrue
	case kAnd, kOr:
		kids := make([]*node, len(n.kids))
		for i, c := range n.kids {
			kids[i] = negate(c)
		}
		if n.kind == kAnd {
			return or(kids...)
		}
		return and(kids...)
	case kNull:
		return &node{kind: kNotNull, field: n.field}
	case kNotNull:
		return &node{kind: kNull, field: n.field}
	case kLeaf:
		// Not TRUE: a field is NULL, or the predicate is false.
		kids := nullTests(n)
		return or(append(kids, &node{kind: kNot, kids: []*node{n}})...)
	case kNot:
		// Not (not NULL and false): a field is NULL, or it holds.
		leaf := n.kids[0]
		return or(append(nullTests(leaf), leaf)...)
	}
	panic("filter: negate: unknown node kind")
}

func nullTests(leaf *node) []*node {
	fs := leaf.fields()
	out := make([]*node, len(fs))
	for i, f := range fs {
		out[i] = &node{kind: kNull, field: f}
	}
	return out
}

// notDefined is the negation OPA applies to a negated call in a query
// (not startswith(input.docs.x, "a")): its operands are evaluated before
// the negation, so a NULL field makes the expression undefined. SQL's NOT
// of the leaf is exactly that.
func notDefined(leaf *node) *node { return &node{kind: kNot, kids: []*node{leaf}} }

// String renders n in a dialect-neutral form.
func (n *node) String() string {
	var b strings.Builder
	n.write(&b)
	return b.String()
}

func (n *node) write(b *strings.Builder) {
	switch n.kind {
	case kTrue:
		b.WriteString("true")
	case kFalse:
		b.WriteString("false")
	case kAnd, kOr:
		sep := " AND "
		if n.kind == kOr {
			sep = " OR "
		}
		b.WriteByte('(')
		for i, c := range n.kids {
			if i > 0 {
				b.WriteString(sep)
			}
			c.write(b)
		}
		b.WriteByte(')')
	case kNot:
		b.WriteString("NOT ")
		n.kids[0].write(b)
	case kNull:
		b.WriteString(n.field.String() + " IS NULL")
	case kNotNull:
		b.WriteString(n.field.String() + " IS NOT NULL")
	case kLeaf:
		b.WriteString(n.field.String())
		switch n.op {
		case opStartsWith, opEndsWith, opContains:
			b.WriteString(" " + opSymbols[n.op] + " ")
			b.WriteString(n.value.String())
		case opTrue:
			b.WriteString(" = true")
		case opIn:
			b.WriteString(" IN (")
			for i, v := range n.values {
				if i > 0 {
					b.WriteString(", ")
				}
				b.WriteString(v.String())
			}
			b.WriteByte(')')
		default:
			b.WriteString(" " + opSymbols[n.op] + " ")
			if n.other != nil {
				b.WriteString(n.other.String())
			} else {
				b.WriteString(n.value.String())
			}
		}
	}
}
