package filter

import (
	"fmt"
	"strings"
)

// Error is a rule that cannot be translated into a filter, or not for one
// target: an expression no target expresses (a call to a function on the
// row that SQL lacks, a comparison of two collections), or one the target
// at hand cannot (startswith in UCAST minimal). Nothing is dropped instead.
type Error struct {
	// Rule is the reference of the rule being compiled, such as
	// data.filters.include.
	Rule string
	// File, Line and Column locate the expression in the policy (the rule's
	// own body, or a helper rule or function it calls); Line is 0 when OPA
	// gave no location.
	File         string
	Line, Column int
	// Target is the target that cannot express it ("sql+sqlite"), or ""
	// when no target can.
	Target string
	// Expr is the expression left by partial evaluation, such as
	// `lower(input.docs.owner) = "alice"`.
	Expr string
	// Reason says why it cannot be translated.
	Reason string
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "filter: %s: ", e.Rule)
	if e.Line > 0 {
		fmt.Fprintf(&b, "%s:%d:%d: ", e.File, e.Line, e.Column)
	}
	if e.Expr != "" {
		fmt.Fprintf(&b, "%s: ", e.Expr)
	}
	b.WriteString(e.Reason)
	if e.Target != "" {
		fmt.Fprintf(&b, " (target %s)", e.Target)
	}
	return b.String()
}
