package policy

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// evalState is what one evaluation needs besides the policy: the rule memo,
// the cancellation, the input and the OPA options that point at them. It is
// pooled, options included, so that none of it is allocated per decision.
type evalState struct {
	memo   virtualCache
	cancel ctxCancel
	input  ast.Value
	opts   []rego.EvalOption

	// Built once per state: each points at the fields above.
	memoOpt, cancelOpt, inputOpt rego.EvalOption
}

var evalStates = sync.Pool{New: func() any {
	s := &evalState{}
	s.memoOpt = rego.EvalVirtualCache(&s.memo)
	s.cancelOpt = rego.EvalExternalCancel(&s.cancel)
	s.inputOpt = func(ec *rego.EvalContext) { rego.EvalParsedInput(s.input)(ec) }
	return s
}}

// getEvalState returns a state for evaluating input under ctx, with an empty
// memo, and the options for rego: the caller's, then extra, then the state's.
func getEvalState(ctx context.Context, input ast.Value, callerOpts []rego.EvalOption, extra ...rego.EvalOption) *evalState {
	s := evalStates.Get().(*evalState)
	s.memo.Push()
	s.cancel.ctx = ctx
	s.input = input
	s.opts = append(append(append(s.opts, callerOpts...), extra...), s.cancelOpt, s.memoOpt, s.inputOpt)
	return s
}

// release returns s to the pool holding nothing of the evaluation: no
// context, input, caller option or policy value is kept alive by a pooled state.
func (s *evalState) release() {
	s.memo.reset()
	s.cancel.ctx = nil
	s.cancel.stopped.Store(false)
	s.input = nil
	clear(s.opts)
	s.opts = s.opts[:0]
	evalStates.Put(s)
}

// ctxCancel is a topdown.Cancel that asks the context at each evaluation
// step rather than being told when it is done. OPA otherwise starts a
// goroutine per evaluation to watch the context, and context.AfterFunc
// registers (and unregisters) with the request's context, allocating; an
// atomic load per step costs less than either, and a request that goes away
// still stops its evaluation at the next expression.
type ctxCancel struct {
	ctx     context.Context
	stopped atomic.Bool
}

// Cancel implements topdown.Cancel.
func (c *ctxCancel) Cancel() { c.stopped.Store(true) }

// Cancelled implements topdown.Cancel.
func (c *ctxCancel) Cancelled() bool { return c.stopped.Load() || c.ctx.Err() != nil }

var _ topdown.Cancel = (*ctxCancel)(nil)
