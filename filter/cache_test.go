package filter

import (
	"context"
	"errors"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/regoguard/regoguard/policy"
)

// TestNewRevisionNeverAnsweredFromOldPlan: after a reload, the same input
// gets the new revision's filter, and CompileAt refuses the old revision.
func TestNewRevisionNeverAnsweredFromOldPlan(t *testing.T) {
	ctx := context.Background()
	c, e := newTestCompiler(t, `include if input.docs.owner == input.user`, nil)
	input := ast.MustParseTerm(`{"user": "alice"}`).Value
	f1, err := c.Compile(ctx, input)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := c.Compile(ctx, ast.MustParseTerm(`{"user": "alice"}`).Value)
	if again != f1 {
		t.Error("the same input on the same revision should be answered from the cache")
	}
	other, _ := c.Compile(ctx, ast.MustParseTerm(`{"user": "bob"}`).Value)
	if other == f1 || other.String() == f1.String() {
		t.Errorf("another input got %s", other)
	}
	old := e.Revision()
	p, err := policy.Parse(map[string]string{"filters.rego": "package filters\n\ninclude if input.docs.public\n"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Load(ctx, p); err != nil {
		t.Fatal(err)
	}
	f2, err := c.Compile(ctx, input)
	if err != nil {
		t.Fatal(err)
	}
	if f2.Revision() == f1.Revision() || f2.String() != "docs.public = true" {
		t.Fatalf("after a reload: revision %s, filter %s; before: %s, %s", f2.Revision(), f2, f1.Revision(), f1)
	}
	if _, err := c.CompileAt(ctx, old, input); !errors.Is(err, ErrRevisionChanged) {
		t.Errorf("CompileAt(old revision) = %v, want ErrRevisionChanged", err)
	}
	if f, err := c.CompileAt(ctx, e.Revision(), input); err != nil || f != f2 {
		t.Errorf("CompileAt(current) = %v, %v", f, err)
	}
}

func TestConfigErrors(t *testing.T) {
	_, e := newTestCompiler(t, `include if true`, nil)
	for _, cfg := range []Config{
		{Query: "filters.include", Unknowns: []string{"input.docs"}},
		{Query: "data.filters.include"},
		{Query: "data.filters.include", Unknowns: []string{"input"}},
		{Query: "data.filters.include", Unknowns: []string{"input.docs.x"}},
		{Query: "data.filters.include", Unknowns: []string{"data.docs"}},
		{Query: "data.filters.include", Unknowns: []string{"input.docs", "input.docs"}},
	} {
		if _, err := New(e, cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
	if _, err := New(nil, Config{Query: "data.filters.include", Unknowns: []string{"input.docs"}}); err == nil {
		t.Error("a nil source must be refused")
	}
	empty, _ := policy.New(context.Background(), policy.Config{Decision: "data.filters"}, nil)
	c, _ := New(empty, Config{Query: "data.filters.include", Unknowns: []string{"input.docs"}})
	if _, err := c.Compile(context.Background(), nil); !errors.Is(err, policy.ErrNoPolicy) {
		t.Errorf("no policy: %v", err)
	}
}

func TestAlwaysNeverResponses(t *testing.T) {
	ctx := context.Background()
	c, _ := newTestCompiler(t, `include if input.user == "root"`, nil)
	always, _ := c.Compile(ctx, ast.MustParseTerm(`{"user": "root"}`).Value)
	never, _ := c.Compile(ctx, ast.MustParseTerm(`{"user": "bob"}`).Value)
	if !always.Always() || always.Never() || !never.Never() || never.Always() {
		t.Fatalf("always %s, never %s", always, never)
	}
	for _, tc := range []struct {
		f      *Filter
		target string
		opts   ResponseOptions
		want   string
	}{
		{always, "sql+postgresql", ResponseOptions{}, `{"result":{"query":""}}`},
		{always, "sql+sqlite", ResponseOptions{Parameterized: true}, `{"result":{"query":"","args":[]}}`},
		{always, "ucast+all", ResponseOptions{}, `{"result":{"query":{}}}`},
		{never, "sql+mysql", ResponseOptions{}, `{}`},
		{never, "ucast+minimal", ResponseOptions{}, `{}`},
	} {
		tg, err := ParseTarget(tc.target)
		if err != nil {
			t.Fatal(err)
		}
		b, err := tc.f.Response(tg, tc.opts)
		if err != nil || string(b) != tc.want+"\n" {
			t.Errorf("%s %s: %q %v, want %s", tc.f, tc.target, b, err, tc.want)
		}
	}
	q, _ := never.SQL(SQLServer, SQLOptions{Parameterized: true})
	if q.Where != "WHERE 0 = 1" {
		t.Errorf("never renders %q", q.Where)
	}
}

// TestConcurrentReload: filters compiled while revisions are loaded always
// carry the condition of the revision they name.
func TestConcurrentReload(t *testing.T) {
	ctx := context.Background()
	c, e := newTestCompiler(t, `include if input.docs.owner == input.user`, nil)
	revisions := map[string]string{}
	revisions[e.Revision()] = `docs.owner = "alice"`
	second, err := policy.Parse(map[string]string{"filters.rego": "package filters\n\ninclude if input.docs.public\n"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	first, err := policy.Parse(map[string]string{"filters.rego": "package filters\n\ninclude if input.docs.owner == input.user\n"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 20 {
			p := first
			if i%2 == 0 {
				p = second
			}
			if err := e.Load(ctx, p); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	seen := map[string]string{}
	for {
		select {
		case <-done:
			e.Load(ctx, second)
			revisions[e.Revision()] = "docs.public = true"
			for rev, got := range seen {
				if want, ok := revisions[rev]; ok && want != got {
					t.Errorf("revision %s answered %s, want %s", rev, got, want)
				}
			}
			if len(seen) < 2 {
				t.Logf("only %d revisions seen", len(seen))
			}
			return
		default:
		}
		f, err := c.Compile(ctx, ast.MustParseTerm(`{"user": "alice"}`).Value)
		if err != nil {
			t.Fatal(err)
		}
		if prev, ok := seen[f.Revision()]; ok && prev != f.String() {
			t.Fatalf("revision %s answered both %s and %s", f.Revision(), prev, f)
		}
		seen[f.Revision()] = f.String()
	}
}

// TestCacheKeyIsWhatThePolicyReads: inputs that differ only in fields no
// rule reads (headers, a request ID) share a filter; a field a rule reads
// never does.
func TestCacheKeyIsWhatThePolicyReads(t *testing.T) {
	ctx := context.Background()
	c, _ := newTestCompiler(t, "include if input.docs.owner == input.user.sub\ninclude if input.user.groups[_] == \"admin\"", nil)
	a, _ := c.Compile(ctx, ast.MustParseTerm(`{"user": {"sub": "alice", "groups": []}, "headers": {"x-request-id": "1"}}`).Value)
	b, _ := c.Compile(ctx, ast.MustParseTerm(`{"user": {"sub": "alice", "groups": []}, "headers": {"x-request-id": "2"}}`).Value)
	if a != b {
		t.Error("inputs differing only in unread headers should share a filter")
	}
	admin, _ := c.Compile(ctx, ast.MustParseTerm(`{"user": {"sub": "alice", "groups": ["admin"]}, "headers": {"x-request-id": "1"}}`).Value)
	bob, _ := c.Compile(ctx, ast.MustParseTerm(`{"user": {"sub": "bob", "groups": []}}`).Value)
	if admin == a || !admin.Always() || bob == a || bob.String() != `docs.owner = "bob"` {
		t.Errorf("a read field differs: admin %s, bob %s, alice %s", admin, bob, a)
	}
}

func TestNewFromPolicy(t *testing.T) {
	p := policy.MustParse(map[string]string{"f.rego": "package filters\ninclude if input.docs.public\n"}, nil)
	c, err := NewFromPolicy(context.Background(), p, Config{Query: "data.filters.include", Unknowns: []string{"input.docs"}})
	if err != nil {
		t.Fatal(err)
	}
	f, err := c.Compile(context.Background(), nil)
	if err != nil || f.String() != "docs.public = true" {
		t.Fatalf("%v %v", f, err)
	}
	if _, err := NewFromPolicy(context.Background(), p, Config{Query: "data.nothing.here", Unknowns: []string{"input.docs"}}); err == nil {
		t.Error("a query nothing defines should be refused")
	}
}

// TestRenderedPerMappings: the SQL kept per mapping is the SQL of that
// mapping, never another's, also after the caller changes its map, and an
// invalid mapping is refused every time.
func TestRenderedPerMappings(t *testing.T) {
	c, _ := newTestCompiler(t, `include if input.docs.owner == input.user`, nil)
	f, err := c.Compile(context.Background(), ast.MustParseTerm(`{"user": "alice"}`).Value)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]any{"docs": map[string]any{"$self": "documents", "owner": "owner_id"}}
	wants := []struct {
		mappings map[string]any
		where    string
	}{
		{m, "WHERE documents.owner_id = $1"},
		{nil, "WHERE docs.owner = $1"},
		{map[string]any{}, "WHERE docs.owner = $1"},
		{map[string]any{"docs": map[string]any{"$self": "documents"}}, "WHERE documents.owner = $1"},
		{map[string]any{"postgresql": map[string]any{"docs": map[string]any{"owner": "o"}}}, "WHERE docs.o = $1"},
		// Keys and values that would run together unprefixed.
		{map[string]any{"docs": map[string]any{"owner": "a", "$self": "b"}}, "WHERE b.a = $1"},
		{map[string]any{"docs": map[string]any{"owner": "a$selfb"}}, `WHERE docs."a$selfb" = $1`},
	}
	for round := range 2 {
		for _, w := range wants {
			q, err := f.SQL(PostgreSQL, SQLOptions{Parameterized: true, Mappings: w.mappings})
			if err != nil || q.Where != w.where {
				t.Errorf("round %d %v: %q %v, want %q", round, w.mappings, q.Where, err, w.where)
			}
		}
	}
	m["docs"].(map[string]any)["owner"] = "owner_2"
	if q, _ := f.SQL(PostgreSQL, SQLOptions{Parameterized: true, Mappings: m}); q.Where != "WHERE documents.owner_2 = $1" {
		t.Errorf("after the caller changed its map: %q", q.Where)
	}
	bad := map[string]any{"docs": map[string]any{"owner": 3}}
	for range 2 {
		if _, err := f.SQL(PostgreSQL, SQLOptions{Mappings: bad}); !errors.Is(err, ErrInvalidMappings) {
			t.Errorf("invalid mapping: %v", err)
		}
	}
}
