package filterdiff

import (
	"context"
	"encoding/json"
	"strconv"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/regoguard/regoguard/filter"
)

var (
	fuzzOnce sync.Once
	fuzzDB   *DB
	fuzzErr  error
	fuzzMu   sync.Mutex
	fuzzNext = 1
)

// FuzzTranslator compiles generated policies with callers and rows that
// hold arbitrary strings and numbers. The translator must never panic; a
// refusal must be a *filter.Error; every dialect must render the filter;
// and the filter, parameterized and inlined, must select on SQLite exactly
// the rows OPA's full evaluation includes.
func FuzzTranslator(f *testing.F) {
	f.Add(uint64(1), "a_%", "3")
	f.Add(uint64(2), `O'Brien\`, "2.5")
	f.Add(uint64(3), "", "-0")
	f.Add(uint64(4), "ÑANDÚ", "1e3")
	f.Add(uint64(5), "x'); DROP TABLE documents; --", "10")
	f.Fuzz(func(t *testing.T, seed uint64, s, num string) {
		if !utf8.ValidString(s) {
			return // OPA's strings are UTF-8; JSON would replace the bytes
		}
		var number json.Number
		if _, err := strconv.ParseFloat(num, 64); err == nil && json.Valid([]byte(num)) {
			number = json.Number(num)
		}
		fuzzMu.Lock()
		id := fuzzNext
		fuzzNext++
		fuzzMu.Unlock()
		c := Generate(seed, id, 1)[0]
		user := c.Input["user"].(map[string]any)
		for _, k := range []string{"prefix", "name", "title", "dept", "needle"} {
			if seed%3 != 0 || k == "prefix" {
				user[k] = s
			}
		}
		if number != "" {
			user["score"] = number
		}
		for i, r := range c.Rows {
			if i%2 == 0 {
				r.Doc["title"] = s
			}
			if i%3 == 0 {
				r.Doc["owner"] = s + "x"
			}
			if number != "" && i%4 == 1 {
				r.Doc["score"] = number
			}
		}
		ctx := context.Background()
		oracle, err := NewOracle()
		if err != nil {
			t.Fatal(err)
		}
		want, err := oracle.Expect(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		rg := newRegoguard(t, []*Case{c})
		fl, refused, unclear := rg.compile(ctx, c)
		if unclear != nil {
			t.Fatalf("%v\n%s", unclear, c.Module)
		}
		if refused != nil {
			return
		}
		for _, d := range []filter.Dialect{filter.PostgreSQL, filter.MySQL, filter.SQLite, filter.SQLServer} {
			for _, param := range []bool{true, false} {
				if _, err := answer(c, fl, string(d), param); err != nil {
					t.Fatalf("%s: %v\n%s", d, err, c.Module)
				}
			}
		}
		fuzzOnce.Do(func() {
			fuzzDB, fuzzErr = OpenSQLite()
			if fuzzErr == nil {
				fuzzErr = fuzzDB.Load(ctx, nil)
			}
		})
		if fuzzErr != nil {
			t.Fatal(fuzzErr)
		}
		if err := fuzzDB.Insert(ctx, []*Case{c}); err != nil {
			t.Fatal(err)
		}
		for _, param := range []bool{true, false} {
			ans, err := answer(c, fl, "sqlite", param)
			if err != nil {
				t.Fatal(err)
			}
			if out, detail := check(ctx, fuzzDB, c, want, ans); out == outWrong || out == outDBError {
				t.Errorf("parameterized %v: %s", param, detail)
			}
		}
	})
}
