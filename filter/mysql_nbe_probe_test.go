package filter

import (
	"context"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

// nbeOutside returns the text of inlined MySQL outside its quoted
// literals, as a server with sql_mode NO_BACKSLASH_ESCAPES lexes them: a
// backslash is an ordinary character and only two quotes stand for one.
func nbeOutside(sql string) string {
	var out strings.Builder
	in := false
	for i := 0; i < len(sql); i++ {
		c := sql[i]
		switch {
		case !in && c == '\'':
			in = true
		case in && c == '\'' && i+1 < len(sql) && sql[i+1] == '\'':
			i++
		case in && c == '\'':
			in = false
		case !in:
			out.WriteByte(c)
		}
	}
	return out.String()
}

// TestMySQLInlinedNoBackslashEscapesProbe renders caller-controlled values
// inlined for MySQL and counts those that break out of their literal on a
// server whose sql_mode has NO_BACKSLASH_ESCAPES (common: it is part of
// ANSI-leaning setups and of some managed MySQL defaults). A backslash-
// escaped quote (\') ends the literal there, and the rest of the value is
// SQL. The text outside the literals must be the same as for a harmless
// value.
func TestMySQLInlinedNoBackslashEscapesProbe(t *testing.T) {
	c, _ := newTestCompiler(t, `include if input.docs.owner == input.user
include if startswith(input.docs.title, input.user)
include if input.docs.dept in {input.user, "x"}`, nil)
	render := func(u string) string {
		in := ast.NewObject(ast.Item(ast.StringTerm("user"), ast.StringTerm(u)))
		f, err := c.Compile(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		q, err := f.SQL(MySQL, SQLOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return q.Where
	}
	want := nbeOutside(render("harmless"))
	escaped := 0
	for _, u := range []string{
		`a\' OR 1=1 OR 'x`,
		`a\') OR 1=1 OR ('x`,
		`\'`,
		`a\`,
		`%\_' OR '1`,
		"a\x00' OR '1",
	} {
		got := render(u)
		if nbeOutside(got) != want {
			escaped++
			t.Errorf("value %q breaks out of its literal under NO_BACKSLASH_ESCAPES: %s", u, got)
		}
	}
	if escaped != 0 {
		t.Errorf("%d caller values escaped their MySQL literal (want 0)", escaped)
	}
}
