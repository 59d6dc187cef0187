package authz

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/extauthz"
	"github.com/regoguard/regoguard/policy"
)

// record counts, logs and ships one decision.
// batch, when not empty, links the decisions of one batch (DecideBatch).
func (m *Middleware) record(r *http.Request, id *authn.Identity, input ast.Value, d policy.Decision, err error, start time.Time, elapsed time.Duration, batch string) {
	ctx := r.Context()
	if m.accessLog != nil {
		noteDecision(ctx, id, d.ID)
	}
	outcome := OutcomeDeny
	switch {
	case err != nil && abandoned(r):
		outcome = OutcomeCanceled
	case err != nil:
		outcome = OutcomeError
	case d.Allow:
		outcome = OutcomeAllow
	}
	if m.metrics != nil {
		m.metrics.Decision(outcome, elapsed)
		m.metrics.Request(outcome)
	}
	level := m.logLevel
	if outcome == OutcomeError {
		level = slog.LevelError
	}
	if m.logger.Enabled(ctx, level) {
		attrs := []slog.Attr{
			slog.String("decision_id", d.ID),
			slog.String("outcome", outcome.String()),
			slog.String("revision", d.Revision),
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.String("user", id.String()),
			slog.Duration("latency", elapsed),
		}
		if batch != "" {
			attrs = append(attrs, slog.String("batch_id", batch))
		}
		if err != nil {
			attrs = append(attrs, slog.String("error", err.Error()))
		}
		if m.cfg.LogInput {
			mask := m.cfg.LogInputMask
			if m.logMask != nil {
				mask = m.logMask
			}
			attrs = append(attrs, slog.Any("input", maskInput(input, mask)))
		}
		m.logger.LogAttrs(ctx, level, "decision", attrs...)
	}
	if m.cfg.DecisionLogger != nil {
		logged := input
		if m.input.layout == LayoutEnvoy {
			// The policy read the credential headers; no log keeps them.
			logged = extauthz.Masked(input)
		}
		ev := policy.DecisionEvent{
			ID: d.ID, Path: m.decisionRef, Input: logged, Result: d.Result, Revision: d.Revision, Bundles: d.Bundles,
			Timestamp: start, Duration: elapsed, Err: err, BatchID: batch,
		}
		if lerr := m.cfg.DecisionLogger.LogDecision(ctx, ev); lerr != nil && !errors.Is(lerr, policy.ErrDecisionDropped) {
			m.logger.WarnContext(ctx, "decision log", "error", lerr, "decision_id", d.ID)
		}
	}
}

// abandoned reports whether the client went away (or the server is shutting
// the request down): an evaluation stopped for that is no evaluator error.
func abandoned(r *http.Request) bool { return r.Context().Err() != nil }

// maskInput returns the input as JSON-compatible values without the fields
// at the given slash-separated paths.
func maskInput(input ast.Value, mask []string) any {
	v, err := ast.JSON(input)
	if err != nil {
		return "unloggable input: " + err.Error()
	}
	for _, p := range mask {
		removePath(v, strings.Split(strings.Trim(p, "/"), "/"))
	}
	return v
}

func removePath(v any, path []string) {
	obj, ok := v.(map[string]any)
	if !ok || len(path) == 0 {
		return
	}
	if len(path) == 1 {
		delete(obj, path[0])
		return
	}
	removePath(obj[path[0]], path[1:])
}

// DecisionIDs makes decision IDs that are unique across processes (a
// random prefix) and cheap per decision (a counter), instead of reading the
// system's random source for every decision. The middleware has one; other
// front ends (package grpcauthz) make their own. It is safe for concurrent
// use.
type DecisionIDs struct {
	prefix string
	n      atomic.Uint64
}

// NewDecisionIDs returns a source of decision IDs with a fresh random prefix.
func NewDecisionIDs() *DecisionIDs {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return &DecisionIDs{prefix: hex.EncodeToString(b) + "-"}
}

// Next returns a new decision ID.
func (s *DecisionIDs) Next() string {
	// One allocation: the prefix and the counter are put together on the
	// stack and copied once.
	var buf [48]byte
	return string(strconv.AppendUint(append(buf[:0], s.prefix...), s.n.Add(1), 36))
}
