package policy_test

import (
	"context"
	"strings"
	"testing"

	"github.com/regoguard/regoguard/policy"
)

// snapshotOf compiles p and returns the plan of that revision.
func snapshotOf(t *testing.T, cfg policy.Config, p *policy.Policy) policy.Plan {
	t.Helper()
	e, err := policy.New(context.Background(), cfg, p)
	if err != nil {
		t.Fatal(err)
	}
	s, err := e.Plan()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSnapshotReadsTheFieldsThePolicyRefersTo(t *testing.T) {
	cases := []struct {
		name, src  string
		reads      []string
		doesntRead []string
	}{
		{"refs", `package httpapi.authz
allow if {
	input.method == "GET"
	"admin" in input.user.claims.groups
}`, []string{"method", "user"}, []string{"headers", "query", "body", "path"}},
		{"import", `package httpapi.authz
import input.headers as h
allow if h["x-ok"] == "yes"`, []string{"headers"}, []string{"method", "user"}},
		{"function and nested ref", `package httpapi.authz
allowed_paths := {"a": ["x"]}
is_get(m) if m == "GET"
allow if {
	is_get(input.method)
	allowed_paths[input.user.sub][_] == input.path_segments[0]
}`, []string{"method", "user", "path_segments"}, []string{"headers", "host"}},
		{"computed key", `package httpapi.authz
allow if input[data.field] == "GET"`, []string{"method", "headers", "anything"}, nil},
		{"whole input", `package httpapi.authz
allow if count(input) > 2`, []string{"method", "headers", "anything"}, nil},
		{"walk", `package httpapi.authz
allow if {
	some path, value
	walk(input, [path, value])
	value == "admin"
}`, []string{"headers", "anything"}, nil},
		{"with", `package httpapi.authz
inner if input.method == "GET"
allow if inner with input.method as "GET"`, []string{"method"}, []string{"headers"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := snapshotOf(t, policy.Config{NonStrict: true}, policy.MustParse(map[string]string{"p.rego": c.src}, map[string]any{"field": "method"}))
			for _, f := range c.reads {
				if !s.Fields.Reads(f) {
					t.Errorf("Reads(%q) false, want true", f)
				}
			}
			for _, f := range c.doesntRead {
				if s.Fields.Reads(f) {
					t.Errorf("Reads(%q) true, want false", f)
				}
			}
		})
	}
}

// A decision path may read the input too: data.tenants[input.tenant].
func TestSnapshotReadsTheFieldsOfTheDecisionPath(t *testing.T) {
	p := policy.MustParse(map[string]string{"p.rego": "package tenants.acme\nallow := true\n"}, nil)
	e, err := policy.New(context.Background(), policy.Config{Decision: "data.tenants[input.tenant]"}, p)
	if err != nil {
		t.Fatal(err)
	}
	s, err := e.Plan()
	if err != nil {
		t.Fatal(err)
	}
	if !s.Fields.Reads("tenant") || s.Fields.Reads("headers") {
		t.Errorf("Reads(tenant) %v, Reads(headers) %v; want true, false", s.Fields.Reads("tenant"), s.Fields.Reads("headers"))
	}
	if d := mustEval(t, e, `{"tenant": "acme"}`); !d.Allow {
		t.Errorf("tenant acme: %+v, want allow", d)
	}
}

func TestPlanAndDecisionNameTheirRevision(t *testing.T) {
	ctx := context.Background()
	v1 := policy.MustParse(map[string]string{"p.rego": "package httpapi.authz\nallow if input.method == \"GET\"\n"}, nil)
	v2 := policy.MustParse(map[string]string{"p.rego": "package httpapi.authz\nallow if input.headers[\"x-ok\"] == \"yes\"\n"}, nil)
	e, err := policy.New(ctx, policy.Config{}, v1)
	if err != nil {
		t.Fatal(err)
	}
	s, err := e.Plan()
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Load(ctx, v2); err != nil {
		t.Fatal(err)
	}
	// An input built for the plan (method only) is judged by v2, which
	// reads a field it lacks: the decision names v2's revision, not the
	// plan's, so that the caller sees the reload and builds again (package
	// authz does, TestReloadBetweenPlanAndEval).
	d, err := e.Eval(ctx, input(t, `{"method": "GET"}`))
	if err != nil || d.Revision == s.Revision || d.Revision != e.Revision() {
		t.Errorf("eval after a reload: %+v, %v; want the decision to name the new revision %s (planned %s)", d, err, e.Revision(), s.Revision)
	}
	if s2, _ := e.Plan(); !s2.Fields.Reads("headers") || s2.Fields.Reads("method") || s2.Revision != e.Revision() {
		t.Error("a new plan does not follow the new revision")
	}
}

func TestSnapshotBeforeTheFirstPolicy(t *testing.T) {
	e, err := policy.New(context.Background(), policy.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := e.Plan(); err != policy.ErrNoPolicy || p.Decision != "data.httpapi.authz" {
		t.Errorf("got %+v, %v; want ErrNoPolicy and the decision named", p, err)
	}
}

// What a policy reads is kept key by key below the top level, so that a
// token's many claims cost nothing when the policy reads one: reading stops
// at the first key not known before evaluation, and a part read whole wins
// over the keys under it, whichever comes first.
func TestSnapshotFieldsBelowTheTopLevel(t *testing.T) {
	type want struct {
		path  []string // keys below input
		reads []string
		not   []string
	}
	cases := []struct {
		name, src string
		wants     []want
	}{
		{"one claim", `package httpapi.authz
allow if "admin" in input.user.claims.groups`, []want{
			{nil, []string{"user"}, []string{"method"}},
			{[]string{"user"}, []string{"claims"}, []string{"sub", "authenticated"}},
			{[]string{"user", "claims"}, []string{"groups"}, []string{"email"}},
		}},
		{"claims by a computed key", `package httpapi.authz
allow if {
	some k
	input.user.claims[k] == "admin"
}`, []want{{[]string{"user", "claims"}, []string{"groups", "email"}, nil}}},
		{"user whole after a claim", `package httpapi.authz
allow if input.user.claims.groups[0] == "admin"
allow if input.user.sub == "root"
ok(u) if u.authenticated
allow if ok(input.user)`, []want{{[]string{"user"}, []string{"claims", "sub", "anything"}, nil}}},
		{"user whole before a claim", `package httpapi.authz
allow if count(input.user) > 0
allow if input.user.claims.groups[0] == "admin"`, []want{{[]string{"user"}, []string{"token"}, nil}}},
		{"an array read whole by index", `package httpapi.authz
allow if input.path_segments[0] == "public"`, []want{{[]string{"path_segments"}, []string{"0"}, nil}}},
		{"import", `package httpapi.authz
import input.user.claims as c
allow if c.email == "a@example.com"`, []want{{[]string{"user", "claims"}, []string{"email"}, []string{"groups"}}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := snapshotOf(t, policy.Config{}, policy.MustParse(map[string]string{"p.rego": c.src}, nil))
			for _, w := range c.wants {
				f := s.Fields
				for _, k := range w.path {
					if !f.Reads(k) {
						t.Fatalf("%v: %q not read", w.path, k)
					}
					f = f.Under(k)
				}
				for _, k := range w.reads {
					if !f.Reads(k) {
						t.Errorf("under %v: Reads(%q) false, want true", w.path, k)
					}
				}
				for _, k := range w.not {
					if f.Reads(k) {
						t.Errorf("under %v: Reads(%q) true, want false", w.path, k)
					}
				}
			}
		})
	}
}

// Union is what either of two policies reads; Keys lists a level's keys.
func TestInputFieldsUnionAndKeys(t *testing.T) {
	fieldsOf := func(src string) *policy.InputFields {
		return snapshotOf(t, policy.Config{}, policy.MustParse(map[string]string{"p.rego": src}, nil)).Fields
	}
	a := fieldsOf("package httpapi.authz\nallow if input.method == \"GET\"\nallow if \"x\" in input.user.claims.groups\n")
	b := fieldsOf("package httpapi.authz\nallow if input.path == \"/\"\nallow if input.user.sub == \"root\"\n")
	whole := fieldsOf("package httpapi.authz\nallow if count(input) > 1\n")
	u := a.Union(b)
	if got := strings.Join(u.Keys(), ","); got != "method,path,user" {
		t.Errorf("union keys %q, want method,path,user", got)
	}
	if got := strings.Join(u.Under("user").Keys(), ","); got != "claims,sub" {
		t.Errorf("union user keys %q, want claims,sub", got)
	}
	if got := strings.Join(a.Keys(), ","); got != "method,user" {
		t.Errorf("a was modified: keys %q", got)
	}
	if a.Union(whole) != nil || whole.Union(b) != nil || whole.Keys() != nil {
		t.Error("a union with an input read whole must read it whole")
	}
}
