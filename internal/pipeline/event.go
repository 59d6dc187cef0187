package pipeline

import (
	"context"
	"errors"

	"github.com/regoguard/regoguard/policy"
)

// NextID returns a new decision ID, for a decision a front end records
// itself with [Pipeline.LogEvent] (a data filter's compilation).
func (p *Pipeline) NextID() string { return p.ids.Next() }

// LogEvent ships ev, built with [NewEvent], to the decision logger, if any,
// and warns when it fails (not when the logger sheds it on purpose).
func (p *Pipeline) LogEvent(ctx context.Context, ev policy.DecisionEvent) {
	if p.cfg.DecisionLogger == nil {
		return
	}
	if err := p.cfg.DecisionLogger.LogDecision(ctx, ev); err != nil && !errors.Is(err, policy.ErrDecisionDropped) {
		p.cfg.Logger.WarnContext(ctx, "decision log", "error", err, "decision_id", ev.ID)
	}
}
