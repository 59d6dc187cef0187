package filterdiff

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// The corpus the tests run: seeded, so that a failure comes back the same
// way. FILTERDIFF_SEED and FILTERDIFF_CASES draw another one.
const (
	defaultSeed  = 20261206
	defaultCases = 1200
	namedFirst   = 90000 // the named cases' ids: after any generated corpus's
)

var (
	corpusOnce   sync.Once
	corpusCases  []*Case
	corpusExpect map[int][]int
	corpusErr    error

	sqliteOnce sync.Once
	sqliteDB   *DB
	sqliteErr  error

	pgOnce   sync.Once
	pgServer *Postgres
	pgDB     *DB
	pgErr    error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if pgDB != nil {
		_ = pgDB.Close()
	}
	if pgServer != nil {
		pgServer.Stop()
	}
	if sqliteDB != nil {
		_ = sqliteDB.Close()
	}
	os.Exit(code)
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// corpus returns the cases and, per case id, the ids of the rows the
// oracle includes.
func corpus(t testing.TB) ([]*Case, map[int][]int) {
	t.Helper()
	corpusOnce.Do(func() {
		seed := uint64(envInt("FILTERDIFF_SEED", defaultSeed))
		corpusCases = append(Generate(seed, 1, envInt("FILTERDIFF_CASES", defaultCases)), Named(namedFirst)...)
		oracle, err := NewOracle()
		if err != nil {
			corpusErr = err
			return
		}
		corpusExpect = map[int][]int{}
		for _, c := range corpusCases {
			ids, err := oracle.Expect(context.Background(), c)
			if err != nil {
				corpusErr = err
				return
			}
			corpusExpect[c.ID] = ids
		}
	})
	if corpusErr != nil {
		t.Fatal(corpusErr)
	}
	return corpusCases, corpusExpect
}

// database returns the corpus loaded in the dialect's database: an
// in-memory SQLite, or a PostgreSQL server started for the tests. Without
// PostgreSQL's binaries the test skips, unless CI is set.
func database(t testing.TB, dialect string) *DB {
	t.Helper()
	cases, _ := corpus(t)
	ctx := context.Background()
	switch dialect {
	case "sqlite":
		sqliteOnce.Do(func() {
			sqliteDB, sqliteErr = OpenSQLite()
			if sqliteErr == nil {
				sqliteErr = sqliteDB.Load(ctx, cases)
			}
		})
		if sqliteErr != nil {
			t.Fatal(sqliteErr)
		}
		return sqliteDB
	case "postgresql":
		pgOnce.Do(func() {
			pgServer, pgErr = StartPostgres(ctx)
			if pgErr != nil {
				return
			}
			pgDB, pgErr = pgServer.Open()
			if pgErr == nil {
				pgErr = pgDB.Load(ctx, cases)
			}
		})
		if pgErr == ErrNoPostgres && os.Getenv("CI") == "" {
			t.Skip(pgErr)
		}
		if pgErr != nil {
			t.Fatal(pgErr)
		}
		return pgDB
	}
	t.Fatalf("no database for dialect %q", dialect)
	return nil
}

// pgAvailable reports whether PostgreSQL's binaries are installed; outside
// CI, a test may go on without it.
func pgAvailable(t testing.TB) bool {
	t.Helper()
	if _, err := PostgresBinDir(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(err)
		}
		t.Log(err)
		return false
	}
	return true
}

// outcome is what came of one filter on one database.
type outcome int

const (
	outRight outcome = iota
	outRefused
	outWrong
	outDBError
)

// check runs ans on db for case c and compares the rows with want.
func check(ctx context.Context, db *DB, c *Case, want []int, ans Answer) (outcome, string) {
	if ans.Refused != nil {
		return outRefused, ans.Refused.Error()
	}
	var got []int
	if !ans.Never {
		var err error
		got, err = db.Select(ctx, c.ID, ans.Where, ans.Args)
		if err != nil {
			return outDBError, err.Error()
		}
	}
	if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
		return outWrong, fmt.Sprintf("filter %q args %v: rows %v, full evaluation %v\n%s", ans.Where, ans.Args, got, want, describe(c, got, want))
	}
	return outRight, ""
}

// describe lists the rows on which the filter and the oracle disagree.
func describe(c *Case, got, want []int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\ninput %s\n", c.Module, lit(c.Input))
	for _, r := range c.Rows {
		g, w := slices.Contains(got, r.ID), slices.Contains(want, r.ID)
		if g != w {
			fmt.Fprintf(&b, "row %d %s: filter %v, full evaluation %v\n", r.ID, lit(r.Doc), g, w)
		}
	}
	return b.String()
}

// tally counts the outcomes of a translator on a corpus and one database.
type tally struct {
	cases, translated, refused, refusedSupported, wrong, dbErrors int
	// dbErrorsSupported counts the filters the database rejected in cases
	// of the support list.
	dbErrorsSupported int
	// quietRefusals leaves refusals out of the examples (OPA's).
	quietRefusals bool
	examples      []string
}

func (t *tally) add(c *Case, out outcome, detail string) {
	t.cases++
	switch out {
	case outRight:
		t.translated++
	case outRefused:
		t.refused++
		if c.Supported {
			t.refusedSupported++
			if t.quietRefusals {
				return
			}
			t.example(fmt.Sprintf("%s (%s) refused, though in the support list: %s\n%s", c.Name, strings.Join(c.Features, " "), detail, c.Module))
		}
	case outWrong:
		t.translated++
		t.wrong++
		t.example(fmt.Sprintf("%s (%s) WRONG: %s", c.Name, strings.Join(c.Features, " "), detail))
	case outDBError:
		t.translated++
		t.dbErrors++
		if c.Supported {
			t.dbErrorsSupported++
		}
		t.example(fmt.Sprintf("%s (%s) the database refused the filter: %s\n%s", c.Name, strings.Join(c.Features, " "), detail, c.Module))
	}
}

func (t *tally) example(s string) {
	if len(t.examples) < envInt("FILTERDIFF_EXAMPLES", 8) {
		t.examples = append(t.examples, s)
	}
}

func (t *tally) String() string {
	return fmt.Sprintf("%d cases: %d translated (%d wrong, %d rejected by the database, %d of them in the support list), %d refused (%d of them in the support list)",
		t.cases, t.translated, t.wrong, t.dbErrors, t.dbErrorsSupported, t.refused, t.refusedSupported)
}
