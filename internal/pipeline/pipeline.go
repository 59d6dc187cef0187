// Package pipeline is the decide-and-record step that every front end of
// regoguard shares: the HTTP middleware (package authz), the gRPC
// interceptors (package grpcauthz) and any other. A front end turns its
// request into a policy input and a decision into its protocol's answer;
// everything in between is here, once:
//
//   - [Pipeline.Decide]: which evaluator judges this request and which
//     input fields the front end's [BuildFunc] builds for it (those the
//     revision being served reads), then the evaluation with its span, its
//     decision ID, its outcome, the metrics, the decision line and the
//     decision event ([NewEvent] builds the one policy.DecisionEvent of a
//     decision);
//   - [UserObject]: input.user, alike for every front end;
//   - [Pipeline.Count]: the outcome of a request answered before any
//     decision.
//
// See docs/architecture.md for the path of a request and how a new front
// end plugs in.
package pipeline

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"go.opentelemetry.io/otel/trace"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/policy"
)

// Evaluator is authz.Evaluator (the same method set): it decides on an
// input document.
type Evaluator interface {
	Eval(ctx context.Context, input ast.Value) (policy.Decision, error)
}

// planner is authz.Planner's method set.
type planner interface {
	Evaluator
	Plan() (policy.Plan, error)
}

// Config configures a [Pipeline]. Only Evaluator is required.
type Config struct {
	// Evaluator decides.
	Evaluator Evaluator
	// Metrics, when set, counts each decision and the request it decided.
	Metrics Metrics
	// Logger gets one line per decision, at LogLevel (at Error when the
	// decision failed). Required.
	Logger   *slog.Logger
	LogLevel slog.Level
	// LogInput adds the input, without the fields at the slash-separated
	// paths of LogInputMask, to the decision line.
	LogInput     bool
	LogInputMask []string
	// DecisionLogger, when set, receives every decision's event.
	DecisionLogger policy.DecisionLogger
	// KeepCredentials gives the decision events and the decision line's
	// input unmasked (see [NewEvent]).
	KeepCredentials bool
	// Tracer, when set, traces each decision in a span named
	// regoguard.decision; EvaluatorName is its regoguard.evaluator
	// attribute (none when empty).
	Tracer        trace.Tracer
	EvaluatorName string
	// Abandoned reports whether the client went away, for a request whose
	// evaluation failed: the outcome is then OutcomeCanceled rather than
	// OutcomeError. Default: ctx.Err() is context.Canceled.
	Abandoned func(ctx context.Context) bool
	// EventInput, when set, is what decision events keep of an input (the
	// envoy layout's input without the credential headers the policy
	// read); default the input itself.
	EventInput func(ast.Value) ast.Value
}

// Pipeline decides and records. It is safe for concurrent use.
type Pipeline struct {
	cfg       Config
	eval      Evaluator
	planner   planner
	prune     bool
	ids       *IDs
	evalTrace *EvalTrace
	abandoned func(context.Context) bool
}

// New returns the pipeline of cfg.
func New(cfg Config) *Pipeline {
	p := &Pipeline{cfg: cfg, eval: cfg.Evaluator, ids: NewIDs(), abandoned: cfg.Abandoned}
	if p.abandoned == nil {
		p.abandoned = func(ctx context.Context) bool { return errors.Is(ctx.Err(), context.Canceled) }
	}
	if p.cfg.Logger == nil {
		p.cfg.Logger = slog.Default()
	}
	p.planner, _ = cfg.Evaluator.(planner)
	// The input holds only what the policy reads, unless it is logged
	// whole (the decision line's input, a decision log).
	p.prune = !cfg.LogInput && cfg.DecisionLogger == nil
	if cfg.Metrics != nil {
		p.evalTrace = &EvalTrace{Fallback: func(error) { cfg.Metrics.Fallback() }}
	}
	return p
}

// Metrics returns the configured metrics, or nil.
func (p *Pipeline) Metrics() Metrics { return p.cfg.Metrics }

// Count reports a request's outcome to the metrics, if any: for the
// requests a front end answers before (or without) a decision.
func (p *Pipeline) Count(o Outcome) {
	if p.cfg.Metrics != nil {
		p.cfg.Metrics.Request(o)
	}
}

// plan returns the evaluator's plan for one request (the zero plan, which
// builds everything, when it is no planner or cannot plan) and the fields
// to build: the plan's, unless the whole input is logged.
func (p *Pipeline) plan() (policy.Plan, *policy.InputFields) {
	if p.planner == nil {
		return policy.Plan{}, nil
	}
	plan, err := p.planner.Plan()
	if err != nil {
		return policy.Plan{Decision: plan.Decision}, nil
	}
	if !p.prune {
		return plan, nil
	}
	return plan, plan.Fields
}

// Request is what a front end says of one request, for the decision line
// and the decision event.
type Request struct {
	// Identity is the caller; nil for an anonymous one.
	Identity *authn.Identity
	// Attrs are the front end's own attributes on the decision line (the
	// HTTP method and path, the gRPC method); unused ones are left zero.
	Attrs [2]slog.Attr
	// BatchID, when set, links the decisions of one batch (DecideBatch
	// sets it): OPA's batch_decision_id.
	BatchID string
	// InputLayout and DenyStatus are the front end's configuration that
	// decided the answer, recorded on the decision event (see
	// policy.DecisionEvent); left empty by a front end without them.
	InputLayout string
	DenyStatus  int
}

// BuildFunc builds the policy input of one request, holding only what
// fields reads (all of it when fields is nil). It is the front end's part:
// its protocol's request as an input document, with input.user from
// [UserObject] and no credential the authenticator declares.
type BuildFunc func(fields *policy.InputFields) (ast.Value, error)

// InputError is the error [Pipeline.Decide] returns when the front end's
// BuildFunc failed: no decision was made or recorded, and the front end
// answers it (a body too large, a message that is not a protocol buffer).
type InputError struct{ Err error }

func (e *InputError) Error() string { return e.Err.Error() }

// Unwrap returns the BuildFunc's error.
func (e *InputError) Unwrap() error { return e.Err }

// Decide makes and records the decision of one request: it chooses the
// evaluator and the input fields, has build build the input, evaluates it
// in a decision span, names the decision and records it (metrics, the
// decision line, the decision event). ctx is the request's: its
// cancellation tells a canceled request from a failed evaluation.
//
// The error is an *InputError when build failed (nothing is recorded
// then), or the evaluator's: the request must then be refused. The
// outcome is what was counted.
func (p *Pipeline) Decide(ctx context.Context, req *Request, build BuildFunc) (policy.Decision, Outcome, error) {
	plan, fields := p.plan()
	input, err := build(fields)
	if err != nil {
		return policy.Decision{}, OutcomeError, &InputError{Err: err}
	}
	return p.decide(ctx, req, plan, fields, input, build)
}

// DecideBatch makes one decision per input, in order, for one caller (the
// whole input is given: nothing is pruned), each recorded as its own
// decision, linked by a batch ID it returns (none for a single input).
// After each decision, next (when not nil) is told it, and ends the batch
// by returning false.
func (p *Pipeline) DecideBatch(ctx context.Context, req *Request, inputs []ast.Value, next func(d policy.Decision, o Outcome, err error) bool) string {
	r := *req
	if len(inputs) > 1 {
		r.BatchID = p.ids.Next()
	}
	plan, _ := p.plan()
	for _, in := range inputs {
		d, o, err := p.decide(ctx, &r, plan, nil, in, nil)
		if next != nil && !next(d, o, err) {
			break
		}
	}
	return r.BatchID
}

// decide evaluates input, built for fields (nil: the whole input) under
// plan, and records the decision. build rebuilds the input whole when a
// reload came between the plan and the evaluation (only needed when fields
// is not nil).
func (p *Pipeline) decide(ctx context.Context, req *Request, plan policy.Plan, fields *policy.InputFields, input ast.Value, build BuildFunc) (policy.Decision, Outcome, error) {
	dctx, span := ctx, trace.Span(nil)
	if p.cfg.Tracer != nil {
		dctx, span = p.cfg.Tracer.Start(ctx, spanDecision)
	}
	if p.evalTrace != nil {
		dctx = WithEvalTrace(dctx, p.evalTrace)
	}
	start := time.Now()
	d, err := p.eval.Eval(dctx, input)
	if err == nil && fields != nil && d.Revision != plan.Revision && p.replanned(plan) {
		// A reload came between the plan and the evaluation: the input
		// was built for another revision's fields. Build it whole and ask
		// again; the whole input is right for any revision.
		var berr error
		if input, berr = build(nil); berr != nil {
			return policy.Decision{}, OutcomeError, &InputError{Err: berr}
		}
		d, err = p.eval.Eval(dctx, input)
	}
	elapsed := time.Since(start)
	d.ID = p.ids.Next()
	if span != nil {
		if p.cfg.EvaluatorName != "" {
			span.SetAttributes(attrEvaluator.String(p.cfg.EvaluatorName))
		}
		endDecisionSpan(span, d, err)
	}
	outcome := p.record(ctx, req, plan.Decision, input, d, err, start, elapsed)
	return d, outcome, err
}

// replanned reports whether the revision being served is no longer the
// plan's. A decision may name another revision without any reload (a
// fallback's secondary answered, a wrapper rewrote it): then the plan
// still holds.
func (p *Pipeline) replanned(plan policy.Plan) bool {
	now, err := p.planner.Plan()
	return err != nil || now.Revision != plan.Revision || now.Fields != plan.Fields
}

// outcome is what became of a decision.
func (p *Pipeline) outcome(ctx context.Context, d policy.Decision, err error) Outcome {
	switch {
	case err != nil && p.abandoned(ctx):
		return OutcomeCanceled
	case err != nil:
		return OutcomeError
	case d.Allow:
		return OutcomeAllow
	}
	return OutcomeDeny
}

// record counts, logs and ships one decision.
func (p *Pipeline) record(ctx context.Context, req *Request, path string, input ast.Value, d policy.Decision, err error, start time.Time, elapsed time.Duration) Outcome {
	outcome := p.outcome(ctx, d, err)
	if m := p.cfg.Metrics; m != nil {
		m.Decision(outcome, elapsed)
		m.Request(outcome)
	}
	level := p.cfg.LogLevel
	if outcome == OutcomeError {
		level = slog.LevelError
	}
	logger := p.cfg.Logger
	if logger.Enabled(ctx, level) {
		attrs := make([]slog.Attr, 0, 9)
		attrs = append(attrs,
			slog.String("decision_id", d.ID),
			slog.String("outcome", outcome.String()),
			slog.String("revision", d.Revision),
		)
		for _, a := range req.Attrs {
			if a.Key != "" {
				attrs = append(attrs, a)
			}
		}
		attrs = append(attrs,
			slog.String("user", req.Identity.String()),
			slog.Duration("latency", elapsed),
		)
		if req.BatchID != "" {
			attrs = append(attrs, slog.String("batch_id", req.BatchID))
		}
		if err != nil {
			attrs = append(attrs, slog.String("error", err.Error()))
		}
		if p.cfg.LogInput {
			attrs = append(attrs, slog.Any("input", maskInput(loggedInput(input, p.cfg.KeepCredentials), p.cfg.LogInputMask)))
		}
		logger.LogAttrs(ctx, level, "decision", attrs...)
	}
	if p.cfg.DecisionLogger != nil {
		logged := input
		if p.cfg.EventInput != nil {
			logged = p.cfg.EventInput(input)
		}
		ev := NewEvent(path, req, logged, d, err, start, elapsed, p.cfg.KeepCredentials)
		if lerr := p.cfg.DecisionLogger.LogDecision(ctx, ev); lerr != nil && !errors.Is(lerr, policy.ErrDecisionDropped) {
			logger.WarnContext(ctx, "decision log", "error", lerr, "decision_id", d.ID)
		}
	}
	return outcome
}

// NewEvent builds the decision event of one decision: the one place where
// a policy.DecisionEvent is made, for every front end and for a shadow
// policy's disagreements. What an event carries (and what it masks) is
// decided here. path names the decision document (may be ""); req is the
// front end's description of the request (nil when there is none, as for a
// shadow evaluation); d.ID is the event's ID.
//
// The event's input has its credentials masked (package logmask: query
// parameters, URLs in header or metadata values, credential headers let
// into the input, tokens in Sec-WebSocket-Protocol; the key kept, the value
// replaced), unless keepCredentials; a policy's system.log.mask applies
// on top, in the decision logger.
func NewEvent(path string, req *Request, input ast.Value, d policy.Decision, err error, start time.Time, elapsed time.Duration, keepCredentials bool) policy.DecisionEvent {
	ev := policy.DecisionEvent{
		ID: d.ID, Path: path, Input: loggedInput(input, keepCredentials), Result: d.Result, Revision: d.Revision, Bundles: d.Bundles,
		Timestamp: start, Duration: elapsed, Err: err,
	}
	if req != nil {
		ev.BatchID = req.BatchID
		// What decided the answer beside the policy, for a replay: the
		// layout, the deny status, and the caller, whom the fastapi-opa
		// layout's input does not name.
		ev.InputLayout, ev.DenyStatus = req.InputLayout, req.DenyStatus
		ev.Caller = &policy.EventCaller{Anonymous: true}
		if req.Identity != nil {
			ev.Caller = &policy.EventCaller{Subject: req.Identity.Subject, Method: req.Identity.Method}
		}
	}
	return ev
}
