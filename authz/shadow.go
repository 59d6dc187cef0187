package authz

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/regoguard/regoguard/internal/pipeline"
	"github.com/regoguard/regoguard/policy"
)

// Directions of a shadow disagreement, as counted in the metrics and named
// in decision events.
const (
	ShadowAgree       = "agree"
	ShadowAllowToDeny = "allow_to_deny"
	ShadowDenyToAllow = "deny_to_allow"
	ShadowError       = "candidate_error"
)

// ShadowCustomKey is the key of the custom field of the decision events a
// [Shadow] logs for its disagreements. It holds the live decision (result,
// revision, bundles) and the direction; the event's own result and revision
// are the candidate's. Tools that read decision logs (regoguard check
// --replay) skip such events: they record no decision that was enforced.
const ShadowCustomKey = "regoguard_shadow"

// ShadowConfig configures a [Shadow].
type ShadowConfig struct {
	// Candidate is the policy being tried. It never changes a decision.
	Candidate Evaluator
	// Sample is the fraction of decisions the candidate also judges, in
	// (0, 1]; 0 means every decision.
	Sample float64
	// Queue is how many sampled decisions may wait for the candidate
	// (default 1024). The candidate runs off the request path, in Workers
	// goroutines (default 1); when the queue is full the comparison is
	// skipped and counted, never waited for.
	Queue   int
	Workers int
	// Timeout bounds one candidate evaluation (default 1s).
	Timeout time.Duration
	// DecisionLogger, when set, receives one event per disagreement or
	// candidate error: the input, the candidate's result and revision, and
	// the live result and revision under custom.regoguard_shadow.
	DecisionLogger policy.DecisionLogger
	// Path is the decision path put in those events; default the live
	// evaluator's decision ([DecisionNamer]), when it names one.
	Path string
	// Logger gets one line per disagreement and candidate error at debug
	// level (the first candidate error at warn); default slog.Default().
	// [Shadow.Stats] (exported by package prommetrics) and the
	// DecisionLogger are where disagreements are meant to be read.
	Logger *slog.Logger
}

// Shadow is an [Evaluator] that answers with its live evaluator and has a
// candidate judge the same input beside it, on every decision or a sampled
// fraction, to see what a new policy would change before it enforces
// anything. The candidate never changes an answer and never delays one: the
// request pays for the sampling and a queue send (well under a microsecond),
// and the candidate's evaluation runs in background workers, each bounded
// by Timeout. A full queue skips the comparison instead of waiting.
//
// Disagreements are counted by direction ([Shadow.Stats]) and logged as
// decision events carrying both results and both revisions. Call [Shadow.Close] to finish
// the queued comparisons.
type Shadow struct {
	live, candidate Evaluator
	sample          float64
	timeout         time.Duration
	path            string
	dl              policy.DecisionLogger
	logger          *slog.Logger
	ids             *pipeline.IDs

	queue   chan shadowJob
	closeMu sync.RWMutex
	closed  bool
	workers sync.WaitGroup

	counts  [4]atomic.Int64 // by shadowResults index
	skipped atomic.Int64
	warned  atomic.Bool // the first candidate error was logged as a warning
}

var shadowResults = [...]string{ShadowAgree, ShadowAllowToDeny, ShadowDenyToAllow, ShadowError}

type shadowJob struct {
	input ast.Value
	live  policy.Decision
	at    time.Time
}

// NewShadow returns a Shadow answering with live and trying cfg.Candidate
// beside it. Its workers run until [Shadow.Close].
func NewShadow(live Evaluator, cfg ShadowConfig) (*Shadow, error) {
	if live == nil || cfg.Candidate == nil {
		return nil, errors.New("authz: a shadow needs a live evaluator and a candidate")
	}
	if cfg.Sample < 0 || cfg.Sample > 1 {
		return nil, fmt.Errorf("authz: shadow sample must be a fraction between 0 and 1, got %v", cfg.Sample)
	}
	s := &Shadow{
		live: live, candidate: cfg.Candidate, sample: cmp.Or(cfg.Sample, 1),
		timeout: cmp.Or(cfg.Timeout, time.Second), path: cfg.Path, dl: cfg.DecisionLogger,
		logger: cfg.Logger, ids: pipeline.NewIDs(),
		queue: make(chan shadowJob, cmp.Or(cfg.Queue, 1024)),
	}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	if s.path == "" {
		if ref := decisionRef(live); ref != nil {
			s.path = ref.String()
		}
	}
	for range cmp.Or(cfg.Workers, 1) {
		s.workers.Add(1)
		go s.work()
	}
	return s, nil
}

// Eval implements [Evaluator]: the live evaluator's decision, unchanged.
func (s *Shadow) Eval(ctx context.Context, input ast.Value) (policy.Decision, error) {
	d, err := s.live.Eval(ctx, input)
	if err != nil || (s.sample < 1 && rand.Float64() >= s.sample) {
		return d, err
	}
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return d, nil
	}
	select {
	case s.queue <- shadowJob{input: input, live: d, at: time.Now()}:
	default:
		s.skipped.Add(1)
	}
	return d, nil
}

// DecisionRef implements [DecisionNamer]: the live evaluator's decision
// reference, when it has one, so that the middleware's logs name it.
//
// A Shadow is deliberately not a [Snapshotter]: the candidate may read
// input fields the live policy does not, so the middleware builds the whole
// input for it, and a [Cache] in front of a Shadow keeps nothing.
func (s *Shadow) DecisionRef() ast.Ref { return decisionRef(s.live) }

// shadowBatchDelay is how long a worker lets comparisons gather after it
// has emptied the queue. Waking a parked worker for every request costs the
// request a few microseconds (the runtime readies the goroutine and wakes a
// thread for it); a worker that naps instead finds a batch waiting, and
// senders then only write into the channel's buffer.
const shadowBatchDelay = 2 * time.Millisecond

func (s *Shadow) work() {
	defer s.workers.Done()
	nap := time.NewTimer(shadowBatchDelay)
	defer nap.Stop()
	for {
		job, ok := <-s.queue // parked only while there is nothing to do
		if !ok {
			return
		}
		s.compare(job)
		for drained := false; !drained; {
			select {
			case job, ok := <-s.queue:
				if !ok {
					return
				}
				s.compare(job)
			default:
				drained = true
			}
		}
		nap.Reset(shadowBatchDelay)
		<-nap.C
	}
}

func (s *Shadow) compare(job shadowJob) {
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	start := time.Now()
	cd, err := s.candidate.Eval(ctx, job.input)
	elapsed := time.Since(start)
	result := 0
	switch {
	case err != nil:
		result = 3
	case job.live.Allow && !cd.Allow:
		result = 1
	case !job.live.Allow && cd.Allow:
		result = 2
	}
	s.counts[result].Add(1)
	if result == 0 {
		return
	}
	id := "shadow-" + s.ids.Next()
	switch {
	case err != nil && s.warned.CompareAndSwap(false, true):
		s.logger.Warn("shadow policy failed (further failures are logged at debug level and counted)",
			"shadow_decision_id", id, "candidate_revision", cd.Revision, "error", err)
	case err != nil:
		s.logger.Debug("shadow policy failed", "shadow_decision_id", id, "candidate_revision", cd.Revision, "error", err)
	default:
		s.logger.Debug("shadow policy disagrees", "shadow_decision_id", id, "direction", shadowResults[result],
			"live_revision", job.live.Revision, "candidate_revision", cd.Revision)
	}
	if s.dl == nil {
		return
	}
	cd.ID = id
	ev := pipeline.NewEvent(s.path, nil, job.input, cd, err, job.at, elapsed)
	ev.Custom = map[string]any{ShadowCustomKey: map[string]any{
		"result":        shadowResults[result],
		"live_result":   job.live.Result,
		"live_revision": job.live.Revision,
		"live_bundles":  job.live.Bundles,
	}}
	if lerr := s.dl.LogDecision(ctx, ev); lerr != nil && !errors.Is(lerr, policy.ErrDecisionDropped) {
		s.logger.Warn("shadow decision log", "error", lerr, "shadow_decision_id", id)
	}
}

// ShadowStats counts what a [Shadow] compared.
type ShadowStats struct {
	// Agree, AllowToDeny and DenyToAllow count compared decisions;
	// CandidateErrors those the candidate could not make; Skipped the
	// sampled decisions left out because the queue was full.
	Agree, AllowToDeny, DenyToAllow, CandidateErrors, Skipped int64
}

// Stats returns what the Shadow compared so far.
func (s *Shadow) Stats() ShadowStats {
	return ShadowStats{
		Agree: s.counts[0].Load(), AllowToDeny: s.counts[1].Load(), DenyToAllow: s.counts[2].Load(),
		CandidateErrors: s.counts[3].Load(), Skipped: s.skipped.Load(),
	}
}

// Close stops taking new comparisons and waits, until ctx is done, for the
// queued ones to finish. Eval keeps answering with the live evaluator.
func (s *Shadow) Close(ctx context.Context) error {
	s.closeMu.Lock()
	if !s.closed {
		s.closed = true
		close(s.queue)
	}
	s.closeMu.Unlock()
	done := make(chan struct{})
	go func() { s.workers.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("authz: shadow comparisons still queued: %w", ctx.Err())
	}
}
