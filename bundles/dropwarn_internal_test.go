package bundles

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/regoguard/regoguard/policy"
)

// A full queue drops events, each reported to the caller as
// policy.ErrDecisionDropped (which the middleware does not log) and warned
// of once, not once per event: a burst cannot flood the log.
func TestDroppedEventsWarnedOnce(t *testing.T) {
	var logs bytes.Buffer
	d := &DecisionLogger{queue: make(chan policy.DecisionEvent, 1), logger: slog.New(slog.NewTextHandler(&logs, nil))}
	ctx := context.Background()
	if err := d.LogDecision(ctx, policy.DecisionEvent{ID: "fills the queue"}); err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		err := d.LogDecision(ctx, policy.DecisionEvent{ID: "dropped"})
		if !errors.Is(err, ErrQueueFull) || !errors.Is(err, policy.ErrDecisionDropped) {
			t.Fatalf("event %d: %v, want ErrQueueFull wrapping policy.ErrDecisionDropped", i, err)
		}
	}
	if d.Dropped() != 100 {
		t.Errorf("Dropped() = %d, want 100", d.Dropped())
	}
	if n := strings.Count(logs.String(), "events dropped"); n != 1 {
		t.Errorf("%d warnings for 100 dropped events, want 1:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "dropped_total=1") {
		t.Errorf("the warning does not count the drops: %s", logs.String())
	}
}
