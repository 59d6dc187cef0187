package filter

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

// TestSQLPerDialect checks the text and arguments of each construct in
// each dialect, inlined and with placeholders.
func TestSQLPerDialect(t *testing.T) {
	type want struct{ inline, param, args string }
	cases := []struct {
		rule string
		want map[Dialect]want
	}{
		{`include if input.docs.owner == input.user`, map[Dialect]want{
			PostgreSQL: {`WHERE docs.owner = E'alice'`, `WHERE docs.owner = $3`, `[alice]`},
			MySQL:      {`WHERE docs.owner = 'alice'`, `WHERE docs.owner = ?`, `[alice]`},
			SQLite:     {`WHERE docs.owner = 'alice'`, `WHERE (docs.owner = ? AND typeof(docs.owner) = 'text')`, `[alice]`},
			SQLServer:  {`WHERE docs.owner = N'alice'`, `WHERE docs.owner = @p3`, `[alice]`},
		}},
		{`include if input.docs.level < 3`, map[Dialect]want{
			PostgreSQL: {`WHERE docs.level < 3`, `WHERE docs.level < $3`, `[3]`},
			MySQL:      {`WHERE docs.level < '3'`, `WHERE docs.level < ?`, `[3]`},
			SQLite:     {`WHERE +docs.level < 3`, `WHERE +docs.level < ?`, `[3]`},
			SQLServer:  {`WHERE docs.level < N'3'`, `WHERE docs.level < @p3`, `[3]`},
		}},
		{`include if input.docs.title >= "m"`, map[Dialect]want{
			PostgreSQL: {`WHERE docs.title >= E'm'`, `WHERE docs.title >= $3 COLLATE "C"`, `[m]`},
			SQLite:     {`WHERE docs.title >= 'm'`, `WHERE +docs.title >= ?`, `[m]`},
		}},
		{`include if input.docs.dept in {"hr", "it"}`, map[Dialect]want{
			PostgreSQL: {`WHERE docs.dept IN (E'hr', E'it')`, `WHERE docs.dept IN ($3, $4)`, `[hr it]`},
			SQLServer:  {`WHERE docs.dept IN (N'hr', N'it')`, `WHERE docs.dept IN (@p3, @p4)`, `[hr it]`},
		}},
		{`include if not input.docs.dept in {"hr"}`, map[Dialect]want{
			PostgreSQL: {`WHERE NOT docs.dept IN (E'hr')`, `WHERE NOT (docs.dept IN ($3))`, `[hr]`},
			SQLite:     {`WHERE NOT docs.dept IN ('hr')`, `WHERE (docs.dept IS NOT NULL AND NOT ((docs.dept IN (?) AND typeof(docs.dept) = 'text')))`, `[hr]`},
		}},
		{`include if startswith(input.docs.title, "a_%\\")`, map[Dialect]want{
			PostgreSQL: {`WHERE docs.title LIKE E'a\\_\\%\\\\%'`, `WHERE docs.title LIKE $3`, `[a\_\%\\%]`},
			MySQL:      {`WHERE docs.title LIKE 'a\\_\\%\\\\%'`, `WHERE docs.title LIKE ?`, `[a\_\%\\%]`},
			SQLite:     {`WHERE instr(docs.title, 'a_%\') = 1`, `WHERE (instr(docs.title, ?) = 1 AND typeof(docs.title) = 'text')`, `[a_%\]`},
			SQLServer:  {`WHERE docs.title LIKE N'a!_!%\%' ESCAPE '!'`, `WHERE docs.title LIKE @p3 ESCAPE '!'`, `[a!_!%\%]`},
		}},
		{`include if endswith(input.docs.title, "[x]")`, map[Dialect]want{
			SQLite:    {`WHERE substr(docs.title, -3) = '[x]'`, `WHERE (substr(docs.title, ?) = ? AND typeof(docs.title) = 'text')`, `[-3 [x]]`},
			SQLServer: {`WHERE docs.title LIKE N'%![x]' ESCAPE '!'`, `WHERE docs.title LIKE @p3 ESCAPE '!'`, `[%![x]]`},
		}},
		{`include if contains(input.docs.title, "é")`, map[Dialect]want{
			PostgreSQL: {`WHERE docs.title LIKE E'%é%'`, `WHERE docs.title LIKE $3`, `[%é%]`},
			SQLite:     {`WHERE instr(docs.title, 'é') > 0`, `WHERE (instr(docs.title, ?) > 0 AND typeof(docs.title) = 'text')`, `[é]`},
		}},
		{`include if input.docs.public`, map[Dialect]want{
			PostgreSQL: {`WHERE docs.public = TRUE`, `WHERE docs.public = $3`, `[true]`},
			SQLServer:  {`WHERE docs.public = 1`, `WHERE docs.public = @p3`, `[true]`},
		}},
		{`include if not input.docs.archived`, map[Dialect]want{
			SQLite: {`WHERE (docs.archived IS NULL OR (docs.archived IS NOT NULL AND NOT ((docs.archived = TRUE AND typeof(docs.archived) = 'integer'))))`, `WHERE (docs.archived IS NULL OR (docs.archived IS NOT NULL AND NOT ((docs.archived = ? AND typeof(docs.archived) = 'integer'))))`, `[true]`},
		}},
		{"include if input.docs.owner == input.user\ninclude if input.docs.level > 2.5", map[Dialect]want{
			MySQL: {`WHERE (docs.owner = 'alice' OR docs.level > '2.5')`, `WHERE (docs.owner = ? OR docs.level > ?)`, `[alice 2.5]`},
		}},
		{`include if input.docs.owner == input.docs.dept`, map[Dialect]want{
			PostgreSQL: {`WHERE docs.owner = docs.dept`, `WHERE docs.owner = docs.dept`, `[]`},
			SQLite:     {`WHERE +docs.owner = +docs.dept`, `WHERE +docs.owner = +docs.dept`, `[]`},
		}},
		{`include if input.docs.dept in {"hr", 3, true}`, map[Dialect]want{
			SQLite: {`WHERE ((docs.dept IN (TRUE) AND typeof(docs.dept) = 'integer') OR (docs.dept IN (3) AND typeof(docs.dept) IN ('integer', 'real')) OR docs.dept IN ('hr'))`, `WHERE ((docs.dept IN (?) AND typeof(docs.dept) = 'integer') OR (docs.dept IN (?) AND typeof(docs.dept) IN ('integer', 'real')) OR (docs.dept IN (?) AND typeof(docs.dept) = 'text'))`, `[true 3 hr]`},
		}},
	}
	for _, tc := range cases {
		c, _ := newTestCompiler(t, tc.rule, nil)
		f, err := c.Compile(context.Background(), ast.MustParseTerm(`{"user": "alice"}`).Value)
		if err != nil {
			t.Fatalf("%s: %v", tc.rule, err)
		}
		for d, w := range tc.want {
			in, err := f.SQL(d, SQLOptions{})
			if err != nil {
				t.Fatalf("%s %s: %v", tc.rule, d, err)
			}
			if in.Where != w.inline || in.Args != nil {
				t.Errorf("%s %s inline:\n got %s %v\nwant %s", tc.rule, d, in.Where, in.Args, w.inline)
			}
			p, err := f.SQL(d, SQLOptions{Parameterized: true, ArgOffset: 2})
			if err != nil {
				t.Fatalf("%s %s: %v", tc.rule, d, err)
			}
			if got := fmt.Sprint(p.Args); p.Where != w.param || got != w.args {
				t.Errorf("%s %s parameterized:\n got %s %s\nwant %s %s", tc.rule, d, p.Where, got, w.param, w.args)
			}
		}
	}
}

// TestMappings applies targetSQLTableMappings as OPA does: per dialect
// first, then per target, then the whole map; $self renames the table.
func TestMappings(t *testing.T) {
	c, _ := newTestCompiler(t, `include if input.docs.owner == "a"`, nil)
	f, _ := c.Compile(context.Background(), ast.MustParseTerm(`{}`).Value)
	for _, tc := range []struct {
		m    map[string]any
		want string
	}{
		{map[string]any{"docs": map[string]any{"$self": "documents", "owner": "owner_id"}}, `WHERE documents.owner_id = 'a'`},
		{map[string]any{"sqlite": map[string]any{"docs": map[string]any{"$self": "d"}}, "docs": map[string]any{"$self": "x"}}, `WHERE d.owner = 'a'`},
		{map[string]any{"sql": map[string]any{"docs": map[string]any{"owner": "my owner"}}}, `WHERE docs."my owner" = 'a'`},
	} {
		q, err := f.SQL(SQLite, SQLOptions{Mappings: tc.m})
		if err != nil || q.Where != tc.want {
			t.Errorf("%v: got %q, %v; want %q", tc.m, q.Where, err, tc.want)
		}
	}
	if _, err := f.SQL(SQLite, SQLOptions{Mappings: map[string]any{"docs": map[string]any{"$self": 3}}}); err == nil {
		t.Error("a table name that is not a string must be refused")
	}
}

// TestIdentifierProbe: table and column names holding quotes and the
// placeholder characters of each dialect are quoted, never read as SQL or
// as placeholders, inlined or parameterized.
func TestIdentifierProbe(t *testing.T) {
	c, _ := newTestCompiler(t, "include if input.docs.owner == \"a\"\ninclude if startswith(input.docs.owner, \"b\")", nil)
	f, _ := c.Compile(context.Background(), ast.MustParseTerm(`{}`).Value)
	quoted := map[Dialect]func(string) string{
		PostgreSQL: func(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` },
		SQLite:     func(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` },
		SQLServer:  func(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` },
		MySQL:      func(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" },
	}
	through := 0
	for _, name := range []string{"a$0", "a$1", "a?b", `a"b`, "a`b", "a'b", "$$", "a@p1", "x) OR (1=1", "a--b", "a;b"} {
		for d, q := range quoted {
			for _, p := range []bool{false, true} {
				got, err := f.SQL(d, SQLOptions{Parameterized: p, Mappings: map[string]any{"docs": map[string]any{"owner": name}}})
				if err != nil {
					t.Fatal(err)
				}
				if strings.Count(got.Where, "docs."+q(name)) < 2 || (p && len(got.Args) != 2) {
					through++
					t.Errorf("column %q %s parameterized=%v: %s %v", name, d, p, got.Where, got.Args)
				}
			}
		}
	}
	if through > 0 {
		t.Errorf("%d renderings let a name through unquoted", through)
	}
}
