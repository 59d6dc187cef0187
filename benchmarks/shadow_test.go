package benchmarks

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/authz"
	"github.com/regoguard/regoguard/policy"
)

// BenchmarkShadow measures what a shadow (candidate) policy adds to a whole
// request: off, judging 10 % of decisions, and judging all of them. The
// candidate is the same policy compiled again, so it costs what the live one
// does. ns/op is the request path; the candidate's evaluations run in a
// background worker, and drain-ns/op is the time left after the loop to
// finish them (their cost beyond the request path, which a busy server
// pays in CPU). skipped/op counts comparisons dropped because the queue was
// full. cpu-ns/op is the CPU the process spent per request, the
// candidate's work included (until the queue is drained). With 100pct-free-candidate the candidate costs nothing: what is left
// is the request path's own share (sampling, the queue, and the whole input,
// which a shadow needs since the candidate may read fields the live policy
// does not).
func BenchmarkShadow(b *testing.B) {
	ctx := context.Background()
	for _, w := range workloads[:2] {
		s := newSetup(b, w, false)
		p, err := policy.LoadFiles(w.policyDir(b))
		if err != nil {
			b.Fatal(err)
		}
		candidate, err := policy.New(ctx, policy.Config{}, p)
		if err != nil {
			b.Fatal(err)
		}
		auth := authn.AuthenticatorFunc(func(*http.Request) (*authn.Identity, error) { return w.user, nil })
		for _, mode := range []struct {
			name      string
			sample    float64
			candidate authz.Evaluator
		}{{"off", 0, nil}, {"10pct", 0.1, candidate}, {"100pct", 1, candidate}, {"100pct-free-candidate", 1, freeCandidate{}}} {
			b.Run("policy="+w.name+"/shadow="+mode.name, func(b *testing.B) {
				var eval authz.Evaluator = s.engine
				var shadow *authz.Shadow
				if mode.sample > 0 {
					if shadow, err = authz.NewShadow(s.engine, authz.ShadowConfig{Candidate: mode.candidate, Sample: mode.sample, Queue: 1 << 17,
						Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}); err != nil {
						b.Fatal(err)
					}
					eval = shadow
				}
				h := middleware(b, auth, eval).Handler(app)
				rw := newDiscard()
				b.ReportAllocs()
				cpu0 := cpuTime()
				for b.Loop() {
					rw.reset()
					h.ServeHTTP(rw, s.request)
					if rw.status != http.StatusOK {
						b.Fatalf("status %d", rw.status)
					}
				}
				if shadow == nil {
					b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
					return
				}
				start := time.Now()
				cctx, cancel := context.WithTimeout(ctx, time.Minute)
				defer cancel()
				if err := shadow.Close(cctx); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
				st := shadow.Stats()
				if _, free := mode.candidate.(freeCandidate); !free && st.AllowToDeny+st.DenyToAllow > 0 {
					b.Fatalf("the same policy disagreed with itself: %+v", st)
				}
				b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(b.N), "drain-ns/op")
				b.ReportMetric(float64(st.Skipped)/float64(b.N), "skipped/op")
				// A candidate error is a timeout (1 s) on an overloaded
				// machine; the logger above says which.
				b.ReportMetric(float64(st.CandidateErrors)/float64(b.N), "candidate-errors/op")
			})
		}
	}
}

// cpuTime is the CPU time (user and system) the process has used: on a
// shared machine it moves less with the other processes' load than the
// wall-clock ns/op does, and it counts the candidate's background work.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// freeCandidate allows everything at no cost.
type freeCandidate struct{}

func (freeCandidate) Eval(context.Context, ast.Value) (policy.Decision, error) {
	return policy.Decision{Allow: true}, nil
}

// BenchmarkShadowLiveLatency measures what a CPU-heavy candidate judging
// every decision does to live answers (issue #22): clients send requests
// back to back through the middleware on the small policy, and p50-ns and
// p99-ns are the live requests' latency percentiles. The candidate spends
// about 20 ms of CPU per decision (a comprehension over 200 000 numbers),
// far more than the live policy's microseconds, so it can never keep up:
// the shadow's defaults (one worker, half a CPU, giving way to live
// decisions, a bounded queue) skip what it cannot judge. shadow=heavy-half-cpu
// is the same candidate with CPUShare 0.5 (the worker rests as long as it
// evaluated).
func BenchmarkShadowLiveLatency(b *testing.B) {
	ctx := context.Background()
	w := workloads[0]
	s := newSetup(b, w, false)
	heavy, err := policy.New(ctx, policy.Config{}, policy.MustParse(map[string]string{"heavy.rego": `package httpapi.authz

default allow := false

allow if {
	count([x | some x in numbers.range(1, 200000); x % 7 == 0]) > 0
	input.method == "GET"
}
`}, nil))
	if err != nil {
		b.Fatal(err)
	}
	auth := authn.AuthenticatorFunc(func(*http.Request) (*authn.Identity, error) { return w.user, nil })
	for _, clients := range []int{1, 2} {
		for _, mode := range []struct {
			name  string
			share float64
		}{{"off", 0}, {"heavy", 0}, {"heavy-half-cpu", 0.5}} {
			b.Run(fmt.Sprintf("clients=%d/shadow=%s", clients, mode.name), func(b *testing.B) {
				var eval authz.Evaluator = s.engine
				var shadow *authz.Shadow
				if mode.name != "off" {
					if shadow, err = authz.NewShadow(s.engine, authz.ShadowConfig{Candidate: heavy, CPUShare: mode.share, Queue: 16,
						Logger: slog.New(slog.DiscardHandler)}); err != nil {
						b.Fatal(err)
					}
					eval = shadow
				}
				h := middleware(b, auth, eval).Handler(app)
				var mu sync.Mutex
				var lat []time.Duration
				var next atomic.Int64
				b.ResetTimer()
				var wg sync.WaitGroup
				for range clients {
					wg.Go(func() {
						rw := newDiscard()
						mine := make([]time.Duration, 0, b.N/clients+1)
						for next.Add(1) <= int64(b.N) {
							rw.reset()
							t0 := time.Now()
							h.ServeHTTP(rw, s.request.Clone(ctx))
							mine = append(mine, time.Since(t0))
							if rw.status != http.StatusOK {
								b.Errorf("status %d", rw.status)
								return
							}
						}
						mu.Lock()
						lat = append(lat, mine...)
						mu.Unlock()
					})
				}
				wg.Wait()
				b.StopTimer()
				slices.Sort(lat)
				b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
				b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
				if shadow != nil {
					st := shadow.Stats()
					cctx, cancel := context.WithTimeout(ctx, time.Minute)
					defer cancel()
					_ = shadow.Close(cctx)
					b.ReportMetric(float64(st.Skipped)/float64(b.N), "skipped/op")
				}
			})
		}
	}
}
