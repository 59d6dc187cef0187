package authz

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/regoguard/regoguard/filter"
	"github.com/regoguard/regoguard/internal/pipeline"
	"github.com/regoguard/regoguard/policy"
)

// ErrNotAuthorized is returned by [Middleware.Filter] for a request the
// middleware did not authorize (not behind it, or exempted by Skip).
var ErrNotAuthorized = errors.New("authz: the request was not authorized by the middleware")

// Filter returns the data filter of c for the request r, for a list
// handler behind the middleware: which rows may this caller see. It is
// compiled for the identity the middleware authenticated, with the input it
// builds for r, and with the policy revision that authorized r (an error
// wrapping filter.ErrRevisionChanged if a new one was loaded since: ask the
// client to retry). It is logged to Config.DecisionLogger as a decision in
// the shape of OPA's Compile API events: Path the rule, Result the filter
// as UCAST ({"query": {...}}, nil when no row may be seen), Custom
// {"type": "open-policy-agent/compile", "unknowns": [...], "filter": "..."}.
//
// A request that did not pass the middleware's authorization is refused
// with ErrNotAuthorized: no filter is made without an identity the
// middleware verified. Render the filter with f.SQL (placeholders and
// arguments for database/sql) or f.UCAST.
func (m *Middleware) Filter(r *http.Request, c *filter.Compiler) (*filter.Filter, error) {
	res, ok := FromContext(r.Context())
	if !ok {
		return nil, ErrNotAuthorized
	}
	input, err := m.buildInput(r, res.Identity, nil)
	if err != nil {
		return nil, fmt.Errorf("authz: filter input: %w", err)
	}
	ctx := r.Context()
	start := time.Now()
	var f *filter.Filter
	if rev := res.Decision.Revision; rev != "" {
		f, err = c.CompileAt(ctx, rev, input)
	} else {
		// Authorization off, or a remote OPA: no revision to hold to.
		f, err = c.Compile(ctx, input)
	}
	elapsed := time.Since(start)
	d := policy.Decision{ID: m.pipe.NextID(), Revision: res.Decision.Revision}
	if f != nil {
		d.Revision, d.Bundles = f.Revision(), res.Decision.Bundles
		// The filter as OPA's Compile API answers it in UCAST (every
		// filter has one), nil when no row may be seen.
		var rerr error
		if d.Result, rerr = f.Result(filter.Target{Lang: "ucast", Dialect: string(filter.UCASTAll)}, filter.ResponseOptions{}); rerr != nil && err == nil {
			err = rerr
		}
	}
	ev := pipeline.NewEvent(c.Query(), &pipeline.Request{Identity: res.Identity}, input, d, err, start, elapsed, m.cfg.KeepCredentialsInDecisionLogs)
	ev.Custom = map[string]any{"type": "open-policy-agent/compile", "unknowns": c.Unknowns()}
	if f != nil {
		ev.Custom["filter"] = f.String()
	}
	m.pipe.LogEvent(ctx, ev)
	if err != nil {
		return nil, err
	}
	m.logger.DebugContext(ctx, "filter", "user", res.Identity.String(), "revision", f.Revision(), "filter", f.String(), "latency", elapsed)
	return f, nil
}
