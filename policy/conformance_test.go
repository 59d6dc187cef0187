package policy

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/test/cases"
	"github.com/open-policy-agent/opa/v1/test/cases/testdata"
	"github.com/open-policy-agent/opa/v1/topdown"
	"github.com/open-policy-agent/opa/v1/util"

	"github.com/regoguard/regoguard/policy/internal/flatstore"
)

// loadOPACases reads OPA's own evaluation test cases (Rego v1), embedded in
// its module.
func loadOPACases(t *testing.T) []cases.TestCase {
	t.Helper()
	var all []cases.TestCase
	err := fs.WalkDir(testdata.V1, "v1", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		bs, err := fs.ReadFile(testdata.V1, path)
		if err != nil {
			return err
		}
		var set cases.Set
		if err := util.Unmarshal(bs, &set); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		for _, c := range set.Cases {
			c.Filename = path
			all = append(all, c)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) < 1000 {
		t.Fatalf("only %d cases found in OPA's test data", len(all))
	}
	return all
}

// outcome is what one evaluation gave: its results, sorted, or its error.
type outcome struct {
	results []string
	err     string
}

func (o outcome) String() string {
	if o.err != "" {
		return "error: " + o.err
	}
	return strings.Join(o.results, "\n")
}

// TestConformanceStores runs OPA's own test cases (every case of
// v1/test/cases/testdata/v1: built-in functions, base and virtual
// documents, iteration, walk, with, comprehensions...) against the data
// held by each of the Engine's stores, as the Engine builds them (from Go
// values, and from the JSON text as the loaders read it), and compares each
// outcome with the one of OPA's own in-memory store: the same results, or
// the same error.
func TestConformanceStores(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	ctx := context.Background()
	all := loadOPACases(t)
	stores := map[string]func(map[string]any) (storage.Store, error){
		"flat": func(d map[string]any) (storage.Store, error) { return newStore(StoreFlat, d, false) },
		"flat from JSON text": func(d map[string]any) (storage.Store, error) {
			b, err := json.Marshal(d)
			if err != nil {
				return nil, err
			}
			fb := flatstore.NewBuilder()
			v, err := fb.ParseJSON(b)
			if err != nil {
				return nil, err
			}
			doc, err := fb.Doc(v)
			if err != nil {
				return nil, err
			}
			return flatstore.New(doc), nil
		},
		"read-optimized": func(d map[string]any) (storage.Store, error) { return newStore(StoreReadOptimized, d, false) },
		"compact":        func(d map[string]any) (storage.Store, error) { return newStore(StoreCompact, d, false) },
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for k := range stores {
			if !yield(k) {
				return
			}
		}
	})
	compared, disagreed := 0, 0
	for _, tc := range all {
		if len(tc.Env) > 0 {
			continue // environment variables: not for a shared test process
		}
		popts := ast.ParserOptions{RegoVersion: ast.RegoV1}
		if tc.ExperimentalKeywords {
			popts.Capabilities = ast.CapabilitiesForThisVersion(ast.CapabilitiesExperimentalKeywords(true))
		}
		modules := map[string]string{}
		for i, m := range tc.Modules {
			modules[fmt.Sprintf("test-%d.rego", i)] = m
		}
		compiler, err := ast.CompileModulesWithOpt(modules, ast.CompileOpts{ParserOptions: popts})
		if err != nil {
			continue // a case about compile errors: no store involved
		}
		query, err := compiler.QueryCompiler().Compile(ast.MustParseBody(tc.Query))
		if err != nil {
			continue
		}
		var input *ast.Term
		if tc.InputTerm != nil {
			input = ast.MustParseTerm(*tc.InputTerm)
		} else if tc.Input != nil {
			input = ast.NewTerm(ast.MustInterfaceToValue(*tc.Input))
		}
		data := map[string]any{}
		if tc.Data != nil {
			data = *tc.Data
		}
		run := func(store storage.Store) outcome {
			txn := storage.NewTransactionOrDie(ctx, store)
			defer store.Abort(ctx, txn)
			rs, err := topdown.NewQuery(query).WithCompiler(compiler).WithStore(store).WithTransaction(txn).
				WithInput(input).WithStrictBuiltinErrors(tc.StrictError).Run(ctx)
			if err != nil {
				return outcome{err: err.Error()}
			}
			var out []string
			for _, r := range rs {
				keys := make([]string, 0, len(r))
				for k, v := range r {
					keys = append(keys, k.String()+"="+v.String())
				}
				slices.Sort(keys)
				out = append(out, strings.Join(keys, ","))
			}
			slices.Sort(out)
			return outcome{results: out}
		}
		want := run(inmem.NewFromObject(data))
		for _, name := range names {
			store, err := stores[name](data)
			if err != nil {
				t.Errorf("%s: %s: store: %v", tc.Note, name, err)
				continue
			}
			compared++
			if got := run(store); got.String() != want.String() {
				disagreed++
				t.Errorf("%s (%s): %s store disagrees with OPA's:\ngot  %s\nwant %s", tc.Note, tc.Filename, name, got, want)
			}
		}
	}
	t.Logf("%d cases × store compared with OPA's in-memory store, %d disagreed", compared, disagreed)
	if compared < 4000 {
		t.Errorf("only %d comparisons made", compared)
	}
}
