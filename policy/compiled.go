package policy

import (
	"maps"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
)

// Compiled is one compiled policy revision, for packages that run their own
// queries on the policy an [Engine] serves, such as package filter's partial
// evaluation: the same modules, data, capabilities and options as the
// Engine's own decisions, so that both always judge with the same revision.
// A Compiled never changes; it is safe for concurrent use.
type Compiled struct {
	revision string
	bundles  map[string]string
	compiler *ast.Compiler
	setup    []func(*rego.Rego)
	// inputFields is what any rule of the revision reads of the input.
	inputFields *InputFields
}

// Compiled returns the revision being served, or ErrNoPolicy before the
// first successful Load. The same revision always gives the same *Compiled.
func (e *Engine) Compiled() (*Compiled, error) {
	c := e.current.Load()
	if c == nil {
		return nil, ErrNoPolicy
	}
	return c.view, nil
}

// Revision names the revision, as Decision.Revision does.
func (c *Compiled) Revision() string { return c.revision }

// Bundles gives the revision of each bundle the policy came from (nil when
// it did not come from bundles). The map is a copy.
func (c *Compiled) Bundles() map[string]string { return maps.Clone(c.bundles) }

// Compiler is the revision's compiled modules. It is shared: read it,
// never modify it.
func (c *Compiled) Compiler() *ast.Compiler { return c.compiler }

// RegoOptions returns the options a query on this revision needs: its
// compiler, store, capabilities, strictness, Rego version and print hook.
// Add rego.Query (or ParsedQuery) and prepare.
func (c *Compiled) RegoOptions() []func(*rego.Rego) {
	return append([]func(*rego.Rego){rego.Compiler(c.compiler)}, c.setup...)
}

// InputFields is what any rule of the revision may read of the input (nil:
// all of it): a query on the revision depends on these fields only, so a
// result cached under them never misses a field the policy reads.
func (c *Compiled) InputFields() *InputFields { return c.inputFields }
