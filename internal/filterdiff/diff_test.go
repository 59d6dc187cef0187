package filterdiff

import (
	"context"
	"testing"
)

// TestDifferential runs every case's filter, parameterized and inlined, on
// SQLite and on a real PostgreSQL server, and compares the rows with OPA's
// full evaluation. Wrong rows (in any case, in either form), an unclear
// error, a refusal of a case in the support list, and a filter of
// such a case that the database rejects (in either form) all fail.
func TestDifferential(t *testing.T) {
	cases, expect := corpus(t)
	rg := newRegoguard(t, cases)
	ctx := context.Background()
	for _, dialect := range []string{"sqlite", "postgresql"} {
		t.Run(dialect, func(t *testing.T) {
			db := database(t, dialect)
			tallies := map[bool]*tally{false: {}, true: {}}
			unclear := 0
			for _, c := range cases {
				f, refused, bad := rg.compile(ctx, c)
				for _, param := range []bool{true, false} {
					var ans Answer
					switch {
					case bad != nil:
						if param {
							unclear++
							t.Errorf("%s: %v\n%s", c.Name, bad, c.Module)
						}
						continue
					case refused != nil:
						ans = Answer{Refused: refused}
					default:
						ans, bad = answer(c, f, dialect, param)
						if bad != nil {
							unclear++
							t.Errorf("%s: %v\n%s", c.Name, bad, c.Module)
							continue
						}
					}
					out, detail := check(ctx, db, c, expect[c.ID], ans)
					tallies[param].add(c, out, detail)
				}
			}
			for _, param := range []bool{true, false} {
				form := map[bool]string{true: "parameterized", false: "inlined"}[param]
				all := tallies[param]
				t.Logf("regoguard on %s, %s: %s", dialect, form, all)
				// A filter the database rejects fails closed: a failure for
				// a case in the support list, in either form; for cases
				// beyond the list (a column compared across types, which
				// PostgreSQL refuses), counted above.
				bad := all.wrong + all.refusedSupported + all.dbErrorsSupported
				if bad > 0 {
					t.Errorf("regoguard on %s, %s: %s", dialect, form, all)
					for _, e := range all.examples {
						t.Error(e)
					}
				}
			}
		})
	}
}
