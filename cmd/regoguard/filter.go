package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/spf13/cobra"

	"github.com/regoguard/regoguard/filter"
	"github.com/regoguard/regoguard/policy"
)

type filterOptions struct {
	policies      []string
	regoVersion   string
	query         string
	unknowns      []string
	input         string
	target        string
	parameterized bool
	mappings      []string
	mappingsFile  string
}

func newFilterCommand() *cobra.Command {
	o := &filterOptions{}
	cmd := &cobra.Command{
		Use:   "filter --policy DIR --query data.filters.include --unknowns input.docs --target sql+postgresql [--input FILE]",
		Short: "Compile a policy rule into an SQL WHERE clause or a UCAST filter, as OPA's Compile API does",
		Long: `filter partially evaluates a rule for a known input, leaving --unknowns (the
row, such as input.docs) unknown, and prints what remains as a filter, exactly
as OPA's Compile API (POST /v1/compile/{path}) answers the same request:

  {"result":{"query":"WHERE docs.owner = 'alice'"}}   the rows the filter selects
  {"result":{"query":""}}                             every row (always)
  {}                                                  no row (never)

--target is one of sql+postgresql, sql+mysql, sql+sqlserver, sql+sqlite,
ucast+all, ucast+minimal, ucast+prisma. --parameterized writes SQL with
placeholders ($1, ?, @p1) and adds "args" for database/sql. The table of a
field is the unknown's last segment (docs for input.docs) unless a mapping
renames it: --mapping docs=documents --mapping docs.owner=owner_id, or
--mappings FILE, a JSON object in OPA's options.targetSQLTableMappings form.

A policy the target cannot express exits 1 with the rule, its file:line and
why; nothing is ever dropped from a filter.`,
		Example: `  regoguard filter --policy policy/ --query data.filters.include --unknowns input.docs \
      --input caller.json --target sql+postgresql
  echo '{"user":"alice"}' | regoguard filter --policy policy/ --query data.filters.include \
      --unknowns input.docs --input - --target sql+sqlite --parameterized --mapping docs=documents`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(cmd.Context(), cmd.InOrStdin(), cmd.OutOrStdout())
		},
	}
	fs := cmd.Flags()
	fs.StringArrayVar(&o.policies, "policy", nil, "Rego and data files or directories (repeatable)")
	fs.StringVar(&o.regoVersion, "rego-version", "v1", "Rego syntax of the --policy files: v1 or v0")
	fs.StringVar(&o.query, "query", "", "the rule to compile, such as data.filters.include")
	fs.StringSliceVar(&o.unknowns, "unknowns", nil, "references left unknown, such as input.docs (repeatable; default: the rule's METADATA custom.unknowns)")
	fs.StringVar(&o.input, "input", "", "JSON file of the known input (- for stdin; none: no input)")
	fs.StringVar(&o.target, "target", "", "sql+postgresql, sql+mysql, sql+sqlserver, sql+sqlite, ucast+all, ucast+minimal or ucast+prisma")
	fs.BoolVar(&o.parameterized, "parameterized", false, `SQL with placeholders ($1, ?, @p1) and an "args" list, for database/sql`)
	fs.StringArrayVar(&o.mappings, "mapping", nil, "rename a table (docs=documents) or a column (docs.owner=owner_id) (repeatable)")
	fs.StringVar(&o.mappingsFile, "mappings", "", "JSON file of table and column mappings in OPA's targetSQLTableMappings form")
	return withLayers(cmd)
}

// request builds the Compile API request the flags describe.
func (o *filterOptions) request(stdin io.Reader) (*filterRequest, error) {
	if len(o.policies) == 0 {
		return nil, configErrorf("--policy is required")
	}
	if o.query == "" {
		return nil, configErrorf("--query is required (the rule to compile, such as data.filters.include)")
	}
	if o.target == "" {
		return nil, configErrorf("--target is required: sql+postgresql, sql+mysql, sql+sqlserver, sql+sqlite, ucast+all, ucast+minimal or ucast+prisma")
	}
	t, err := parseFilterTarget(o.target)
	if err != nil {
		return nil, configErrorf("--target: %w", err)
	}
	ref, err := parseRuleRef(o.query)
	if err != nil {
		return nil, configErrorf("--query: %w", err)
	}
	req := &filterRequest{Query: ref, Targets: []filter.Target{t}, Parameterized: o.parameterized}
	if o.parameterized && t.Lang != "sql" {
		return nil, configErrorf("--parameterized is for SQL targets; %s has no placeholders", t)
	}
	if len(o.unknowns) == 0 {
		return nil, configErrorf("--unknowns is required: the row, such as input.docs")
	}
	for _, u := range o.unknowns {
		r, err := ast.ParseRef(strings.TrimSpace(u))
		if err != nil {
			return nil, configErrorf("--unknowns: %q: %w", u, err)
		}
		if !r.HasPrefix(ast.InputRootRef) && !r.HasPrefix(ast.DefaultRootRef) {
			return nil, configErrorf("--unknowns: %q: an unknown starts with input. or data.", u)
		}
		req.Unknowns = append(req.Unknowns, r)
	}
	if req.Input, err = o.readInput(stdin); err != nil {
		return nil, err
	}
	if req.Mappings, err = o.readMappings(); err != nil {
		return nil, err
	}
	return req, nil
}

// parseRuleRef reads a rule reference: data.filters.include, or the path
// form of the Compile API (filters/include).
func parseRuleRef(s string) (ast.Ref, error) {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "data.") && !strings.HasPrefix(s, "data[") {
		if strings.Contains(s, "/") || !strings.Contains(s, ".") {
			ref, err := compilePathRef(s)
			if err != nil {
				return nil, errors.New("not a rule reference such as data.filters.include")
			}
			return ref, nil
		}
		return nil, fmt.Errorf("%q: a rule reference starts with data. (data.filters.include)", s)
	}
	ref, err := ast.ParseRef(s)
	if err != nil {
		return nil, err
	}
	if !ref.IsGround() {
		return nil, fmt.Errorf("%q: not a rule reference (it has variables)", s)
	}
	return ref, nil
}

func (o *filterOptions) readInput(stdin io.Reader) (ast.Value, error) {
	var data []byte
	var err error
	switch o.input {
	case "":
		return nil, nil
	case "-":
		data, err = io.ReadAll(io.LimitReader(stdin, 64<<20))
	default:
		data, err = os.ReadFile(o.input)
	}
	if err != nil {
		return nil, configErrorf("--input: %w", err)
	}
	v, err := parseJSONValue(data)
	if err != nil {
		return nil, configErrorf("--input %s: %w", o.input, err)
	}
	return v, nil
}

// parseJSONValue reads one JSON document, numbers kept exact.
func parseJSONValue(data []byte) (ast.Value, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var x any
	if err := dec.Decode(&x); err != nil {
		return nil, fmt.Errorf("not JSON: %w", err)
	}
	if dec.More() {
		return nil, errors.New("not JSON: more than one value")
	}
	return ast.InterfaceToValue(x)
}

// readMappings builds OPA's targetSQLTableMappings from --mappings and
// --mapping: the flags give one mapping for every dialect.
func (o *filterOptions) readMappings() (map[string]any, error) {
	var m map[string]any
	if o.mappingsFile != "" {
		data, err := os.ReadFile(o.mappingsFile)
		if err != nil {
			return nil, configErrorf("--mappings: %w", err)
		}
		if err := json.Unmarshal(data, &m); err != nil || m == nil {
			return nil, configErrorf("--mappings %s: not a JSON object of tables (%v)", o.mappingsFile, err)
		}
		if len(o.mappings) > 0 {
			return nil, configErrorf("give --mappings or --mapping, not both")
		}
		return m, nil
	}
	for _, kv := range o.mappings {
		from, to, ok := strings.Cut(kv, "=")
		from, to = strings.TrimSpace(from), strings.TrimSpace(to)
		if !ok || from == "" || to == "" {
			return nil, configErrorf("--mapping %q: want TABLE=NAME or TABLE.COLUMN=NAME", kv)
		}
		table, column, isColumn := strings.Cut(from, ".")
		if table == "" || (isColumn && (column == "" || strings.Contains(column, "."))) {
			return nil, configErrorf("--mapping %q: want TABLE=NAME or TABLE.COLUMN=NAME", kv)
		}
		if m == nil {
			m = map[string]any{}
		}
		tm, _ := m[table].(map[string]any)
		if tm == nil {
			tm = map[string]any{}
			m[table] = tm
		}
		key := "$self"
		if isColumn {
			key = column
		}
		if prev, dup := tm[key]; dup && prev != to {
			return nil, configErrorf("--mapping %q: %s is already mapped to %v", kv, from, prev)
		}
		tm[key] = to
	}
	return m, nil
}

func (o *filterOptions) run(ctx context.Context, stdin io.Reader, out io.Writer) error {
	if err := oneOf("rego-version", o.regoVersion, "v1", "v0"); err != nil {
		return err
	}
	req, err := o.request(stdin)
	if err != nil {
		return err
	}
	for _, path := range o.policies {
		if _, err := os.Stat(path); err != nil {
			return configErrorf("--policy: %w", err)
		}
	}
	version := ast.RegoV1
	if o.regoVersion == "v0" {
		version = ast.RegoV0
	}
	p, err := policy.Loader{RegoVersion: version}.LoadFiles(o.policies...)
	if err != nil {
		return sourceError("--policy", err)
	}
	c, err := newPolicyFilters(ctx, p, req.Query, version)
	if err != nil {
		return err
	}
	f, err := c.compileFilter(ctx, req)
	if err != nil {
		return filterError(req, err)
	}
	body, err := marshalAnswer(req, f)
	if err != nil {
		return filterError(req, err)
	}
	_, err = out.Write(body)
	return err
}

// filterError words a refusal for a person: the rule, the target, and
// where and why.
func filterError(req *filterRequest, err error) error {
	var ae *compileAPIError
	if errors.As(err, &ae) {
		return configErrorf("%s", ae.Message)
	}
	var fe *filter.Error
	if errors.As(err, &fe) {
		return fmt.Errorf("%s cannot be compiled to %s:\n  %s", req.Query, req.Targets[0], describeFilterError(fe))
	}
	if errors.Is(err, filter.ErrInvalidMappings) {
		return configErrorf("mappings: %w", err)
	}
	return fmt.Errorf("%s: %w", req.Query, err)
}

// newPolicyFilters compiles p into an engine whose decision is the rule
// (so that a rule nothing defines is a usage error naming it) and returns
// its filter compiler.
func newPolicyFilters(ctx context.Context, p *policy.Policy, rule ast.Ref, version ast.RegoVersion) (*engineFilters, error) {
	path, err := rule.Ptr()
	if err != nil {
		return nil, configErrorf("--query %s: %w", rule, err)
	}
	e, err := policy.New(ctx, policy.Config{Decision: path, RegoVersion: version, Logger: slog.New(slog.DiscardHandler)}, p)
	if errors.Is(err, policy.ErrUndefinedDecision) {
		return nil, configErrorf("--query: %w", err)
	}
	if err != nil {
		return nil, sourceError("--policy", err)
	}
	if err := ruleDefined(e, rule); err != nil {
		return nil, configErrorf("--query: %w", err)
	}
	return newEngineFilters(e), nil
}

// ruleDefined fails when no rule of the policy e serves defines rule (a
// misspelt rule would otherwise be a filter that selects nothing).
func ruleDefined(e *policy.Engine, rule ast.Ref) error {
	comp, err := e.Compiled()
	if err != nil {
		return err
	}
	c := comp.Compiler()
	if len(c.GetRulesForVirtualDocument(rule)) == 0 && len(c.GetRulesWithPrefix(rule)) == 0 && len(c.GetRules(rule)) == 0 {
		return fmt.Errorf("no rule of the policy defines %s", rule)
	}
	return nil
}

// describeFilterError is a refusal as file:line:col: expression: why.
func describeFilterError(fe *filter.Error) string {
	var b strings.Builder
	if fe.Line > 0 {
		fmt.Fprintf(&b, "%s:%d:%d: ", fe.File, fe.Line, fe.Column)
	}
	if fe.Expr != "" {
		fmt.Fprintf(&b, "%s: ", fe.Expr)
	}
	b.WriteString(fe.Reason)
	return b.String()
}
