package policy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/topdown/print"
)

// DefaultDecision is the decision path used when Config.Decision is empty:
// the package that fastapi-opa policies are written in.
const DefaultDecision = "httpapi/authz"

// Config configures an [Engine]. The zero value is usable.
type Config struct {
	// Decision is the path of the decision document, slash-separated
	// ("httpapi/authz", "httpapi/authz/allow") or as a Rego reference
	// ("data.httpapi.authz"). Default DefaultDecision.
	Decision string
	// DenyBuiltins removes built-in functions from the capabilities the
	// policy is compiled against, for example "http.send" to keep policy from
	// making network calls. A policy that calls one fails to compile.
	DenyBuiltins []string
	// Capabilities, when set, replaces OPA's default capabilities.
	Capabilities *ast.Capabilities
	// NonStrict turns off OPA's strict compilation checks (unused variables,
	// imports and function arguments, deprecated built-ins), which are on by
	// default because they catch policy mistakes early.
	NonStrict bool
	// Logger receives the output of print() calls in Rego (at info level)
	// and reload events. Default: slog.Default().
	Logger *slog.Logger
	// WholeDocument evaluates the whole decision document for every input.
	//
	// By default, when Decision names a package whose allow rule decides
	// (the usual shape: allow plus reason or status for refusals, and helper
	// rules), the Engine first evaluates allow alone and the rest of the
	// package only when allow is not true. An allowed Decision then has
	// Result {"allow": true} and no Reason; a refused one is the same as with
	// WholeDocument. Evaluating one rule instead of every rule of the
	// package halves the cost of an allowed request on a policy with reason
	// rules. Set WholeDocument when a handler or a decision log needs the
	// other rules of allowed decisions. A package with a headers rule or
	// headers data is always evaluated whole, since headers apply to allowed
	// requests too.
	//
	// One consequence to know: an error in another rule of the package (two
	// values for reason, a status out of range) fails a refused request
	// (with WholeDocument, every request) but not one that allow allows,
	// since that rule is not evaluated. Errors in allow itself, or in the
	// rules allow reads, fail every request.
	WholeDocument bool
	// RegoVersion is the Rego syntax of the policy: ast.RegoV1 (the default,
	// when zero) or ast.RegoV0, compiled with OPA's v0 compatibility. It
	// applies to the files the Engine reloads itself ([Engine.ReloadFiles],
	// [Engine.WatchFiles]); load the first policy with a [Loader] of the
	// same version.
	RegoVersion ast.RegoVersion
	// Store selects how data documents are held: StoreFlat (the default,
	// compact and converted on read), StoreReadOptimized (converted once at
	// load) or StoreCompact (Go values, as opa run). See [Store].
	Store Store
	// ResultParser reads the decision document into a Decision; default
	// [ParseResult] (a boolean, or an object with allow). A front end whose
	// policies answer in another shape (opa-envoy-plugin's allowed, an
	// AuthZEN decision) gives its own, so that caches, shadows and dry runs
	// see the same Allow as the front end. With one set, the decision
	// package is always evaluated whole (see WholeDocument).
	ResultParser ResultParser
	// OnLoad, when set, is given every policy that compiled, once, before
	// it serves: the first one, and every reload (Load, ReloadFiles,
	// WatchFiles, a bundle activation). What must follow the policy (a
	// decision logger's system.log.mask rules, bundles.DecisionLogger's
	// UsePolicy) follows it here, from the one parse the engine made. An
	// error refuses the policy: the previous revision, and what followed it,
	// keep serving.
	OnLoad func(ctx context.Context, p *Policy) error
}

// A ResultParser turns a decision document (what OPA returned: nil when
// undefined, a bool, or JSON-compatible Go values with json.Number) into a
// Decision, keeping result in Decision.Result. It must return an error, never
// an allow, for a shape it does not understand.
type ResultParser func(result any) (Decision, error)

// Engine evaluates one decision of a compiled [Policy] in-process. It is safe
// for concurrent use; [Engine.Load] may run while evaluations are in flight.
type Engine struct {
	query ast.Ref
	// decision is query as text, for plans and decision logs.
	decision string
	caps     *ast.Capabilities
	strict   bool
	whole    bool
	store    Store
	logger   *slog.Logger
	onLoad   func(context.Context, *Policy) error
	current  atomic.Pointer[compiled]
	// noMetrics is built once: OPA otherwise makes a metrics recorder (and
	// its timers) for every evaluation, which nobody reads here.
	noMetrics rego.EvalOption
	parse     ResultParser
	loadMu    sync.Mutex // serialises Load; evaluations never take it
	version   ast.RegoVersion
	statusMu  sync.Mutex
	status    Status
}

// compiled is one policy revision, ready to evaluate.
type compiled struct {
	query rego.PreparedEvalQuery
	// allow, when set, evaluates the decision package's allow rule alone:
	// a true answer is the whole decision (see Config.WholeDocument).
	allow *rego.PreparedEvalQuery
	// inputFields is what the policy reads of the input; nil when it reads
	// the input whole or by a computed key.
	inputFields *InputFields
	revision    string
	bundles     map[string]string
	// view is what other queries of this revision (filters) share.
	view *Compiled
	// plan is this revision's Plan, made once rather than per request.
	plan Plan
}

// Status reports what an Engine is serving and how its last load went.
type Status struct {
	// Revision is the revision being served; empty before the first load.
	Revision string
	// LoadedAt is when that revision was activated.
	LoadedAt time.Time
	// LastError is the error of the most recent failed load, cleared by the
	// next successful one.
	LastError error
	// LastErrorAt is when LastError happened.
	LastErrorAt time.Time
	// Loads and Failures count successful and failed loads.
	Loads, Failures int
}

// New returns an Engine for cfg serving p, or an error naming what fails to
// compile. p may be nil: the Engine then serves nothing, and every
// evaluation fails with ErrNoPolicy, until a policy is loaded with
// [Engine.Load] (as a bundles.Manager does once a bundle arrives).
func New(ctx context.Context, cfg Config, p *Policy) (*Engine, error) {
	query, err := DecisionRef(cfg.Decision)
	if err != nil {
		return nil, err
	}
	caps := cfg.Capabilities
	if caps == nil {
		caps = ast.CapabilitiesForThisVersion()
	}
	if len(cfg.DenyBuiltins) > 0 {
		caps = withoutBuiltins(caps, cfg.DenyBuiltins)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	if _, err := newStore(cfg.Store, nil, true); err != nil {
		return nil, err
	}
	e := &Engine{query: query, decision: query.String(), caps: caps, strict: !cfg.NonStrict, whole: cfg.WholeDocument, store: cfg.Store,
		logger: logger, onLoad: cfg.OnLoad, noMetrics: rego.EvalMetrics(metrics.NoOp()), version: cfg.regoVersion(), parse: cfg.ResultParser}
	if e.parse == nil {
		e.parse = ParseResult
	} else {
		e.whole = true
	}
	if p != nil {
		if err := e.Load(ctx, p); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// DecisionRef parses a decision path ("httpapi/authz", "/httpapi/authz",
// "data.httpapi.authz", or the package name "httpapi.authz") into a
// reference under data. An empty path is DefaultDecision.
func DecisionRef(path string) (ast.Ref, error) {
	if path == "" {
		path = DefaultDecision
	}
	if !strings.Contains(path, "/") && strings.Contains(path, ".") && !strings.HasPrefix(path, "data.") {
		// A package name, as written after `package`.
		path = "data." + path
	}
	if strings.HasPrefix(path, "data.") || path == "data" {
		ref, err := ast.ParseRef(path)
		if err != nil {
			return nil, fmt.Errorf("policy: decision %q: %w", path, err)
		}
		return ref, nil
	}
	ref := ast.DefaultRootRef.Copy()
	for seg := range strings.SplitSeq(strings.Trim(path, "/"), "/") {
		if seg == "" {
			return nil, fmt.Errorf("policy: decision %q has an empty segment", path)
		}
		ref = ref.Append(ast.StringTerm(seg))
	}
	if len(ref) == 1 {
		return nil, fmt.Errorf("policy: decision %q names no document", path)
	}
	return ref, nil
}

// DecisionRef returns the reference of the decision document the Engine
// evaluates, such as data.httpapi.authz.
func (e *Engine) DecisionRef() ast.Ref { return e.query }

// Load compiles p and, only if it compiles, makes it the policy that
// evaluations use. Evaluations in flight finish on the policy they started
// with. A parse or compile error is a *CompileError naming file, line and
// column, and the previous policy keeps serving.
func (e *Engine) Load(ctx context.Context, p *Policy) error {
	e.loadMu.Lock()
	defer e.loadMu.Unlock()
	var c *compiled
	var err error
	if e.current.Load() != nil {
		// A revision serves: build the next one at a lower priority than
		// the decisions being made (see lowPriority).
		lowPriority(func() { c, err = e.compile(ctx, p) })
	} else {
		c, err = e.compile(ctx, p)
	}
	if err != nil {
		e.recordFailure(err)
		return err
	}
	if e.onLoad != nil {
		if err := e.onLoad(ctx, p); err != nil {
			err = fmt.Errorf("policy: %w", err)
			e.recordFailure(err)
			return err
		}
	}
	e.current.Store(c)
	e.statusMu.Lock()
	e.status.Revision, e.status.LoadedAt, e.status.LastError = c.revision, time.Now(), nil
	e.status.Loads++
	e.statusMu.Unlock()
	e.logger.InfoContext(ctx, "policy loaded", "revision", c.revision, "decision", e.query.String())
	return nil
}

// RecordFailure notes a failed attempt to produce a policy (a file that could
// not be read, a bundle that could not be downloaded) in the Engine's status,
// for loaders that fail before they reach Load.
func (e *Engine) RecordFailure(err error) {
	if err != nil {
		e.recordFailure(err)
	}
}

func (e *Engine) recordFailure(err error) {
	e.statusMu.Lock()
	e.status.LastError, e.status.LastErrorAt = err, time.Now()
	e.status.Failures++
	e.statusMu.Unlock()
}

func (e *Engine) compile(ctx context.Context, p *Policy) (*compiled, error) {
	if p == nil || len(p.Modules) == 0 {
		return nil, errors.New("policy: no modules to compile")
	}
	revision, store, err := e.prepareData(p)
	if err != nil {
		return nil, err
	}
	if !e.defines(ctx, p, store) {
		return nil, fmt.Errorf("%w: no rule or data defines %s%s", ErrUndefinedDecision, e.query, packageHint(p))
	}
	// rego.New makes the compiler, with its own options; the hook hands it
	// over so that the allow query below shares the compiled policy.
	var compiler *ast.Compiler
	opts := append(e.evalSetup(store), rego.Query(e.query.String()),
		rego.CompilerHook(func(c *ast.Compiler) { compiler = c }))
	for _, m := range p.Modules {
		opts = append(opts, rego.ParsedModule(m))
	}
	pq, err := rego.New(opts...).PrepareForEval(ctx)
	if err != nil {
		return nil, locate(err)
	}
	if compiler == nil {
		return nil, errors.New("policy: OPA did not hand over its compiler (rego.CompilerHook)")
	}
	c := &compiled{query: pq, revision: revision, bundles: maps.Clone(p.Bundles),
		inputFields: inputFields(compiler.Modules, e.query)}
	if allow, ok := e.allowFirst(ctx, compiler, store); ok {
		aq, err := rego.New(append(e.evalSetup(store), rego.Compiler(compiler), rego.Query(allow.String()))...).PrepareForEval(ctx)
		if err != nil {
			return nil, fmt.Errorf("policy: prepare %s: %w", allow, err)
		}
		c.allow = &aq
	}
	c.view = &Compiled{revision: revision, bundles: c.bundles, compiler: compiler, setup: e.evalSetup(store),
		inputFields: inputFields(compiler.Modules, ast.DefaultRootRef)}
	c.plan = Plan{Revision: c.revision, Fields: c.inputFields, RevisionFields: c.inputFields, Decision: e.decision}
	return c, nil
}

// evalSetup is what every query of one revision shares.
func (e *Engine) evalSetup(store storage.Store) []func(*rego.Rego) {
	return []func(*rego.Rego){
		rego.Store(store),
		rego.Capabilities(e.caps),
		rego.Strict(e.strict),
		rego.SetRegoVersion(e.version),
		rego.EnablePrintStatements(true),
		rego.PrintHook(printHook{e.logger}),
	}
}

// allowFirst returns the reference of the decision package's allow rule
// when an allow of true is the whole decision worth computing: the decision
// is a package (not a rule or data), allow is a complete rule of it, and
// neither rules nor data give the package headers, which allowed requests
// also receive.
func (e *Engine) allowFirst(ctx context.Context, c *ast.Compiler, store storage.Store) (ast.Ref, bool) {
	if e.whole || len(c.GetRulesForVirtualDocument(e.query)) > 0 {
		return nil, false
	}
	allow := e.query.Append(ast.StringTerm("allow"))
	headers := e.query.Append(ast.StringTerm("headers"))
	rules := c.GetRulesExact(allow)
	if len(rules) == 0 || len(c.GetRulesWithPrefix(allow)) != len(rules) ||
		len(c.GetRulesWithPrefix(headers)) > 0 || dataAt(ctx, store, headers) {
		return nil, false
	}
	for _, r := range rules {
		if len(r.Head.Args) > 0 || r.Head.RuleKind() != ast.SingleValue {
			return nil, false
		}
	}
	return allow, true
}

// defines reports whether some module's package or some data document could
// produce the decision document: the package is the decision path, a prefix
// of it, or below it.
func (e *Engine) defines(ctx context.Context, p *Policy, store storage.Store) bool {
	query := staticPrefix(e.query)
	for _, m := range p.Modules {
		if m.Package == nil {
			continue
		}
		pkg := m.Package.Path
		if pkg.HasPrefix(query) || query.HasPrefix(pkg) {
			return true
		}
	}
	return dataAt(ctx, store, query)
}

// staticPrefix is the part of ref known before evaluation: of
// data.tenants[input.tenant], data.tenants.
func staticPrefix(ref ast.Ref) ast.Ref { return ref[:1+len(staticKeys(ref[1:]))] }

// dataAt reports whether the store has a base document at ref (data.a.b),
// whatever Go types Policy.Data was given in. For a ref with a part known
// only at evaluation (data.a[input.x]) it looks at the static prefix (data.a).
func dataAt(ctx context.Context, store storage.Store, ref ast.Ref) bool {
	path, err := storage.NewPathForRef(staticPrefix(ref))
	if err != nil {
		return false
	}
	if _, err := storage.ReadOne(ctx, store, path); err != nil {
		return false
	}
	return true
}

// Eval evaluates the decision for input, an OPA value that becomes the
// policy's input document. An undefined decision is a deny with
// Defined false. It returns ErrNoPolicy before the first successful Load, and
// an error (never an allow) when evaluation fails or the decision has a shape
// that is neither a boolean nor an object with allow.
func (e *Engine) Eval(ctx context.Context, input ast.Value) (Decision, error) {
	return e.EvalWith(ctx, input)
}

// EvalWith is [Engine.Eval] with extra OPA evaluation options, such as
// rego.EvalQueryTracer with a profiler to see which expressions cost most.
func (e *Engine) EvalWith(ctx context.Context, input ast.Value, opts ...rego.EvalOption) (Decision, error) {
	c := e.current.Load()
	if c == nil {
		return Decision{}, ErrNoPolicy
	}
	return e.eval(ctx, c, input, opts)
}

func (e *Engine) eval(ctx context.Context, c *compiled, input ast.Value, opts []rego.EvalOption) (Decision, error) {
	st := getEvalState(ctx, input, opts, e.noMetrics)
	defer st.release()
	failed := func(err error) (Decision, error) {
		return Decision{Revision: c.revision, Bundles: c.bundles}, fmt.Errorf("policy: evaluate %s at revision %s: %w", e.query, c.revision, err)
	}
	if c.allow != nil {
		rs, err := c.allow.Eval(ctx, st.opts...)
		if err != nil {
			return failed(err)
		}
		if v, _ := firstValue(rs).(bool); v {
			return Decision{Allow: true, Defined: true, Result: map[string]any{"allow": true}, Revision: c.revision, Bundles: c.bundles}, nil
		}
		// Each query starts with an empty memo, as with OPA's own cache.
		st.memo.Pop()
		st.memo.Push()
	}
	rs, err := c.query.Eval(ctx, st.opts...)
	if err != nil {
		return failed(err)
	}
	d, err := e.parse(firstValue(rs))
	d.Revision, d.Bundles = c.revision, c.bundles
	if err != nil {
		return d, fmt.Errorf("%w (decision %s at revision %s)", err, e.query, c.revision)
	}
	return d, nil
}

// firstValue is the value of the query's expression, or nil when undefined.
func firstValue(rs rego.ResultSet) any {
	if len(rs) > 0 && len(rs[0].Expressions) > 0 {
		return rs[0].Expressions[0].Value
	}
	return nil
}

// Ready reports whether a policy is loaded.
func (e *Engine) Ready() bool { return e.current.Load() != nil }

// Revision returns the revision being served, or "" before the first load.
func (e *Engine) Revision() string {
	if c := e.current.Load(); c != nil {
		return c.revision
	}
	return ""
}

// Status returns what the Engine serves and how its loads went.
func (e *Engine) Status() Status {
	e.statusMu.Lock()
	defer e.statusMu.Unlock()
	return e.status
}

func withoutBuiltins(caps *ast.Capabilities, deny []string) *ast.Capabilities {
	out := *caps
	out.Builtins = slices.DeleteFunc(slices.Clone(caps.Builtins), func(b *ast.Builtin) bool {
		return slices.Contains(deny, b.Name)
	})
	return &out
}

// printHook sends the output of Rego's print() to slog, with the location of
// the print call, so policy authors can debug without a separate tool.
type printHook struct{ logger *slog.Logger }

func (h printHook) Print(pctx print.Context, msg string) error {
	loc := ""
	if pctx.Location != nil {
		loc = fmt.Sprintf("%s:%d", pctx.Location.File, pctx.Location.Row)
	}
	ctx := pctx.Context
	if ctx == nil {
		ctx = context.Background()
	}
	h.logger.InfoContext(ctx, msg, "source", "rego print", "location", loc)
	return nil
}
