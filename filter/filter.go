package filter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/regoguard/regoguard/policy"
)

// Source is the policy a [Compiler] compiles: the revision being served.
// *policy.Engine implements it.
type Source interface {
	Compiled() (*policy.Compiled, error)
}

// Config configures a [Compiler].
type Config struct {
	// Query is the rule to compile, as a reference: "data.filters.include".
	// A row is selected when the rule is true (defined and not false).
	Query string
	// Unknowns are the parts of the input that stand for the row, such as
	// "input.docs". Each must be input.<table>; the table name is the
	// unknown's last segment, as with OPA.
	Unknowns []string
	// CacheSize bounds the filters cached per revision. Zero means 1024;
	// a negative size disables the cache.
	CacheSize int
}

// DefaultCacheSize is the number of filters cached per revision when
// Config.CacheSize is zero.
const DefaultCacheSize = 1024

// Compiler compiles one rule into filters. It is safe for concurrent use.
type Compiler struct {
	src      Source
	cfg      Config
	query    ast.Body
	unknowns []*ast.Term
	refs     []ast.Ref
	plan     atomic.Pointer[plan]
	mu       sync.Mutex // serialises preparing a new revision's plan
	noMetric rego.EvalOption
}

// plan is the rule prepared for partial evaluation on one revision, and the
// filters compiled with it.
type plan struct {
	compiled *policy.Compiled
	pq       rego.PreparedPartialQuery
	cache    *lru.Cache[string, *Filter]
	origin   *originIndex
}

// New returns a Compiler of cfg.Query on the policy src serves. It checks
// the configuration, not the policy: a policy that cannot be translated
// fails at Compile, with the revision and the input that show it.
func New(src Source, cfg Config) (*Compiler, error) {
	if src == nil {
		return nil, errors.New("filter: no policy source")
	}
	ref, err := ast.ParseRef(cfg.Query)
	if err != nil || !ref.HasPrefix(ast.DefaultRootRef) || len(ref) < 2 {
		return nil, fmt.Errorf("filter: query %q must be a reference under data, such as data.filters.include", cfg.Query)
	}
	if len(cfg.Unknowns) == 0 {
		return nil, errors.New("filter: no unknowns: name the row, such as input.docs")
	}
	c := &Compiler{src: src, cfg: cfg, query: ast.NewBody(ast.NewExpr(ast.NewTerm(ref))),
		noMetric: rego.EvalMetrics(metrics.NoOp())}
	c.cfg.Unknowns = append([]string(nil), cfg.Unknowns...)
	seen := map[string]bool{}
	for _, u := range cfg.Unknowns {
		r, err := ast.ParseRef(u)
		if err != nil || len(r) != 2 || !r[0].Equal(ast.InputRootDocument) {
			return nil, fmt.Errorf("filter: unknown %q must be input.<table>, such as input.docs", u)
		}
		table, ok := r[1].Value.(ast.String)
		if !ok || seen[string(table)] {
			return nil, fmt.Errorf("filter: unknown %q must be input.<table>, each table once", u)
		}
		seen[string(table)] = true
		c.refs = append(c.refs, r)
		c.unknowns = append(c.unknowns, ast.NewTerm(r))
	}
	return c, nil
}

// NewFromPolicy is [New] for callers without an Engine (a command, a
// test): it compiles p into an Engine of its own, whose policy never
// changes.
func NewFromPolicy(ctx context.Context, p *policy.Policy, cfg Config) (*Compiler, error) {
	e, err := policy.New(ctx, policy.Config{Decision: cfg.Query, Logger: slog.New(slog.DiscardHandler)}, p)
	if err != nil {
		return nil, fmt.Errorf("filter: %w", err)
	}
	return New(e, cfg)
}

// Query returns the rule the Compiler compiles, such as data.filters.include.
func (c *Compiler) Query() string { return c.cfg.Query }

// Unknowns returns the unknowns, such as ["input.docs"]. The slice is a copy.
func (c *Compiler) Unknowns() []string { return append([]string(nil), c.cfg.Unknowns...) }

// ErrRevisionChanged is returned by [Compiler.CompileAt] when a new policy
// revision was loaded after the one asked for.
var ErrRevisionChanged = errors.New("filter: the policy revision changed")

// Compile returns the filter of the rule for input (the known part of the
// input: the caller), with the revision src serves now. A rule that cannot
// be translated is an *Error.
func (c *Compiler) Compile(ctx context.Context, input ast.Value) (*Filter, error) {
	return c.compile(ctx, "", input)
}

// CompileAt is [Compiler.Compile] that fails with [ErrRevisionChanged]
// unless src still serves revision: for a list handler whose request was
// authorized by that revision.
func (c *Compiler) CompileAt(ctx context.Context, revision string, input ast.Value) (*Filter, error) {
	return c.compile(ctx, revision, input)
}

func (c *Compiler) compile(ctx context.Context, revision string, input ast.Value) (*Filter, error) {
	comp, err := c.src.Compiled()
	if err != nil {
		return nil, fmt.Errorf("filter: %w", err)
	}
	if revision != "" && comp.Revision() != revision {
		return nil, fmt.Errorf("%w: the request was authorized by %s, the policy is now %s", ErrRevisionChanged, revision, comp.Revision())
	}
	p, err := c.planFor(ctx, comp)
	if err != nil {
		return nil, err
	}
	var key string
	if p.cache != nil {
		key = inputKey(input, comp.InputFields())
		if f, ok := p.cache.Get(key); ok {
			return f, nil
		}
	}
	f, err := c.partial(ctx, p, input)
	if err != nil {
		return nil, err
	}
	if p.cache != nil {
		p.cache.Add(key, f)
	}
	return f, nil
}

// inputKey is the cache key of an input: the text of the part of it the
// policy reads (object keys sorted), so that two inputs share a filter only
// when every field the policy may read is equal in both.
func inputKey(input ast.Value, fields *policy.InputFields) string {
	if input == nil {
		return ""
	}
	return prune(input, fields).String()
}

// prune keeps the fields of v that fields reads; it never modifies v.
func prune(v ast.Value, fields *policy.InputFields) ast.Value {
	obj, ok := v.(ast.Object)
	if !ok || fields == nil {
		return v
	}
	out := ast.NewObject()
	obj.Foreach(func(k, val *ast.Term) {
		key, ok := k.Value.(ast.String)
		if !ok {
			out.Insert(k, val) // a policy reads non-string keys only as a whole
			return
		}
		if fields.Reads(string(key)) {
			out.Insert(k, ast.NewTerm(prune(val.Value, fields.Under(string(key)))))
		}
	})
	return out
}

// planFor returns the plan of the revision comp, preparing it once.
func (c *Compiler) planFor(ctx context.Context, comp *policy.Compiled) (*plan, error) {
	if p := c.plan.Load(); p != nil && p.compiled == comp {
		return p, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.plan.Load(); p != nil && p.compiled == comp {
		return p, nil
	}
	opts := append(comp.RegoOptions(), rego.ParsedQuery(c.query), rego.NondeterministicBuiltins(true))
	pq, err := rego.New(opts...).PrepareForPartial(ctx)
	if err != nil {
		return nil, fmt.Errorf("filter: prepare %s at revision %s: %w", c.cfg.Query, comp.Revision(), err)
	}
	p := &plan{compiled: comp, pq: pq, origin: origins(comp.Compiler())}
	size := c.cfg.CacheSize
	if size == 0 {
		size = DefaultCacheSize
	}
	if size > 0 {
		p.cache, _ = lru.New[string, *Filter](size)
	}
	c.plan.Store(p)
	return p, nil
}

// partial evaluates the rule with the row unknown and translates the rest.
func (c *Compiler) partial(ctx context.Context, p *plan, input ast.Value) (*Filter, error) {
	opts := []rego.EvalOption{
		rego.EvalParsedUnknowns(c.unknowns),
		rego.EvalRuleIndexing(false),
		rego.EvalNondeterministicBuiltins(true),
		c.noMetric,
	}
	if input != nil {
		opts = append(opts, rego.EvalParsedInput(input))
	}
	pqs, err := p.pq.Partial(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("filter: partial evaluation of %s at revision %s: %w", c.cfg.Query, p.compiled.Revision(), err)
	}
	t := newTranslator(c.cfg.Query, c.refs, pqs, p.origin)
	cond, err := t.queries(pqs.Queries)
	if err != nil {
		return nil, err
	}
	f := &Filter{revision: p.compiled.Revision(), rule: c.cfg.Query, cond: cond,
		always: cond.kind == kTrue, never: cond.kind == kFalse}
	return f, nil
}

// Filter is a compiled filter: always (every row), never (no row), or a
// condition on the row's fields. It is immutable and safe for concurrent
// use; render it with [Filter.SQL], [Filter.UCAST] or [Filter.Response].
type Filter struct {
	revision string
	rule     string
	cond     *node
	always   bool
	never    bool
	// rendered keeps the SQL of each dialect and option rendered, with
	// the mappings given (a few at most: see maxRendered), so that a
	// cached filter costs no rendering.
	rendered sync.Map // sqlKey → SQL
	// kept counts the entries of rendered.
	kept atomic.Int32
}

// maxRendered bounds the rendered texts a filter keeps (dialects, offsets
// and mappings together).
const maxRendered = 32

type sqlKey struct {
	dialect Dialect
	param   bool
	offset  int
	// mappings is the canonical text of the mappings, "" for none.
	mappings string
}

// Always reports whether the filter selects every row.
func (f *Filter) Always() bool { return f.always }

// Never reports whether the filter selects no row. Callers may skip the
// query; the rendered forms still select nothing.
func (f *Filter) Never() bool { return f.never }

// Revision names the policy revision the filter was compiled with.
func (f *Filter) Revision() string { return f.revision }

// String renders the condition in a dialect-neutral form for logs and
// errors, such as `(docs.owner = "alice" OR docs.public = true)`; "true"
// for always and "false" for never.
func (f *Filter) String() string {
	s := f.cond.String()
	return strings.TrimSpace(s)
}
