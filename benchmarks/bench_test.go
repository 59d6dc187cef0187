// Package benchmarks measures regoguard side by side with OPA's own
// evaluation, a remote OPA server and no middleware at all, on reference
// policies. Run it with ./run.sh (see README.md); the figures are ratios
// measured in one run.
package benchmarks

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/authz"
	"github.com/regoguard/regoguard/internal/testopa"
	"github.com/regoguard/regoguard/policy"
)

func TestMain(m *testing.M) {
	slog.SetDefault(slog.New(slog.DiscardHandler))
	code := m.Run()
	for _, s := range servers {
		s.Stop()
	}
	os.Exit(code)
}

// servers holds one OPA server per workload, started on first use and shared
// by every benchmark in the run: starting one costs far more than a run.
var (
	serversMu sync.Mutex
	servers   = map[string]*testopa.Server{}
)

// setup is everything a benchmark of one workload needs.
type setup struct {
	raw        rego.PreparedEvalQuery
	whole      *policy.Engine // evaluates every rule of the package, as raw does
	engine     *policy.Engine
	input      ast.Value
	request    *http.Request
	inProcess  http.Handler
	app        http.Handler
	remoteURL  string
	remoteEval *authz.Remote
	remoteMW   http.Handler
}

var app = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
	_, _ = io.WriteString(w, "ok")
})

func newSetup(tb testing.TB, w workload, withRemote bool) *setup {
	tb.Helper()
	ctx := context.Background()
	dir := w.policyDir(tb)
	p, err := policy.LoadFiles(dir)
	if err != nil {
		tb.Fatal(err)
	}
	s := &setup{request: w.request(), app: app}
	if s.engine, err = policy.New(ctx, policy.Config{}, p); err != nil {
		tb.Fatal(err)
	}
	if s.whole, err = policy.New(ctx, policy.Config{WholeDocument: true}, p); err != nil {
		tb.Fatal(err)
	}
	auth := authn.AuthenticatorFunc(func(*http.Request) (*authn.Identity, error) { return w.user, nil })
	mw := middleware(tb, auth, s.engine)
	s.inProcess = mw.Handler(app)
	if s.input, err = mw.Input(w.request(), w.user); err != nil {
		tb.Fatal(err)
	}
	s.raw = rawQuery(tb, p)
	if withRemote {
		s.remoteURL = opaServer(tb, w, dir)
		if s.remoteEval, err = authz.NewRemote(authz.RemoteConfig{URL: s.remoteURL}); err != nil {
			tb.Fatal(err)
		}
		s.remoteMW = middleware(tb, auth, s.remoteEval).Handler(app)
	}
	// Every benchmark must measure a request that is allowed after the
	// policy's full work, not an early deny.
	for name, h := range map[string]http.Handler{"in-process": s.inProcess, "remote": s.remoteMW} {
		if h == nil {
			continue
		}
		rw := newDiscard()
		h.ServeHTTP(rw, w.request())
		if rw.status != http.StatusOK {
			tb.Fatalf("%s %s: the reference request got %d, want 200", w.name, name, rw.status)
		}
	}
	return s
}

func middleware(tb testing.TB, auth authn.Authenticator, eval authz.Evaluator) *authz.Middleware {
	tb.Helper()
	m, err := authz.New(authz.Config{Authenticator: auth, Evaluator: eval, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// rawQuery is OPA's own prepared query for the same policy and data, with
// the same store options as the engine: the floor the middleware is measured
// against.
func rawQuery(tb testing.TB, p *policy.Policy) rego.PreparedEvalQuery {
	tb.Helper()
	data, err := p.Document()
	if err != nil {
		tb.Fatal(err)
	}
	if data == nil {
		data = map[string]any{}
	}
	opts := []func(*rego.Rego){
		rego.Query("data.httpapi.authz"),
		rego.Store(inmem.NewFromObjectWithOpts(data, inmem.OptReturnASTValuesOnRead(true))),
	}
	for _, m := range p.Modules {
		opts = append(opts, rego.ParsedModule(m))
	}
	pq, err := rego.New(opts...).PrepareForEval(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	return pq
}

func opaServer(tb testing.TB, w workload, dir string) string {
	tb.Helper()
	serversMu.Lock()
	defer serversMu.Unlock()
	if s, ok := servers[w.name]; ok {
		return s.URL
	}
	s := testopa.StartDetached(tb, dir)
	servers[w.name] = s
	return s.URL
}

// discard is a ResponseWriter that keeps only the status, so the benchmark
// measures the middleware rather than a recorder.
type discard struct {
	header http.Header
	status int
}

func newDiscard() *discard { return &discard{header: http.Header{}} }

func (d *discard) Header() http.Header { return d.header }
func (d *discard) Write(b []byte) (int, error) {
	if d.status == 0 {
		d.status = http.StatusOK
	}
	return len(b), nil
}
func (d *discard) WriteHeader(status int) {
	if d.status == 0 {
		d.status = status
	}
}
func (d *discard) reset() {
	clear(d.header)
	d.status = 0
}

// BenchmarkDecision measures one decision alone: OPA's raw prepared query
// of the decision document (the floor), regoguard's engine (allow first),
// the engine evaluating the whole document as raw does (engine-whole: the
// engine's own overhead), and the remote OPA server over loopback.
func BenchmarkDecision(b *testing.B) {
	ctx := context.Background()
	for _, w := range workloads {
		s := newSetup(b, w, true)
		b.Run("policy="+w.name+"/mode=raw", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				rs, err := s.raw.Eval(ctx, rego.EvalParsedInput(s.input))
				if err != nil || len(rs) == 0 {
					b.Fatal(err)
				}
			}
		})
		b.Run("policy="+w.name+"/mode=engine", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if d, err := s.engine.Eval(ctx, s.input); err != nil || !d.Allow {
					b.Fatal(d, err)
				}
			}
		})
		b.Run("policy="+w.name+"/mode=engine-whole", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if d, err := s.whole.Eval(ctx, s.input); err != nil || !d.Allow {
					b.Fatal(d, err)
				}
			}
		})
		b.Run("policy="+w.name+"/mode=remote", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if d, err := s.remoteEval.Eval(ctx, s.input); err != nil || !d.Allow {
					b.Fatal(d, err)
				}
			}
		})
	}
}

type handlerMode struct {
	name string
	h    http.Handler
}

// requestModes are the handlers a whole request is measured through: no
// middleware, the middleware in-process, and the middleware asking a remote
// OPA server.
func (s *setup) requestModes() []handlerMode {
	return []handlerMode{{"none", s.app}, {"in-process", s.inProcess}, {"remote", s.remoteMW}}
}

// BenchmarkRequest measures a whole request through the handler: no
// middleware, the middleware in-process, and the middleware asking a remote
// OPA server.
func BenchmarkRequest(b *testing.B) {
	for _, w := range workloads {
		s := newSetup(b, w, true)
		for _, mode := range s.requestModes() {
			b.Run("policy="+w.name+"/mode="+mode.name, func(b *testing.B) {
				b.ReportAllocs()
				rw := newDiscard()
				for b.Loop() {
					rw.reset()
					mode.h.ServeHTTP(rw, s.request)
					if rw.status != http.StatusOK {
						b.Fatalf("status %d", rw.status)
					}
				}
			})
		}
	}
}

// BenchmarkRequestParallel is BenchmarkRequest with concurrent requests.
func BenchmarkRequestParallel(b *testing.B) {
	for _, w := range workloads {
		s := newSetup(b, w, true)
		for _, mode := range s.requestModes() {
			b.Run("policy="+w.name+"/mode="+mode.name, func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					rw := newDiscard()
					req := w.request()
					for pb.Next() {
						rw.reset()
						mode.h.ServeHTTP(rw, req)
						if rw.status != http.StatusOK {
							b.Errorf("status %d", rw.status)
							return
						}
					}
				})
			})
		}
	}
}

// TestReferenceRequestsAllowed checks, in the ordinary test run, that every
// workload's request is allowed in-process and by a real OPA server: the
// benchmarks measure work that was really done.
func TestReferenceRequestsAllowed(t *testing.T) {
	for _, w := range workloads {
		t.Run(w.name, func(t *testing.T) {
			s := newSetup(t, w, true)
			d, err := s.engine.Eval(context.Background(), s.input)
			if err != nil || !d.Allow {
				t.Fatalf("engine: %+v %v", d, err)
			}
			rd, err := s.remoteEval.Eval(context.Background(), s.input)
			if err != nil || rd.Allow != d.Allow {
				t.Fatalf("remote: %+v %v", rd, err)
			}
		})
	}
}

// BenchmarkCache measures the optional decision cache: a hit, a miss (two
// inputs taking turns in a cache of one), and the engine alone.
func BenchmarkCache(b *testing.B) {
	ctx := context.Background()
	for _, w := range workloads {
		s := newSetup(b, w, false)
		other, err := middleware(b, authn.AuthenticatorFunc(func(*http.Request) (*authn.Identity, error) { return w.user, nil }), s.engine).
			Input(httptest.NewRequest("GET", "/somewhere/else", nil), w.user)
		if err != nil {
			b.Fatal(err)
		}
		hit, err := authz.NewCache(s.engine, authz.CacheConfig{})
		if err != nil {
			b.Fatal(err)
		}
		miss, err := authz.NewCache(s.engine, authz.CacheConfig{Size: 1})
		if err != nil {
			b.Fatal(err)
		}
		inputs := []ast.Value{s.input, other}
		for _, mode := range []struct {
			name string
			eval authz.Evaluator
		}{{"engine", s.engine}, {"hit", hit}, {"miss", miss}} {
			b.Run("policy="+w.name+"/mode="+mode.name, func(b *testing.B) {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					in := s.input
					if mode.name == "miss" {
						in = inputs[i%2]
						i++
					}
					if _, err := mode.eval.Eval(ctx, in); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
