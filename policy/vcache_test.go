package policy_test

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"

	"github.com/regoguard/regoguard/policy"
)

// memoized leans on the rule memo (the virtual cache) every way topdown
// uses it: a partial object read with many keys (past the point where the
// engine's cache indexes a frame), complete rules read from several rules,
// undefined results, `with` (a frame of its own) and rules of another
// package.
const memoized = `package httpapi.authz

import data.lib

role[u] := r if some u, r in data.users

admin if role[input.user] == "admin"

writer if role[input.user] in {"admin", "writer"}

many_roles := count([u | some i in numbers.range(0, 59); u := sprintf("u%d", [i]); role[u]])

method_ok if input.method in {"GET", "HEAD"}

method_ok if {
	input.method == "POST"
	writer
}

allow if {
	method_ok
	not lib.blocked[input.user]
	many_roles > 10
}

allow if admin

mocked if allow with input.method as "GET"

reason := sprintf("%s may not %s", [input.user, input.method]) if not allow

status := 404 if {
	not allow
	not role[input.user]
}
`

const lib = `package lib

blocked contains u if some u in data.blocked
`

func memoizedData() map[string]any {
	users := map[string]any{}
	for i := range 60 {
		users[fmt.Sprintf("u%d", i)] = []string{"reader", "writer", "admin"}[i%3]
	}
	return map[string]any{"users": users, "blocked": []any{"u4", "u7"}}
}

// The engine (with its reused rule memo, allow first or whole) decides
// exactly as OPA's own prepared query with OPA's own memo, on every input.
func TestEngineDecidesAsOPA(t *testing.T) {
	ctx := context.Background()
	modules := map[string]string{"authz.rego": memoized, "lib.rego": lib}
	p := policy.MustParse(modules, memoizedData())
	fast, err := policy.New(ctx, policy.Config{}, p)
	if err != nil {
		t.Fatal(err)
	}
	whole, err := policy.New(ctx, policy.Config{WholeDocument: true}, p)
	if err != nil {
		t.Fatal(err)
	}
	opts := []func(*rego.Rego){
		rego.Query("data.httpapi.authz"),
		rego.Store(inmem.NewFromObject(memoizedData())),
	}
	for name, src := range modules {
		opts = append(opts, rego.Module(name, src))
	}
	raw, err := rego.New(opts...).PrepareForEval(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 64 {
		in := ast.NewObject(
			ast.Item(ast.StringTerm("user"), ast.StringTerm(fmt.Sprintf("u%d", i))),
			ast.Item(ast.StringTerm("method"), ast.StringTerm([]string{"GET", "POST", "DELETE"}[i%3])),
		)
		rs, err := raw.Eval(ctx, rego.EvalParsedInput(in))
		if err != nil || len(rs) != 1 {
			t.Fatalf("%v: OPA: %v %v", in, rs, err)
		}
		want, err := policy.ParseResult(rs[0].Expressions[0].Value)
		if err != nil {
			t.Fatal(err)
		}
		got, err := whole.Eval(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got.Result, want.Result) {
			t.Errorf("%v: whole document %v, OPA %v", in, got.Result, want.Result)
		}
		got, err = fast.Eval(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		if got.Allow != want.Allow || (!want.Allow && (got.Reason != want.Reason || got.Status != want.Status)) {
			t.Errorf("%v: allow first %+v, OPA %+v", in, got, want)
		}
	}
}

// Evaluations running at once each have their own memo.
func TestConcurrentEvaluationsKeepTheirOwnMemo(t *testing.T) {
	ctx := context.Background()
	e, err := policy.New(ctx, policy.Config{WholeDocument: true},
		policy.MustParse(map[string]string{"authz.rego": memoized, "lib.rego": lib}, memoizedData()))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				k := (g*7 + i) % 64
				user := fmt.Sprintf("u%d", k)
				d, err := e.Eval(ctx, ast.NewObject(
					ast.Item(ast.StringTerm("user"), ast.StringTerm(user)),
					ast.Item(ast.StringTerm("method"), ast.StringTerm("DELETE")),
				))
				if err != nil {
					t.Error(err)
					return
				}
				// DELETE is allowed to admins only: u2, u5, ... u59
				// (memoizedData); u60 and above have no role.
				if admin := k < 60 && k%3 == 2; d.Allow != admin {
					t.Errorf("%s: allow %v, want %v (another evaluation's memo?)", user, d.Allow, admin)
					return
				}
				if want := user + " may not DELETE"; !d.Allow && d.Reason != want {
					t.Errorf("%s: reason %q, want %q (another evaluation's memo?)", user, d.Reason, want)
					return
				}
			}
		})
	}
	wg.Wait()
}
