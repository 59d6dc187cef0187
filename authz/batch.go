package authz

import (
	"net/http"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/internal/pipeline"
	"github.com/regoguard/regoguard/policy"
)

// Authenticated wraps next as [Middleware.Handler] does, but asks the
// policy nothing about the request itself: a caller that authenticates
// (an anonymous one is challenged) reaches next, without the identity
// headers and credentials the middleware removes, and with its identity in
// [FromContext]. It is the front of a decision service, whose handler asks
// the policy about other things with [Middleware.Decide] and
// [Middleware.DecideBatch] (an AuthZEN PDP: see package authzen).
func (m *Middleware) Authenticated(next http.Handler) http.Handler {
	h := http.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.serveWith(w, r, next, true)
	}))
	if s, ok := m.auth.(authn.SessionRoutes); ok {
		h = s.Middleware(h)
	}
	return m.observed(h)
}

// BatchItem is the outcome of one decision of a batch.
type BatchItem struct {
	// Decision is the policy's decision; its ID names its decision event.
	Decision policy.Decision
	// Err is the evaluation's error: the item is refused.
	Err error
	// DryRun is true when the policy refused (or could not decide) and
	// Config.DryRun let the item through: Decision.Allow is then true.
	DryRun bool
}

// Decide makes one decision on input, asked by id (nil: anonymous) in
// the request r, and records it as the middleware records its own: the
// decision line, the decision event, the metrics, a span, and Config.DryRun
// applied. The input is the caller's to build, in the policy's own layout.
func (m *Middleware) Decide(r *http.Request, id *authn.Identity, input ast.Value) BatchItem {
	items, _ := m.DecideBatch(r, id, []ast.Value{input}, nil)
	return items[0]
}

// DecideBatch makes the decisions on inputs in order, for one caller, with
// one revision of the policy (all or none see a reload), and records each
// one as its own decision event, linked by a batch ID (OPA's
// batch_decision_id), which it returns. After each decision, stop (when
// not nil) may end the batch: the items decided so far are returned, the
// last one being the item that decided. See [BatchInputs] to share the
// common part of the inputs.
func (m *Middleware) DecideBatch(r *http.Request, id *authn.Identity, inputs []ast.Value, stop func(BatchItem) bool) ([]BatchItem, string) {
	req := m.decisionRequest(r, id)
	out := make([]BatchItem, 0, len(inputs))
	batch := m.pipe.DecideBatch(r.Context(), &req, inputs, func(d policy.Decision, _ pipeline.Outcome, err error) bool {
		if m.accessLog != nil {
			noteDecision(r.Context(), id, d.ID)
		}
		item := BatchItem{Decision: d, Err: err}
		if m.cfg.DryRun && (err != nil || !d.Allow) && !abandoned(r) {
			m.letThrough(r, id, d)
			item.Decision.Allow, item.Err, item.DryRun = true, nil, true
		}
		out = append(out, item)
		return stop == nil || !stop(item)
	})
	return out, batch
}

// BatchInputs returns one input per item: common's fields, with the
// item's own fields replacing those of the same key. The terms of common
// are shared, not copied, by every input: a batch of many items about one
// subject builds that subject once.
func BatchInputs(common ast.Object, items []ast.Object) []ast.Value {
	out := make([]ast.Value, len(items))
	for i, it := range items {
		in := ast.NewObject()
		if common != nil {
			common.Foreach(func(k, v *ast.Term) {
				if it == nil || it.Get(k) == nil {
					in.Insert(k, v)
				}
			})
		}
		if it != nil {
			it.Foreach(func(k, v *ast.Term) { in.Insert(k, v) })
		}
		out[i] = in
	}
	return out
}
