package filter

import (
	"context"
	"strings"
	"testing"
)

// TestColumnNameStaysOneIdentifierProbe: a column the policy names with a
// dot (input.docs["other.secret"]) must render as one quoted identifier,
// never as docs.other.secret, which SQL reads as column secret of table
// other (in schema docs): another table than the rule is about. Count the
// renderings that split it: must be 0.
func TestColumnNameStaysOneIdentifierProbe(t *testing.T) {
	c, _ := newTestCompiler(t, `include if input.docs["other.secret"] == "x"`, nil)
	f, err := c.Compile(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	split := 0
	for _, d := range []Dialect{PostgreSQL, MySQL, SQLite, SQLServer} {
		for _, p := range []bool{false, true} {
			q, err := f.SQL(d, SQLOptions{Parameterized: p})
			if err != nil {
				continue
			}
			if strings.Contains(q.Where, "docs.other.secret") {
				split++
				t.Errorf("%s parameterized=%v: %s", d, p, q.Where)
			}
		}
	}
	if split != 0 {
		t.Errorf("%d renderings split the column name at its dot (want 0)", split)
	}
}
