package policy

import (
	"context"
	"errors"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
)

// DecisionEvent records one decision, for a [DecisionLogger].
type DecisionEvent struct {
	// ID identifies the decision; the middleware sends it to the caller in
	// error responses so a deny can be traced to its log entry.
	ID string
	// Path names the decision document. The middleware, the gRPC
	// interceptors and a Shadow give its reference, such as
	// "data.httpapi.authz" (policy.Engine.DecisionRef); OPA's own events
	// use the slash form, "httpapi/authz".
	Path string
	// Input is the input document the policy saw. It is what the middleware
	// built, so it already lacks credentials unless they were asked for;
	// a logger may mask more.
	Input ast.Value
	// Result is the decision document, nil when it was undefined.
	Result any
	// Revision identifies the policy that decided; Bundles gives the revision
	// of each bundle when the policy came from bundles.
	Revision string
	Bundles  map[string]string
	// Timestamp is when the decision was made, and Duration how long it took.
	Timestamp time.Time
	Duration  time.Duration
	// Err is the evaluation error, if any (the request was then refused).
	Err error
	// BatchID links the decisions of one batch (several decisions asked in
	// one call, as AuthZEN's evaluations): OPA's batch_decision_id.
	BatchID string
	// Custom holds fields of the logger's own, written under "custom" in
	// OPA's event format (for example a shadow policy's comparison).
	Custom map[string]any
	// InputLayout names the layout Input was built in ("regoguard",
	// "fastapi-opa"); "" when unknown. With DenyStatus and Caller it lets
	// `regoguard check --replay` re-decide the event as it was decided,
	// whatever flags serve ran with. OPA's event format writes the three
	// under "custom" (see [EventCustomKey]).
	InputLayout string
	// DenyStatus is the HTTP status a refusal without the policy's own
	// status was answered with (authz.Config.DenyStatus); 0 for a front
	// end that answers no HTTP status.
	DenyStatus int
	// Caller is who asked; nil when the front end does not say.
	Caller *EventCaller
}

// EventCustomKey is the key under "custom", in OPA's event format, of the
// object that holds a [DecisionEvent]'s InputLayout ("input_layout"),
// DenyStatus ("deny_status") and Caller ("sub" and "auth_method", or
// "anonymous": true). OPA's mask policy does not reach "custom": the
// subject is recorded there as the decision line records it.
const EventCustomKey = "regoguard"

// EventCaller is the caller of a [DecisionEvent]. In the fastapi-opa layout
// the input holds the identity's claims only, so the subject is recorded
// beside it.
type EventCaller struct {
	// Anonymous is true for a caller without credentials.
	Anonymous bool
	// Subject and Method are the authenticated caller's subject and
	// authentication method ("oidc", "apikey", ...).
	Subject, Method string
}

// A DecisionLogger records decisions, for example in OPA's decision-log
// format for an existing OPA control plane (see package bundles). LogDecision
// is called after the decision has been made and must not block for long:
// buffer and ship in the background. It must be safe for concurrent use.
//
// A logger that sheds events under load returns an error wrapping
// [ErrDecisionDropped] for each and reports the drops itself (a count, a
// warning at a bounded rate): its callers, which log other errors of
// LogDecision once per request, stay silent on those, so that a burst of
// traffic cannot flood the log.
type DecisionLogger interface {
	LogDecision(ctx context.Context, ev DecisionEvent) error
}

// ErrDecisionDropped is wrapped by the error a [DecisionLogger] returns for
// an event it dropped on purpose (its queue full); see DecisionLogger.
var ErrDecisionDropped = errors.New("decision event dropped")
