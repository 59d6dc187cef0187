package authz

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime"
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
	// (default 1024), and QueueBytes how much memory their inputs may hold
	// together (default [DefaultShadowQueueBytes], 32 MiB), as estimated by
	// walking each input when it is queued (strings plus a fixed cost per
	// term, about what OPA's values take on the heap). The candidate runs
	// off the request path, in Workers goroutines (default 1, never more
	// than half of GOMAXPROCS, rounded up); when either bound is reached the
	// comparison is skipped and counted, never waited for. An input larger
	// than QueueBytes alone is never queued.
	Queue      int
	QueueBytes int64
	Workers    int
	// CPUShare is the fraction of one CPU each worker may spend on the
	// candidate, averaged over its evaluations, in (0, 1] (default 1):
	// after an evaluation that took d, the worker rests d*(1/CPUShare - 1).
	// Before each evaluation, a worker also waits (at most 5 ms) for the
	// live decisions in progress to finish. Live decisions keep priority: a
	// CPU-heavy candidate fills the queue and is skipped (counted), instead
	// of taking more processors from live requests than the workers hold.
	// Lowering CPUShare lowers the CPU the candidate costs; what it does to
	// live latency is measured in benchmarks/README.md (BenchmarkShadowLiveLatency).
	CPUShare float64
	// Timeout bounds one candidate evaluation (default 1s).
	Timeout time.Duration
	// DecisionLogger, when set, receives one event per disagreement or
	// candidate error: the input, the candidate's result and revision, and
	// the live result and revision under custom.regoguard_shadow. The input
	// has its credentials masked as [Config.DecisionLogger]'s has, unless
	// KeepCredentialsInDecisionLogs.
	DecisionLogger                policy.DecisionLogger
	KeepCredentialsInDecisionLogs bool
	// Path is the decision path put in those events; default the live
	// evaluator's decision ([Planner]), when it names one.
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
// request pays for the sampling, an estimate of its input's size (a walk of
// the input: well under a microsecond for a small one) and a queue send, and
// the candidate's evaluation runs in background workers, each bounded by
// Timeout and by its CPUShare. A full queue (by count or by bytes) skips the
// comparison instead of waiting.
//
// Disagreements are counted by direction ([Shadow.Stats]) and logged as
// decision events carrying both results and both revisions. Call [Shadow.Close] to finish
// the queued comparisons.
type Shadow struct {
	live, candidate Evaluator
	sample          float64
	timeout         time.Duration
	cpuShare        float64
	maxBytes        int64
	queued          atomic.Int64 // estimated bytes of the inputs queued
	liveInFlight    atomic.Int64 // live evaluations in progress
	path            string
	dl              policy.DecisionLogger
	keepCredentials bool
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
	bytes int64
}

// DefaultShadowQueueBytes bounds the memory of the inputs waiting for a
// shadow candidate when ShadowConfig.QueueBytes is 0.
const DefaultShadowQueueBytes = 32 << 20

// NewShadow returns a Shadow answering with live and trying cfg.Candidate
// beside it. Its workers run until [Shadow.Close].
func NewShadow(live Evaluator, cfg ShadowConfig) (*Shadow, error) {
	if live == nil || cfg.Candidate == nil {
		return nil, errors.New("authz: a shadow needs a live evaluator and a candidate")
	}
	if cfg.Sample < 0 || cfg.Sample > 1 {
		return nil, fmt.Errorf("authz: shadow sample must be a fraction between 0 and 1, got %v", cfg.Sample)
	}
	if cfg.Queue < 0 || cfg.QueueBytes < 0 || cfg.Workers < 0 {
		return nil, errors.New("authz: shadow queue, queue bytes and workers cannot be negative")
	}
	if cfg.CPUShare < 0 || cfg.CPUShare > 1 {
		return nil, fmt.Errorf("authz: shadow CPU share must be a fraction between 0 and 1, got %v", cfg.CPUShare)
	}
	s := &Shadow{
		cpuShare: cmp.Or(cfg.CPUShare, 1), maxBytes: cmp.Or(cfg.QueueBytes, DefaultShadowQueueBytes),
		live: live, candidate: cfg.Candidate, sample: cmp.Or(cfg.Sample, 1),
		timeout: cmp.Or(cfg.Timeout, time.Second), path: cfg.Path, dl: cfg.DecisionLogger,
		keepCredentials: cfg.KeepCredentialsInDecisionLogs,
		logger:          cfg.Logger, ids: pipeline.NewIDs(),
		queue: make(chan shadowJob, cmp.Or(cfg.Queue, 1024)),
	}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	if s.path == "" {
		plan, _ := PlanOf(live)
		s.path = plan.Decision
	}
	for range min(cmp.Or(cfg.Workers, 1), (runtime.GOMAXPROCS(0)+1)/2) {
		s.workers.Add(1)
		go s.work()
	}
	return s, nil
}

// Eval implements [Evaluator]: the live evaluator's decision, unchanged.
func (s *Shadow) Eval(ctx context.Context, input ast.Value) (policy.Decision, error) {
	s.liveInFlight.Add(1)
	d, err := s.live.Eval(ctx, input)
	s.liveInFlight.Add(-1)
	if err != nil || (s.sample < 1 && rand.Float64() >= s.sample) {
		return d, err
	}
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return d, nil
	}
	// Reserve the input's bytes first: a full byte budget skips the
	// comparison as a full queue does.
	n := valueBytes(input, s.maxBytes)
	if s.queued.Add(n) > s.maxBytes {
		s.queued.Add(-n)
		s.skipped.Add(1)
		return d, nil
	}
	select {
	case s.queue <- shadowJob{input: input, live: d, at: time.Now(), bytes: n}:
	default:
		s.queued.Add(-n)
		s.skipped.Add(1)
	}
	return d, nil
}

// Estimated heap cost of OPA values: a term and its value, an object or
// array element. Measured on an input holding a 60 KB JSON body (issue #22):
// 876 KB on the heap, estimated at 943 KB.
const (
	termBytes = 48
	elemBytes = 64
)

// valueBytes estimates the heap bytes v holds, stopping early once the
// estimate passes limit (the caller only compares it with the limit).
func valueBytes(v ast.Value, limit int64) int64 {
	var n int64
	var walk func(v ast.Value)
	walk = func(v ast.Value) {
		if n > limit {
			return
		}
		n += termBytes
		switch v := v.(type) {
		case ast.String:
			n += int64(len(v))
		case ast.Number:
			n += int64(len(v))
		case ast.Object:
			v.Foreach(func(k, val *ast.Term) {
				n += elemBytes
				walk(k.Value)
				walk(val.Value)
			})
		case *ast.Array:
			for i := range v.Len() {
				n += elemBytes / 2
				walk(v.Elem(i).Value)
			}
		case ast.Set:
			v.Foreach(func(t *ast.Term) {
				n += elemBytes
				walk(t.Value)
			})
		}
	}
	walk(v)
	return n
}

// Plan implements [Planner] only to name the live evaluator's decision in
// the middleware's logs. It names no revision and no fields, deliberately:
// the candidate may read input fields the live policy does not, so the
// middleware builds the whole input for it, and a [Cache] in front of a
// Shadow keeps nothing.
func (s *Shadow) Plan() (policy.Plan, error) {
	plan, err := PlanOf(s.live)
	return policy.Plan{Decision: plan.Decision}, err
}

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
		s.run(job)
		for drained := false; !drained; {
			select {
			case job, ok := <-s.queue:
				if !ok {
					return
				}
				s.run(job)
			default:
				drained = true
			}
		}
		nap.Reset(shadowBatchDelay)
		<-nap.C
	}
}

// liveWait bounds how long a worker waits for live decisions in progress
// before it starts a candidate evaluation, and livePoll how often it looks.
const (
	liveWait = 5 * time.Millisecond
	livePoll = 100 * time.Microsecond
)

// run compares one job within the worker's CPU share, giving way to live
// decisions first, and frees its bytes.
func (s *Shadow) run(job shadowJob) {
	for waited := time.Duration(0); s.liveInFlight.Load() > 0 && waited < liveWait; waited += livePoll {
		time.Sleep(livePoll)
	}
	start := time.Now()
	s.compare(job)
	s.queued.Add(-job.bytes)
	if s.cpuShare < 1 {
		rest := time.Duration(float64(time.Since(start)) * (1/s.cpuShare - 1))
		time.Sleep(min(rest, s.timeout))
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
	ev := pipeline.NewEvent(s.path, nil, job.input, cd, err, job.at, elapsed, s.keepCredentials)
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
