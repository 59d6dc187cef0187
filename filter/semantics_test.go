package filter

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/regoguard/regoguard/policy"
)

// match evaluates n on a row the way SQL does (three-valued logic, NULL for
// an absent field), for columns holding one type each: the meaning the
// rendered SQL has, without a database.
func match(n *node, row ast.Object) tri {
	switch n.kind {
	case kTrue:
		return triTrue
	case kFalse:
		return triFalse
	case kAnd:
		out := triTrue
		for _, k := range n.kids {
			switch match(k, row) {
			case triFalse:
				return triFalse
			case triNull:
				out = triNull
			}
		}
		return out
	case kOr:
		out := triFalse
		for _, k := range n.kids {
			switch match(k, row) {
			case triTrue:
				return triTrue
			case triNull:
				out = triNull
			}
		}
		return out
	case kNot:
		switch match(n.kids[0], row) {
		case triTrue:
			return triFalse
		case triFalse:
			return triTrue
		}
		return triNull
	case kNull:
		return boolTri(row.Get(ast.StringTerm(n.field.column)) == nil)
	case kNotNull:
		return boolTri(row.Get(ast.StringTerm(n.field.column)) != nil)
	}
	x := row.Get(ast.StringTerm(n.field.column))
	if x == nil {
		return triNull
	}
	var y ast.Value = n.value
	if n.other != nil {
		t := row.Get(ast.StringTerm(n.other.column))
		if t == nil {
			return triNull
		}
		y = t.Value
	}
	switch n.op {
	case opTrue:
		return boolTri(x.Value.Compare(ast.Boolean(true)) == 0)
	case opIn:
		for _, v := range n.values {
			if x.Value.Compare(v) == 0 {
				return triTrue
			}
		}
		return triFalse
	case opStartsWith:
		return boolTri(strings.HasPrefix(string(x.Value.(ast.String)), string(y.(ast.String))))
	case opEndsWith:
		return boolTri(strings.HasSuffix(string(x.Value.(ast.String)), string(y.(ast.String))))
	case opContains:
		return boolTri(strings.Contains(string(x.Value.(ast.String)), string(y.(ast.String))))
	}
	c := x.Value.Compare(y)
	switch n.op {
	case opEq:
		return boolTri(c == 0)
	case opNe:
		return boolTri(c != 0)
	case opLt:
		return boolTri(c < 0)
	case opLte:
		return boolTri(c <= 0)
	case opGt:
		return boolTri(c > 0)
	case opGte:
		return boolTri(c >= 0)
	}
	panic("match: unknown op")
}

type tri int

const (
	triFalse tri = iota
	triTrue
	triNull
)

func boolTri(b bool) tri {
	if b {
		return triTrue
	}
	return triFalse
}

// semanticPolicies are rules of each supported construct, over the columns
// of genRows (owner, dept, title: strings; level: number; public,
// archived: booleans).
var semanticPolicies = map[string]string{
	"eq":             `include if input.docs.owner == input.user`,
	"eq-unify":       `include if input.docs.owner = input.user`,
	"ne":             `include if input.docs.owner != input.user`,
	"lt":             `include if input.docs.level < 3`,
	"lte-flip":       `include if 3 <= input.docs.level`,
	"gt-gte":         "include if input.docs.level > 1\ninclude if input.docs.level >= 10",
	"str-order":      `include if input.docs.title < "b"`,
	"in-set":         `include if input.docs.dept in {"hr", "it"}`,
	"in-array":       `include if input.docs.dept in ["hr", "HR", 3]`,
	"in-input":       `include if input.docs.dept in input.depts`,
	"not-in":         `include if not input.docs.dept in {"hr"}`,
	"startswith":     `include if startswith(input.docs.title, "a_")`,
	"endswith":       `include if endswith(input.docs.title, "%x")`,
	"contains":       `include if contains(input.docs.title, "b")`,
	"contains-empty": `include if contains(input.docs.title, "")`,
	"startswith-bs":  `include if startswith(input.docs.title, "a\\")`,
	"not-startswith": `include if not startswith(input.docs.title, "a")`,
	"bare-bool":      `include if input.docs.public`,
	"not-bool":       `include if not input.docs.archived`,
	"bool-eq":        `include if input.docs.public == false`,
	"not-eq":         `include if not input.docs.dept == "hr"`,
	"not-ne":         `include if not input.docs.dept != "hr"`,
	"not-lt":         `include if not input.docs.level < 3`,
	"not-helper": `include if not helper
helper if input.docs.dept == "hr"
helper if input.docs.level > 2`,
	"not-helper-and": `include if not helper
helper if { input.docs.dept == "hr"; input.docs.public }`,
	"not-helper-not": `include if not helper
helper if not input.docs.archived`,
	"not-helper-call": `include if not helper
helper if startswith(input.docs.title, "a")`,
	"nested-not": `include if not outer
outer if not inner
inner if input.docs.owner == "bob"`,
	"function": `include if owned(input.docs.owner)
owned(o) if o == input.user
owned(o) if o == "admin"`,
	"some-in": `include if {
	some d in data.depts[input.user]
	input.docs.dept == d
}`,
	"data-lookup": `include if input.docs.level <= data.clearance[input.user]`,
	"bodies": `include if input.docs.owner == input.user
include if { input.docs.public; input.docs.level < 5 }
include if input.user == "root"`,
	"fields":     `include if input.docs.owner == input.docs.dept`,
	"fields-lt":  `include if input.docs.owner < input.docs.title`,
	"exists":     `include if { _ = input.docs.owner }`,
	"known-only": `include if input.user == "root"`,
	"never":      `include if input.user == "nobody-at-all"`,
	"mixed": `include if {
	input.docs.public
	not input.docs.archived
	not input.docs.dept in {"hr"}
	input.docs.level != 2
}`,
	"null-eq": `include if input.docs.owner == null`,
	"helper-value-not": `include if not h
h := input.docs.owner == "a"`,
	"helper-value": `include if h
h := input.docs.owner == "a"`,
	"helper-bool-false": `include if not h
h := input.docs.public`,
	"bool-ne":     `include if input.docs.archived != true`,
	"in-numbers":  `include if input.docs.level in {1, 3.5, 10}`,
	"not-in-nums": `include if not input.docs.level in [1, 2]`,
	"print": `include if {
	print("user", input.user)
	input.docs.owner == input.user
}`,
	"data-key":           `include if data.clearance[input.docs.owner] > 2`,
	"not-in-empty":       `include if not input.docs.level in set()`,
	"not-in-empty-input": `include if not input.docs.dept in input.none`,
	"not-ne-null":        `include if not input.docs.dept != null`,
	"not-function": `f(x) if x == 10
include if not f(input.docs.level)`,
	"not-function-2": `f(x) if x == "hr"
f(x) if startswith(x, "a")
include if not f(input.docs.dept)`,
	"default-false": `default include := false
include if input.docs.dept == "hr"`,
	"bool-caller": `include if input.docs.public == input.pub`,
	"var-not-eq": `include if {
	x := input.docs.level
	not x == 10
}`,
	"var-not-bare": `include if {
	x := input.docs.archived
	not x
}`,
	"function-not-inside": `f(x) if not x == 10
include if f(input.docs.level)`,
	"function-not-direct": `f(x) if { x > 0; not input.docs.archived }
include if f(input.docs.level)`,
	"helper-default-not": `default h := false
h if input.docs.dept == "hr"
include if not h`,
	"helper-var-not": `h if {
	x := input.docs.level
	x == 10
}
include if not h`,
	"helper-var-not-2": `h if {
	x := input.docs.level
	x == 10
	input.docs.public
}
include if not h`,
	"assign-var": `include if {
	x := input.docs.owner
	x == input.user
}`,
	"null-ne":  `include if input.docs.owner != null`,
	"else-ish": `include if { input.docs.level > 2; not input.docs.title == "ab" }`,
}

var semanticInputs = []string{
	`{"user": "alice", "depts": ["hr", "x"], "none": [], "pub": false}`,
	`{"user": "bob", "depts": []}`,
	`{"user": "root", "depts": ["it"]}`,
}

var semanticData = map[string]any{
	"depts":     map[string]any{"alice": []any{"hr", "it"}, "bob": []any{"sales"}},
	"clearance": map[string]any{"alice": 3, "bob": 1, "root": 10},
}

// genRows makes rows with absent fields, mixed case and LIKE
// metacharacters; each column holds one type.
func genRows(n int, seed uint64) []ast.Object {
	r := rand.New(rand.NewPCG(seed, 1))
	strs := []string{"alice", "Alice", "bob", "hr", "HR", "it", "a_b%x", "a\\b", "", "ab", "abx", "b", "a", "admin", "AB"}
	nums := []any{1, 2, 3, 3.5, 10, -1, 0}
	var rows []ast.Object
	for range n {
		row := ast.NewObject()
		add := func(k string, v any) {
			if r.IntN(4) != 0 {
				row.Insert(ast.StringTerm(k), ast.NewTerm(ast.MustInterfaceToValue(v)))
			}
		}
		add("owner", strs[r.IntN(len(strs))])
		add("dept", strs[r.IntN(len(strs))])
		add("title", strs[r.IntN(len(strs))])
		add("level", nums[r.IntN(len(nums))])
		add("public", r.IntN(2) == 0)
		add("archived", r.IntN(2) == 0)
		rows = append(rows, row)
	}
	return rows
}

func newTestCompiler(t testing.TB, rules string, data map[string]any) (*Compiler, *policy.Engine) {
	t.Helper()
	p, err := policy.Parse(map[string]string{"filters.rego": "package filters\n\n" + rules + "\n"}, data)
	if err != nil {
		t.Fatal(err)
	}
	e, err := policy.New(context.Background(), policy.Config{Decision: "data.filters", Logger: discardLogger()}, p)
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(e, Config{Query: "data.filters.include", Unknowns: []string{"input.docs"}})
	if err != nil {
		t.Fatal(err)
	}
	return c, e
}

// TestSemanticsAgainstOPA checks, for every construct, that the rows the
// filter selects are exactly those for which OPA's full evaluation of the
// rule, with input.docs set to the row, is true.
func TestSemanticsAgainstOPA(t *testing.T) {
	ctx := context.Background()
	rows := genRows(300, 7)
	checked := 0
	for name, rules := range semanticPolicies {
		t.Run(name, func(t *testing.T) {
			c, e := newTestCompiler(t, rules, semanticData)
			comp, _ := e.Compiled()
			pq, err := rego.New(append(comp.RegoOptions(), rego.Query("data.filters.include"))...).PrepareForEval(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, in := range semanticInputs {
				input := ast.MustParseTerm(in).Value.(ast.Object)
				f, err := c.Compile(ctx, input)
				if err != nil {
					t.Fatalf("input %s: %v", in, err)
				}
				wrong := 0
				for _, row := range rows {
					full := input.Copy()
					full.Insert(ast.StringTerm("docs"), ast.NewTerm(row))
					rs, err := pq.Eval(ctx, rego.EvalParsedInput(full))
					if err != nil {
						t.Fatal(err)
					}
					want := len(rs) > 0 && rs[0].Expressions[0].Value != false
					got := match(f.cond, row) == triTrue
					if got != want {
						wrong++
						if wrong <= 3 {
							t.Errorf("input %s row %v: filter %s selects %v, OPA says %v", in, row, f, got, want)
						}
					}
					checked++
				}
				if wrong > 0 {
					t.Errorf("input %s: %d of %d rows wrong", in, wrong, len(rows))
				}
			}
		})
	}
	t.Logf("%d (policy, input, row) cases checked", checked)
}

func TestSemanticsMeta(t *testing.T) {
	// The checker itself must be able to fail: a filter without the IS
	// NULL of a negation is caught.
	rows := genRows(50, 1)
	n := &node{kind: kNot, kids: []*node{{kind: kLeaf, op: opTrue, field: field{"docs", "archived"}}}}
	full := negate(&node{kind: kLeaf, op: opTrue, field: field{"docs", "archived"}})
	differ := 0
	for _, r := range rows {
		if match(n, r) != match(full, r) {
			differ++
		}
	}
	if differ == 0 {
		t.Fatal("rows with an absent field should tell NOT x = true from (x IS NULL OR NOT x = true)")
	}
	_ = fmt.Sprint()
}
