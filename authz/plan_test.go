package authz_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/regoguard/regoguard/authz"
	"github.com/regoguard/regoguard/policy"
)

// reloadingEngine embeds the engine, as a user's wrapper would, and loads
// another revision during its first evaluation: a reload that comes between
// the middleware's plan and the evaluation.
type reloadingEngine struct {
	*policy.Engine
	next  *policy.Policy
	evals atomic.Int64
}

func (e *reloadingEngine) Eval(ctx context.Context, in ast.Value) (policy.Decision, error) {
	if e.evals.Add(1) == 1 {
		if err := e.Load(ctx, e.next); err != nil {
			return policy.Decision{}, err
		}
	}
	return e.Engine.Eval(ctx, in)
}

// Issue #24 item 3: the middleware evaluated through a snapshot, past a
// wrapper's own Eval. It now always asks the evaluator it was given, and
// catches a reload between the plan and the evaluation by the revision the
// decision names: the input built for the old revision's fields (method
// only) would let the new revision, which refuses any request carrying
// X-Block, allow it; the middleware builds the whole input and asks again.
func TestReloadBetweenPlanAndEval(t *testing.T) {
	v1 := policy.MustParse(map[string]string{"p.rego": "package httpapi.authz\nallow if input.method == \"GET\"\n"}, nil)
	v2 := policy.MustParse(map[string]string{"p.rego": "package httpapi.authz\nallow if not input.headers[\"x-block\"]\n"}, nil)
	e, err := policy.New(context.Background(), policy.Config{}, v1)
	if err != nil {
		t.Fatal(err)
	}
	wrapped := &reloadingEngine{Engine: e, next: v2}
	for name, eval := range map[string]authz.Evaluator{"wrapper": wrapped, "cache in front": mustCache(t, wrapped)} {
		t.Run(name, func(t *testing.T) {
			if err := e.Load(context.Background(), v1); err != nil {
				t.Fatal(err)
			}
			wrapped.evals.Store(0)
			reached := false
			h := guard(t, authz.Config{Evaluator: eval}, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached = true }))
			r := request("GET", "/api/x", "alice")
			r.Header.Set("X-Block", "1")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if reached || w.Code != http.StatusForbidden {
				t.Errorf("a request the new revision refuses: %d (reached %v), want 403", w.Code, reached)
			}
			if n := wrapped.evals.Load(); n != 2 {
				t.Errorf("the wrapper's own Eval ran %d times, want 2 (the plan's input, then the whole input)", n)
			}
		})
	}
}
