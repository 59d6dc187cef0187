package filter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
)

// fuzzTemplates are rules with a string (%[1]s) and a number (%[2]d) to
// fill in.
var fuzzTemplates = []string{
	`include if input.docs.owner == %[1]s`,
	`include if not input.docs.owner == %[1]s`,
	`include if input.docs.owner != %[1]s`,
	`include if startswith(input.docs.title, %[1]s)`,
	`include if not endswith(input.docs.title, %[1]s)`,
	`include if contains(input.docs.title, %[1]s)`,
	`include if input.docs.title < %[1]s`,
	`include if input.docs.level >= %[2]d`,
	`include if not input.docs.level < %[2]d`,
	`include if input.docs.dept in {%[1]s, "hr"}`,
	`include if not input.docs.dept in [%[1]s]`,
	"include if not h\nh if input.docs.owner == %[1]s\nh if input.docs.level > %[2]d",
	"include if { input.docs.public; input.docs.owner == %[1]s }\ninclude if input.docs.level == %[2]d",
	"include if { not input.docs.archived; input.user == %[1]s }",
	"f(x) if x == %[1]s\ninclude if not f(input.docs.owner)",
	"include if { x := input.docs.title; not startswith(x, %[1]s) }",
	"h if { x := input.docs.level; x > %[2]d }\ninclude if not h",
	"include if not input.docs.dept in {x | some x in [%[1]s, \"hr\"]; x != %[1]s}",
}

// FuzzTranslate fills the templates with arbitrary strings and numbers:
// the compiler never panics, every dialect and form renders or refuses
// with an *Error, and the filter selects exactly the rows OPA's evaluation
// selects, on rows holding the fuzzed string in every field.
func FuzzTranslate(f *testing.F) {
	for i := range fuzzTemplates {
		f.Add(uint8(i), "a_b%", int64(3), "alice")
		f.Add(uint8(i), "", int64(-1), "")
		f.Add(uint8(i), `a\'"[x]`, int64(0), "A_B%")
	}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, tmpl uint8, s string, n int64, other string) {
		lit, _ := json.Marshal(s) // a Rego string is a JSON string
		rule := fmt.Sprintf(fuzzTemplates[int(tmpl)%len(fuzzTemplates)], lit, n)
		s = string(ast.MustParseTerm(string(lit)).Value.(ast.String))
		c, e := newTestCompiler(t, rule, nil)
		input := ast.MustInterfaceToValue(map[string]any{"user": other})
		flt, err := c.Compile(ctx, input)
		if err != nil {
			var fe *Error
			if !errors.As(err, &fe) {
				t.Fatalf("%s: %v", rule, err)
			}
			return
		}
		for _, d := range []Dialect{PostgreSQL, MySQL, SQLite, SQLServer} {
			for _, p := range []bool{false, true} {
				if _, err := flt.SQL(d, SQLOptions{Parameterized: p}); err != nil {
					var fe *Error
					if !errors.As(err, &fe) {
						t.Fatalf("%s %s: %v", rule, d, err)
					}
				}
			}
		}
		for _, form := range []UCASTForm{UCASTAll, UCASTMinimal, UCASTPrisma} {
			if _, err := flt.UCAST(form, nil); err != nil {
				var fe *Error
				if !errors.As(err, &fe) {
					t.Fatalf("%s %s: %v", rule, form, err)
				}
			}
		}
		comp, _ := e.Compiled()
		pq, err := rego.New(append(comp.RegoOptions(), rego.Query("data.filters.include"))...).PrepareForEval(ctx)
		if err != nil {
			t.Fatal(err)
		}
		rows := genRows(20, uint64(n))
		for _, str := range []string{s, other} {
			for _, k := range []string{"owner", "dept", "title"} {
				row := ast.NewObject(ast.Item(ast.StringTerm(k), ast.StringTerm(str)), ast.Item(ast.StringTerm("level"), ast.IntNumberTerm(int(n%1000))))
				rows = append(rows, row)
			}
		}
		for _, row := range rows {
			full := input.(ast.Object).Copy()
			full.Insert(ast.StringTerm("docs"), ast.NewTerm(row))
			rs, err := pq.Eval(ctx, rego.EvalParsedInput(full))
			if err != nil {
				t.Fatal(err)
			}
			want := len(rs) > 0 && rs[0].Expressions[0].Value != false
			if got := match(flt.cond, row) == triTrue; got != want {
				t.Fatalf("%s, input %v, row %v: filter %s selects %v, OPA %v", rule, input, row, flt, got, want)
			}
		}
	})
}
