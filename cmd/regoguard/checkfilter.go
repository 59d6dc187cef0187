package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/regoguard/regoguard/filter"
	"github.com/regoguard/regoguard/policy"
)

// caseFilter is a filter case of a cases file: a rule compiled into a
// filter for a known input, run on candidate rows in an in-memory SQLite
// database, and compared row for row with full evaluation of the rule for
// each row and with the rows expected.
//
//   - name: alice sees her own documents and the public ones
//     filter:
//     query: data.filters.include
//     unknowns: [input.docs]
//     input: {user: alice}
//     rows: [{id: 1, owner: alice}, {id: 2, owner: bob, public: true}, {id: 3, owner: bob}]
//     expect: [1, 2]
type caseFilter struct {
	// Query is the rule, such as data.filters.include.
	Query string `yaml:"query"`
	// Unknowns is the one reference the rows stand for, such as
	// input.docs (a list of one, as in the Compile API).
	Unknowns []string `yaml:"unknowns"`
	// Input is the known input; the row is set at the unknown's place.
	Input map[string]any `yaml:"input"`
	// Rows are the candidate rows: a list of objects of scalar fields, or
	// the name of a JSON file holding that list (relative to the cases
	// file). An absent field is a NULL column.
	Rows any `yaml:"rows"`
	// Key is the field that names a row in expect and in reports; default id.
	Key string `yaml:"key"`
	// Mappings are OPA's targetSQLTableMappings (table and column renames).
	Mappings map[string]any `yaml:"mappings"`
	// Expect lists the keys of the rows the caller may see.
	Expect []any `yaml:"expect"`

	unknown ast.Ref
	rows    []map[string]any
}

func (f *caseFilter) validate(c *testCase) error {
	if c.Request.Method != "" || c.Request.Path != "" || c.GRPC != nil || c.Identity != nil || c.Expect != nil {
		return fmt.Errorf("a filter case has only filter: (its input is filter.input, its expected rows filter.expect)")
	}
	if c.Name == "" {
		c.Name = "filter " + f.Query
	}
	if _, err := parseRuleRef(f.Query); err != nil {
		return fmt.Errorf("filter.query: %w", err)
	}
	if len(f.Unknowns) != 1 {
		return fmt.Errorf("filter.unknowns: give exactly one reference, the rows' (such as input.docs)")
	}
	u, err := ast.ParseRef(f.Unknowns[0])
	if err != nil || len(u) < 2 || !u.HasPrefix(ast.InputRootRef) || !u.IsGround() {
		return fmt.Errorf("filter.unknowns: %q is not a reference under input, such as input.docs", f.Unknowns[0])
	}
	f.unknown = u
	if f.Key == "" {
		f.Key = "id"
	}
	if f.Expect == nil {
		return fmt.Errorf("filter.expect: list the keys (%s) of the rows expected; [] for none", f.Key)
	}
	if err := f.loadRows(filepath.Dir(c.source)); err != nil {
		return fmt.Errorf("filter.rows: %w", err)
	}
	return nil
}

// loadRows reads the candidate rows and checks that each is an object of
// scalars with a distinct key.
func (f *caseFilter) loadRows(dir string) error {
	var raw []any
	switch r := f.Rows.(type) {
	case nil:
		return fmt.Errorf("give the candidate rows, a list of objects or a JSON file")
	case string:
		name := r
		if !filepath.IsAbs(name) {
			name = filepath.Join(dir, name)
		}
		data, err := os.ReadFile(name)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(data, &raw); err != nil {
			return fmt.Errorf("%s: not a JSON list of rows: %w", name, err)
		}
	case []any:
		raw = r
	default:
		return fmt.Errorf("a list of objects or the name of a JSON file, not %T", r)
	}
	seen := map[string]bool{}
	for i, item := range raw {
		row, ok := yamlToJSON(item).(map[string]any)
		if !ok {
			return fmt.Errorf("row %d: not an object", i+1)
		}
		for field, v := range row {
			switch v.(type) {
			case nil, bool, string, int, int64, float64, json.Number:
			default:
				return fmt.Errorf("row %d: field %q: a column holds a string, a number, a boolean or null, not %T", i+1, field, v)
			}
		}
		k, ok := row[f.Key]
		if !ok || k == nil {
			return fmt.Errorf("row %d: no key field %q (set filter.key)", i+1, f.Key)
		}
		ks := keyString(k)
		if seen[ks] {
			return fmt.Errorf("row %d: key %s=%s appears twice", i+1, f.Key, ks)
		}
		seen[ks] = true
		f.rows = append(f.rows, row)
	}
	return nil
}

// yamlToJSON makes the maps YAML decodes JSON-shaped.
func yamlToJSON(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = yamlToJSON(e)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[fmt.Sprint(k)] = yamlToJSON(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = yamlToJSON(e)
		}
		return out
	case float64:
		if x == float64(int64(x)) && x < 1<<53 && x > -(1<<53) {
			return int64(x)
		}
	case int:
		return int64(x)
	}
	return v
}

func keyString(v any) string {
	b, _ := json.Marshal(yamlToJSON(v))
	return string(b)
}

// filterChecker runs filter cases: it compiles filters and evaluates the
// rule for each row with the same policy revision.
type filterChecker struct {
	engine  *policy.Engine
	filters *engineFilters

	mu       sync.Mutex
	prepared map[string]*rego.PreparedEvalQuery
}

func newFilterChecker(ctx context.Context, p *policy.Policy, first ast.Ref, version ast.RegoVersion) (*filterChecker, error) {
	path, err := first.Ptr()
	if err != nil {
		return nil, configErrorf("filter.query %s: %w", first, err)
	}
	e, err := policy.New(ctx, policy.Config{Decision: path, RegoVersion: version, Logger: slog.New(slog.DiscardHandler)}, p)
	if errors.Is(err, policy.ErrUndefinedDecision) {
		return nil, configErrorf("filter.query: %w", err)
	}
	if err != nil {
		return nil, sourceError("--policy", err)
	}
	return &filterChecker{engine: e, filters: newEngineFilters(e), prepared: map[string]*rego.PreparedEvalQuery{}}, nil
}

// evaluator prepares the full evaluation of query once, on the revision
// the filters are compiled with.
func (fc *filterChecker) evaluator(ctx context.Context, query ast.Ref) (*rego.PreparedEvalQuery, error) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if pq, ok := fc.prepared[query.String()]; ok {
		return pq, nil
	}
	comp, err := fc.engine.Compiled()
	if err != nil {
		return nil, err
	}
	if err := ruleDefined(fc.engine, query); err != nil {
		return nil, fmt.Errorf("filter.query: %w", err)
	}
	opts := append(comp.RegoOptions(), rego.ParsedQuery(ast.NewBody(ast.NewExpr(ast.NewTerm(query)))))
	pq, err := rego.New(opts...).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("preparing %s: %w", query, err)
	}
	fc.prepared[query.String()] = &pq
	return &pq, nil
}

// withRow is the known input with row set at the unknown's place.
func withRow(input map[string]any, unknown ast.Ref, row map[string]any) (ast.Value, error) {
	in, err := ast.InterfaceToValue(yamlToJSON(input))
	if err != nil {
		return nil, err
	}
	if input == nil {
		in = ast.NewObject()
	}
	rowv, err := ast.InterfaceToValue(row)
	if err != nil {
		return nil, err
	}
	obj, ok := in.(ast.Object)
	if !ok {
		return nil, fmt.Errorf("filter.input is not an object")
	}
	// Walk input.a.b, creating objects on the way, and set the last key.
	path := unknown[1:]
	cur := obj
	for i, t := range path {
		if i == len(path)-1 {
			cur.Insert(t, ast.NewTerm(rowv))
			break
		}
		next, ok := cur.Get(t).Value.(ast.Object)
		if cur.Get(t) == nil || !ok {
			next = ast.NewObject()
			cur.Insert(t, ast.NewTerm(next))
		}
		cur = next
	}
	return obj, nil
}

// included evaluates the rule fully for one row: the row is selected when
// the rule is defined and not false, as partial evaluation reads a query.
func (fc *filterChecker) included(ctx context.Context, pq *rego.PreparedEvalQuery, input ast.Value) (bool, error) {
	rs, err := pq.Eval(ctx, rego.EvalParsedInput(input))
	if err != nil {
		return false, err
	}
	for _, r := range rs {
		for _, e := range r.Expressions {
			if b, ok := e.Value.(bool); !ok || b {
				return true, nil
			}
		}
	}
	return false, nil
}

// rowSets is what a filter case found.
type rowSets struct {
	Query     string   `json:"query,omitempty"`    // the parameterized WHERE clause
	Args      []any    `json:"args,omitempty"`     // its arguments
	Filter    []string `json:"filter"`             // keys the filter selected
	Inlined   []string `json:"inlined,omitempty"`  // keys the inlined form selected
	Evaluated []string `json:"evaluated"`          // keys full evaluation selected
	Expected  []string `json:"expected"`           // keys expected
	Mismatch  []string `json:"mismatch,omitempty"` // what differs, for a person
}

// run runs one filter case.
func (fc *filterChecker) run(ctx context.Context, f *caseFilter) (*rowSets, error) {
	query, _ := parseRuleRef(f.Query)
	input, err := ast.InterfaceToValue(yamlToJSON(f.Input))
	if err != nil {
		return nil, fmt.Errorf("filter.input: %w", err)
	}
	if f.Input == nil {
		input = nil
	}
	mappings, _ := yamlToJSON(f.Mappings).(map[string]any)
	target := filter.Target{Lang: "sql", Dialect: "sqlite"}
	req := &filterRequest{Query: query, Input: input, Unknowns: []ast.Ref{f.unknown}, Targets: []filter.Target{target}, Mappings: mappings}
	out := &rowSets{}
	for _, k := range f.Expect {
		out.Expected = append(out.Expected, keyString(k))
	}
	sort.Strings(out.Expected)

	pq, err := fc.evaluator(ctx, query)
	if err != nil {
		return nil, err
	}
	for _, row := range f.rows {
		in, err := withRow(f.Input, f.unknown, row)
		if err != nil {
			return nil, fmt.Errorf("filter.input: %w", err)
		}
		ok, err := fc.included(ctx, pq, in)
		if err != nil {
			return nil, fmt.Errorf("evaluating %s for row %s: %w", query, keyString(row[f.Key]), err)
		}
		if ok {
			out.Evaluated = append(out.Evaluated, keyString(row[f.Key]))
		}
	}
	sort.Strings(out.Evaluated)

	table := sqliteTable{name: tableName(f.unknown, mappings, target), key: f.Key, columnNames: columnMappings(f.unknown, mappings, target)}
	db, err := table.open(ctx, f.rows)
	if err != nil {
		return nil, err
	}
	defer db.Close()

	flt, err := fc.filters.compileFilter(ctx, req)
	if err != nil {
		return nil, filterError(req, err)
	}
	// The filter as a service runs it (placeholders and arguments), then
	// inlined, as OPA's Compile API writes it.
	param, err := flt.SQL(filter.SQLite, filter.SQLOptions{Parameterized: true, Mappings: mappings})
	if err != nil {
		return nil, filterError(req, err)
	}
	out.Query, out.Args = param.Where, param.Args
	if out.Filter, err = db.selectKeys(ctx, param); err != nil {
		return nil, err
	}
	inlined, err := flt.SQL(filter.SQLite, filter.SQLOptions{Mappings: mappings})
	if err != nil {
		return nil, filterError(req, err)
	}
	if out.Inlined, err = db.selectKeys(ctx, inlined); err != nil {
		return nil, err
	}
	out.Mismatch = append(out.Mismatch, filterMismatch("the filter", out.Filter, out.Evaluated)...)
	out.Mismatch = append(out.Mismatch, filterMismatch("the inlined filter", out.Inlined, out.Evaluated)...)
	out.Mismatch = append(out.Mismatch, expectMismatch(out.Evaluated, out.Expected)...)
	return out, nil
}

// onlyIn returns the keys of a that b lacks.
func onlyIn(a, b []string) []string {
	var out []string
	for _, k := range a {
		if !slices.Contains(b, k) {
			out = append(out, k)
		}
	}
	return out
}

// filterMismatch says how a filter's rows differ from full evaluation's.
func filterMismatch(name string, got, evaluated []string) []string {
	var out []string
	if extra := onlyIn(got, evaluated); len(extra) > 0 {
		out = append(out, fmt.Sprintf("%s selects rows %s that full evaluation refuses (wider than the policy)", name, strings.Join(extra, ",")))
	}
	if missed := onlyIn(evaluated, got); len(missed) > 0 {
		out = append(out, fmt.Sprintf("%s misses rows %s that full evaluation selects", name, strings.Join(missed, ",")))
	}
	return out
}

// expectMismatch says how full evaluation's rows differ from the rows
// expected.
func expectMismatch(evaluated, expected []string) []string {
	var out []string
	if extra := onlyIn(evaluated, expected); len(extra) > 0 {
		out = append(out, fmt.Sprintf("the policy selects rows %s, not expected", strings.Join(extra, ",")))
	}
	if missed := onlyIn(expected, evaluated); len(missed) > 0 {
		out = append(out, fmt.Sprintf("the policy refuses rows %s, expected", strings.Join(missed, ",")))
	}
	return out
}

// tableName is the SQL table of the unknown: its last segment, or its
// mapped name ($self or $table) for the dialect, as OPA resolves mappings.
func tableName(unknown ast.Ref, mappings map[string]any, t filter.Target) string {
	name := string(unknown[len(unknown)-1].Value.(ast.String))
	if tm, ok := dialectMappings(mappings, t)[name].(map[string]any); ok {
		for _, k := range []string{"$self", "$table"} {
			if s, ok := tm[k].(string); ok {
				return s
			}
		}
	}
	return name
}

// columnMappings is the field → column renames of the unknown's table.
func columnMappings(unknown ast.Ref, mappings map[string]any, t filter.Target) map[string]string {
	name := string(unknown[len(unknown)-1].Value.(ast.String))
	out := map[string]string{}
	if tm, ok := dialectMappings(mappings, t)[name].(map[string]any); ok {
		for k, v := range tm {
			if s, ok := v.(string); ok && !strings.HasPrefix(k, "$") {
				out[k] = s
			}
		}
	}
	return out
}

// dialectMappings picks the mappings of t as OPA does: the dialect's, else
// the target's, else the whole map.
func dialectMappings(m map[string]any, t filter.Target) map[string]any {
	if d, ok := m[t.Dialect].(map[string]any); ok {
		return d
	}
	if d, ok := m[t.Lang].(map[string]any); ok {
		return d
	}
	return m
}

// onlyFilterCases reports whether every case is a filter case: check then
// needs no request decision (--decision) from the policy.
func onlyFilterCases(cases []testCase) bool {
	for _, c := range cases {
		if c.Filter == nil {
			return false
		}
	}
	return len(cases) > 0
}

// filterCheckerFor loads the policy for the filter cases, or returns nil
// when there is none.
func (o *checkOptions) filterCheckerFor(ctx context.Context, cases []testCase) (*filterChecker, error) {
	if !slices.ContainsFunc(cases, func(c testCase) bool { return c.Filter != nil }) {
		return nil, nil
	}
	if len(o.policies) == 0 {
		return nil, configErrorf("filter cases need --policy: a remote OPA's filters are not compared here")
	}
	p, err := policy.Loader{RegoVersion: o.astRegoVersion()}.LoadFiles(o.policies...)
	if err != nil {
		return nil, sourceError("--policy", err)
	}
	i := slices.IndexFunc(cases, func(c testCase) bool { return c.Filter != nil })
	first, _ := parseRuleRef(cases[i].Filter.Query)
	return newFilterChecker(ctx, p, first, o.astRegoVersion())
}

// runFilterCase runs one filter case into a row of the report.
func runFilterCase(ctx context.Context, c testCase, fc *filterChecker) checkResult {
	f := c.Filter
	res := checkResult{Name: c.Name, Kind: "filter", Source: fmt.Sprintf("%s:%d", c.source, c.line),
		Request: "filter " + f.Query, User: "-", Expected: "rows " + keysLabel(keyStrings(f.Expect))}
	start := time.Now()
	got, err := fc.run(ctx, f)
	res.Duration = time.Since(start).Seconds()
	if err != nil {
		res.Failure = err.Error()
		return res
	}
	res.Filter = got
	if len(got.Mismatch) > 0 {
		res.Failure = strings.Join(got.Mismatch, "; ") + fmt.Sprintf(" (filter %q, args %v)", got.Query, got.Args)
	}
	return res
}

func keyStrings(keys []any) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = keyString(k)
	}
	sort.Strings(out)
	return out
}

func keysLabel(keys []string) string {
	if len(keys) == 0 {
		return "none"
	}
	return strings.Join(keys, ",")
}

// label is the GOT column of a filter case.
func (f *rowSets) label() string {
	return "rows " + keysLabel(f.Filter)
}
