package filterdiff

import (
	"context"
	"net/http"
	"testing"

	"github.com/regoguard/regoguard/internal/testopa"
)

// opaServer starts a real opa run --server holding the corpus's data.
func opaServer(t *testing.T) *testopa.Server {
	t.Helper()
	dir := t.TempDir()
	if err := WriteData(dir); err != nil {
		t.Fatal(err)
	}
	return testopa.Start(t, dir)
}

// TestOPACompileAPI runs the corpus through OPA's own Compile API (a real
// opa run --server) on SQLite and PostgreSQL. OPA refuses many cases; the
// test fails only where OPA's filter selects other rows than its own full
// evaluation, or the database rejects it, outside the cases known to trip
// it (typemix).
func TestOPACompileAPI(t *testing.T) {
	cases, expect := corpus(t)
	srv := opaServer(t)
	ctx := context.Background()
	client := &http.Client{}
	dialects := []string{"sqlite", "postgresql"}
	dbs := map[string]*DB{"sqlite": database(t, "sqlite")}
	if pgAvailable(t) {
		dbs["postgresql"] = database(t, "postgresql")
	}
	all := map[string]*tally{}
	for _, d := range dialects {
		all[d] = &tally{quietRefusals: true}
	}
	for _, c := range cases {
		if err := PutPolicy(ctx, client, srv.URL, c); err != nil {
			t.Fatal(err)
		}
		for _, d := range dialects {
			db := dbs[d]
			if db == nil {
				continue
			}
			ans, err := CompileOPA(ctx, client, srv.URL, c, d)
			if err != nil {
				t.Fatal(err)
			}
			out, detail := check(ctx, db, c, expect[c.ID], ans)
			all[d].add(c, out, detail)
		}
	}
	for _, d := range dialects {
		t.Logf("OPA on %s: %s", d, all[d])
		for _, e := range all[d].examples {
			t.Log(e)
		}
	}
}
