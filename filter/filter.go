package filter

import (
	"context"
	"errors"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/regoguard/regoguard/policy"
)

// errTODO marks what is declared but not implemented yet.
var errTODO = errors.New("filter: not implemented yet")

// Source is the policy a [Compiler] compiles: the revision being served.
// *policy.Engine implements it.
type Source interface {
	Compiled() (*policy.Compiled, error)
}

// Config configures a [Compiler].
type Config struct {
	// Query is the rule to compile, as a reference: "data.filters.include".
	// It must be a boolean rule (or a set's membership) whose true value
	// selects a row.
	Query string
	// Unknowns are the parts of the input that stand for the row, such as
	// "input.docs". Each must be input.<table>; the table name is the
	// unknown's last segment, as with OPA.
	Unknowns []string
	// CacheSize bounds the filters cached per revision. Zero means 1024;
	// a negative size disables the cache.
	CacheSize int
}

// Compiler compiles one rule into filters. It is safe for concurrent use.
type Compiler struct {
	src Source
	cfg Config
}

// New returns a Compiler of cfg.Query on the policy src serves. It checks
// the configuration, not the policy: a policy that cannot be translated
// fails at Compile, with the revision and the input that show it.
func New(src Source, cfg Config) (*Compiler, error) {
	return nil, errTODO
}

// Compile returns the filter of the rule for input (the known part of the
// input: the caller), with the revision src serves now.
func (c *Compiler) Compile(ctx context.Context, input ast.Value) (*Filter, error) {
	return nil, errTODO
}

// CompileAt is [Compiler.Compile] that fails with [ErrRevisionChanged]
// unless src still serves revision: for a list handler whose request was
// authorized by that revision.
func (c *Compiler) CompileAt(ctx context.Context, revision string, input ast.Value) (*Filter, error) {
	return nil, errTODO
}

// ErrRevisionChanged is returned by [Compiler.CompileAt] when a new policy
// revision was loaded after the one asked for.
var ErrRevisionChanged = errors.New("filter: the policy revision changed")

// Query returns the rule the Compiler compiles, such as data.filters.include.
func (c *Compiler) Query() string { return c.cfg.Query }

// Unknowns returns the unknowns, such as ["input.docs"]. The slice is a copy.
func (c *Compiler) Unknowns() []string { return append([]string(nil), c.cfg.Unknowns...) }

// Filter is a compiled filter: always (every row), never (no row), or a
// condition on the row's fields. It is immutable and safe for concurrent
// use; render it with [Filter.SQL], [Filter.UCAST] or [Filter.Response].
type Filter struct {
	revision string
	bundles  map[string]string
	always   bool
	never    bool
}

// Always reports whether the filter selects every row.
func (f *Filter) Always() bool { return f.always }

// Never reports whether the filter selects no row. Callers may skip the
// query; the rendered forms still select nothing.
func (f *Filter) Never() bool { return f.never }

// Revision names the policy revision the filter was compiled with.
func (f *Filter) Revision() string { return f.revision }

// String renders the condition in a dialect-neutral form for logs and
// errors, such as `docs.owner = "alice" OR docs.public = true`.
func (f *Filter) String() string { return "" }
