package filter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/rego/compile"
)

// opaSQL is what OPA's Compile API answers for the same request, through
// its public Go package: the SQL text, or the error.
func opaSQL(t testing.TB, c *Compiler, input ast.Value, dialect Dialect, mappings map[string]any) (string, bool, error) {
	t.Helper()
	ctx := context.Background()
	comp, err := c.src.Compiled()
	if err != nil {
		t.Fatal(err)
	}
	prep, err := compile.New(
		compile.Target("sql", string(dialect)),
		compile.ParsedUnknowns(c.unknowns...),
		compile.ParsedQuery(c.query),
		compile.Mappings(mappings),
		compile.Rego(comp.RegoOptions()...),
	).Prepare(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fs, err := prep.Compile(ctx, rego.EvalParsedInput(input))
	if err != nil {
		return "", false, err
	}
	q := fs.For("sql", string(dialect)).Query
	if q == nil {
		return "", true, nil
	}
	return q.(string), false, nil
}

// opaDeviation says why our inline SQL differs from OPA's for a policy and
// dialect, where OPA's is wrong; "" where it must be the same.
func opaDeviation(policy string, d Dialect) string {
	switch {
	case policy == "not-eq" || policy == "else-ish" || strings.HasPrefix(policy, "helper-var-not"):
		// OPA's evaluation selects a row whose field is absent for the not
		// of an equality (=); OPA's SQL NOT x = v does not.
		return "not over = selects absent fields"
	case strings.HasPrefix(policy, "not-in-empty") || policy == "not-ne-null":
		// OPA's evaluation leaves a row with the field absent out of
		// not x in [] and not x != null; OPA's SQL (NOT 0 = 1, NOT x IS
		// NOT NULL) selects it.
		return "not over a call needs the field"
	case policy == "null-eq":
		// A row's object never holds null (NULL is an absent field), so
		// == null is never true; OPA writes IS NULL.
		return "null is an absent field"
	case d == SQLServer && (strings.Contains(policy, "bool") || strings.HasPrefix(policy, "startswith") || policy == "endswith"):
		// T-SQL has no FALSE, and its LIKE escapes nothing unless told.
		return "OPA's SQL Server text is not T-SQL"
	}
	return ""
}

// sqliteTyped reports an accepted difference on SQLite: OPA's text
// compares a number as a quoted string and without a type guard, which
// SQLite converts to the column's affinity ('3' = 3 on a TEXT column, 3 =
// '3' on an INTEGER one), selecting rows Rego does not. The inline form
// then types its values as the parameterized one does: numbers unquoted,
// typeof guards, +column orderings (and two columns compared as +a op +b).
func sqliteTyped(d Dialect, where string) bool {
	return d == SQLite && (strings.Contains(where, "typeof(") || strings.Contains(where, "+docs."))
}

// pgLiteral is a PostgreSQL escape string literal as OPA writes it.
var pgLiteral = regexp.MustCompile(`E'((?:[^'\\]|\\.)*)'`)

// pgTyped is OPA's PostgreSQL text with the accepted difference: OPA's
// literals have no type, so that PostgreSQL reads them as the column's
// type (E'3' equals the text '3'; E'2.5' is refused against a bigint).
// Numbers are then numeric literals (3, 2.5) and strings PostgreSQL could
// read as a number or a boolean are CAST(E'3' AS text).
func pgTyped(opa string) string {
	return pgLiteral.ReplaceAllStringFunc(opa, func(lit string) string {
		body := pgLiteral.FindStringSubmatch(lit)[1]
		if a, err := numberArg(ast.Number(body)); err == nil && json.Valid([]byte(body)) {
			if f, ok := a.(float64); ok {
				return strconv.FormatFloat(f, 'g', -1, 64)
			}
			return fmt.Sprint(a)
		}
		if pgConvertible(body) {
			return "CAST(" + lit + " AS text)"
		}
		return lit
	})
}

// TestInlineEqualsOPA checks that where OPA's Compile API translates a
// policy correctly, the inline SQL is byte for byte the same.
func TestInlineEqualsOPA(t *testing.T) {
	ctx := context.Background()
	answered, equal, refused := 0, 0, 0
	for _, name := range slices.Sorted(maps.Keys(semanticPolicies)) {
		c, _ := newTestCompiler(t, semanticPolicies[name], semanticData)
		for _, in := range semanticInputs {
			input := ast.MustParseTerm(in).Value
			f, err := c.Compile(ctx, input)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range []Dialect{PostgreSQL, MySQL, SQLite, SQLServer} {
				want, never, err := opaSQL(t, c, input, d, nil)
				var ae ast.Errors
				if errors.As(err, &ae) {
					refused++
					continue // OPA refuses; ours is checked against evaluation
				}
				if err != nil {
					t.Fatalf("%s %s: OPA: %v", name, d, err)
				}
				answered++
				got, err := f.SQL(d, SQLOptions{})
				if err != nil {
					t.Errorf("%s %s input %s: OPA answers %q, we refuse: %v", name, d, in, want, err)
					continue
				}
				if never {
					if !f.Never() {
						t.Errorf("%s %s input %s: OPA says never, we say %s", name, d, in, f)
					}
					equal++
					continue
				}
				if got.Where == want {
					equal++
					continue
				}
				if opaDeviation(name, d) == "" && !sqliteTyped(d, got.Where) && !(d == PostgreSQL && got.Where == pgTyped(want)) {
					t.Errorf("%s %s input %s:\n got %s\nwant %s", name, d, in, got.Where, want)
				}
			}
		}
	}
	t.Logf("OPA answered %d (policy, input, dialect) cases and refused %d (all translated here); %d identical", answered, refused, equal)
}

// hasNegation reports whether n holds a NOT or a NULL test, which our UCAST
// writes with the presence of fields where OPA writes a bare not.
func hasNegation(n *node) bool {
	if n.kind == kNot || n.kind == kNull || n.kind == kNotNull {
		return true
	}
	for _, k := range n.kids {
		if hasNegation(k) {
			return true
		}
	}
	return false
}

// TestUCASTEqualsOPA: where OPA's Compile API answers UCAST for a filter
// without negation, ours is the same JSON.
func TestUCASTEqualsOPA(t *testing.T) {
	ctx := context.Background()
	answered, equal := 0, 0
	for _, name := range slices.Sorted(maps.Keys(semanticPolicies)) {
		c, _ := newTestCompiler(t, semanticPolicies[name], semanticData)
		comp, _ := c.src.Compiled()
		for _, in := range semanticInputs {
			input := ast.MustParseTerm(in).Value
			f, err := c.Compile(ctx, input)
			if err != nil {
				t.Fatal(err)
			}
			if hasNegation(f.cond) || name == "null-eq" {
				continue
			}
			for _, form := range []UCASTForm{UCASTAll, UCASTMinimal, UCASTPrisma} {
				prep, err := compile.New(compile.Target("ucast", string(form)), compile.ParsedUnknowns(c.unknowns...),
					compile.ParsedQuery(c.query), compile.Rego(comp.RegoOptions()...)).Prepare(ctx)
				if err != nil {
					t.Fatal(err)
				}
				fs, err := prep.Compile(ctx, rego.EvalParsedInput(input))
				if err != nil {
					continue // OPA refuses
				}
				answered++
				want, _ := json.Marshal(map[string]any{"q": fs.For("ucast", string(form)).Query})
				got, err := f.UCAST(form, nil)
				if err != nil {
					t.Errorf("%s %s: OPA answers %s, we refuse: %v", name, form, want, err)
					continue
				}
				if f.Never() {
					// We fold an empty in to never ({}); OPA answers an
					// in over [] that selects nothing either.
					continue
				}
				gotJSON, _ := json.Marshal(map[string]any{"q": got})
				if string(gotJSON) != string(want) {
					t.Errorf("%s %s input %s:\n got %s\nwant %s", name, form, in, gotJSON, want)
					continue
				}
				equal++
			}
		}
	}
	t.Logf("OPA answered %d UCAST cases without negation; %d identical", answered, equal)
}
