package benchmarks

// Bundles: the per-request cost of the evaluation paths considered for
// serving OPA bundles in-process, side by side in one run:
//
//   - engine: bundles.Manager activates the bundle into policy.Engine, a
//     PreparedEvalQuery swapped atomically on each activation (the path
//     regoguard keeps);
//   - sdk: OPA's sdk serving the same bundle (file:// resource), one
//     sdk.Decision per request.
//
// Each is measured without and with decision logs (OPA's decision-log
// plugin, console sink discarded, with a system.log.mask rule in the bundle
// on both sides). Identifiers are prefixed with "bnd" to live next to the
// package's other benchmarks.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/logging"
	"github.com/open-policy-agent/opa/v1/sdk"

	"github.com/regoguard/regoguard/bundles"
	"github.com/regoguard/regoguard/policy"
)

var bndQuiet = slog.New(slog.DiscardHandler)

// bndWorkload is a bundle and one input that its policy allows after doing
// its full work.
type bndWorkload struct {
	name string
	rego string
	data map[string]any
}

const bndMask = `package system.log

mask contains "/input/token"
`

var bndWorkloads = []bndWorkload{
	{
		name: "trivial",
		rego: `package httpapi.authz

default allow := false

allow if input.method == "GET"
`,
		data: map[string]any{},
	},
	{
		// 20 roles x 10 grants scanned by method and path prefix, the match
		// in the last role, plus an owner rule.
		name: "rbac",
		rego: `package httpapi.authz

default allow := false

allow if {
	some role in input.user.roles
	some grant in data.httpapi.grants[role]
	grant.method == input.method
	startswith(input.path, grant.prefix)
}

allow if {
	input.method == "GET"
	input.path == concat("/", ["", "users", input.user.name])
}
`,
		data: map[string]any{"httpapi": map[string]any{"grants": bndGrants()}},
	},
}

func bndGrants() map[string]any {
	methods := []string{"GET", "POST", "PUT", "DELETE", "PATCH"}
	grants := map[string]any{}
	for role := range 20 {
		var list []any
		for i := range 10 {
			list = append(list, map[string]any{
				"method": methods[i%len(methods)],
				"prefix": fmt.Sprintf("/api/v1/svc%d/r%d/", role, i),
			})
		}
		grants[fmt.Sprintf("role%d", role)] = list
	}
	return grants
}

// bndInput is the request both paths evaluate: allowed by both workloads
// (for rbac by the grant of role19, the last one scanned).
func bndInput() map[string]any {
	return map[string]any{
		"method": "POST",
		"path":   "/api/v1/svc19/r1/items/7",
		"token":  "secret",
		"user":   map[string]any{"name": "bob", "roles": []any{"role3", "role11", "role19"}},
	}
}

func (w bndWorkload) request(method string) (ast.Value, map[string]any) {
	in := bndInput()
	if w.name == "trivial" {
		in["method"] = method
	}
	v, err := ast.InterfaceToValue(in)
	if err != nil {
		panic(err)
	}
	return v, in
}

// bndBundle writes the workload as a signed-less bundle .tar.gz with OPA's
// bundle writer and returns its path.
func bndBundle(tb testing.TB, w bndWorkload) string {
	tb.Helper()
	roots := []string{"httpapi", "system"}
	b := bundle.Bundle{Manifest: bundle.Manifest{Revision: "bench-1", Roots: &roots}, Data: w.data}
	for name, src := range map[string]string{"authz.rego": w.rego, "mask.rego": bndMask} {
		m, err := ast.ParseModuleWithOpts(name, src, ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			tb.Fatal(err)
		}
		b.Modules = append(b.Modules, bundle.ModuleFile{URL: "/" + name, Path: "/" + name, Raw: []byte(src), Parsed: m})
	}
	var buf bytes.Buffer
	if err := bundle.NewWriter(&buf).Write(b); err != nil {
		tb.Fatal(err)
	}
	path := filepath.Join(tb.TempDir(), w.name+".tar.gz")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

// bndEngine serves the bundle with bundles.Manager and policy.Engine, and a
// decision logger when logs is set.
func bndEngine(tb testing.TB, path string, logs bool, queue int) (*policy.Engine, *bundles.DecisionLogger) {
	tb.Helper()
	ctx := context.Background()
	e, err := policy.NewEngine(policy.Config{Logger: bndQuiet})
	if err != nil {
		tb.Fatal(err)
	}
	var dl *bundles.DecisionLogger
	if logs {
		dl, err = bundles.NewDecisionLogger(ctx, bundles.DecisionLogConfig{Console: true, Logger: bndQuiet, ID: "bench", QueueSize: queue})
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { dl.Stop(context.Background()) })
	}
	m, err := bundles.New(bundles.Config{Engine: e, Logger: bndQuiet, DecisionLogger: dl,
		Bundles: []bundles.Source{{Name: "authz", Path: path}}})
	if err != nil {
		tb.Fatal(err)
	}
	if err := m.Start(ctx); err != nil {
		tb.Fatal(err)
	}
	return e, dl
}

// bndSDK serves the bundle with OPA's sdk. Nothing leaves the process: the
// only bundle is a file:// resource, and there are no services.
func bndSDK(tb testing.TB, path string, logs bool) *sdk.OPA {
	tb.Helper()
	cfg := fmt.Sprintf(`{"bundles": {"authz": {"resource": "file://%s"}}, "decision_logs": {"console": %t}}`,
		filepath.ToSlash(path), logs)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opa, err := sdk.New(ctx, sdk.Options{
		ID:            "bench",
		Config:        strings.NewReader(cfg),
		Logger:        bndNopLogger{},
		ConsoleLogger: bndNopLogger{},
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { opa.Stop(context.Background()) })
	return opa
}

// bndNopLogger discards OPA's logs, as the slog discard handler does on the
// engine side, so that neither side pays for writing console logs.
type bndNopLogger struct{}

func (bndNopLogger) Debug(string, ...any)                       {}
func (bndNopLogger) Info(string, ...any)                        {}
func (bndNopLogger) Error(string, ...any)                       {}
func (bndNopLogger) Warn(string, ...any)                        {}
func (l bndNopLogger) WithFields(map[string]any) logging.Logger { return l }
func (bndNopLogger) GetLevel() logging.Level                    { return logging.Info }
func (bndNopLogger) SetLevel(logging.Level)                     {}

func bndAllowed(result any) bool {
	obj, ok := result.(map[string]any)
	return ok && obj["allow"] == true
}

// TestBundlePathsAgree checks that both paths allow the benchmark request
// and deny another, so the benchmarks compare equal work.
func TestBundlePathsAgree(t *testing.T) {
	ctx := context.Background()
	for _, w := range bndWorkloads {
		path := bndBundle(t, w)
		e, _ := bndEngine(t, path, false, 0)
		opa := bndSDK(t, path, false)
		allowed, _ := w.request(bndMethod(w))
		denied := bndInput()
		denied["method"], denied["path"] = "DELETE", "/elsewhere"
		for _, tc := range []struct {
			in   map[string]any
			want bool
		}{{bndJSON(allowed), true}, {denied, false}} {
			d, err := e.Eval(ctx, ast.MustInterfaceToValue(tc.in))
			if err != nil || d.Allow != tc.want || d.Revision != "bench-1" {
				t.Errorf("%s %v engine: %+v %v, want allow=%v", w.name, tc.in, d, err, tc.want)
			}
			r, err := opa.Decision(ctx, sdk.DecisionOptions{Path: "httpapi/authz", Input: tc.in})
			if err != nil || bndAllowed(r.Result) != tc.want || r.Provenance.Bundles["authz"].Revision != "bench-1" {
				t.Errorf("%s %v sdk: %+v %v, want allow=%v", w.name, tc.in, r, err, tc.want)
			}
		}
	}
}

func bndMethod(w bndWorkload) string {
	if w.name == "trivial" {
		return "GET"
	}
	return "POST"
}

func bndJSON(v ast.Value) map[string]any {
	x, err := ast.JSON(v)
	if err != nil {
		panic(err)
	}
	return x.(map[string]any)
}

// BenchmarkBundleDecision is one decision per iteration on each path.
func BenchmarkBundleDecision(b *testing.B) {
	ctx := context.Background()
	for _, w := range bndWorkloads {
		path := bndBundle(b, w)
		in, inJ := w.request(bndMethod(w))
		for _, logs := range []bool{false, true} {
			suffix := ""
			if logs {
				suffix = "+logs"
			}
			b.Run(w.name+"/engine"+suffix, func(b *testing.B) {
				e, dl := bndEngine(b, path, logs, 0)
				b.ReportAllocs()
				for b.Loop() {
					start := time.Now()
					d, err := e.Eval(ctx, in)
					if err != nil || !d.Allow {
						b.Fatalf("%+v %v", d, err)
					}
					if dl != nil {
						if err := dl.LogDecision(ctx, policy.DecisionEvent{
							ID: "d", Path: "httpapi/authz", Input: in, Result: d.Result, Revision: d.Revision,
							Bundles: d.Bundles, Timestamp: start, Duration: time.Since(start),
						}); err != nil {
							b.Fatal(err)
						}
					}
				}
			})
			if logs {
				// The same, with OPA's masking and buffering moved off the
				// request path by a queue: the request pays for the queue
				// only, the worker goroutine for the rest (on the same 2
				// cores). Events the worker cannot keep up with are dropped
				// and reported as dropped/op.
				b.Run(w.name+"/engine+logs-queued", func(b *testing.B) {
					e, dl := bndEngine(b, path, true, 1<<16)
					b.ReportAllocs()
					for b.Loop() {
						start := time.Now()
						d, err := e.Eval(ctx, in)
						if err != nil || !d.Allow {
							b.Fatalf("%+v %v", d, err)
						}
						err = dl.LogDecision(ctx, policy.DecisionEvent{
							ID: "d", Path: "httpapi/authz", Input: in, Result: d.Result, Revision: d.Revision,
							Bundles: d.Bundles, Timestamp: start, Duration: time.Since(start),
						})
						if err != nil && !errors.Is(err, bundles.ErrQueueFull) {
							b.Fatal(err)
						}
					}
					b.ReportMetric(float64(dl.Dropped())/float64(b.N), "dropped/op")
				})
			}
			b.Run(w.name+"/sdk"+suffix, func(b *testing.B) {
				opa := bndSDK(b, path, logs)
				b.ReportAllocs()
				for b.Loop() {
					r, err := opa.Decision(ctx, sdk.DecisionOptions{Path: "httpapi/authz", Input: in, DecisionID: "d"})
					if err != nil || !bndAllowed(r.Result) {
						b.Fatalf("%+v %v", r, err)
					}
				}
			})
			b.Run(w.name+"/sdk-map-input"+suffix, func(b *testing.B) {
				opa := bndSDK(b, path, logs)
				b.ReportAllocs()
				for b.Loop() {
					r, err := opa.Decision(ctx, sdk.DecisionOptions{Path: "httpapi/authz", Input: inJ, DecisionID: "d"})
					if err != nil || !bndAllowed(r.Result) {
						b.Fatalf("%+v %v", r, err)
					}
				}
			})
		}
	}
}

// BenchmarkBundleActivation is the cost of activating a revision on the
// engine path: reading the bundle, compiling it off to the side, swapping
// it in, then one decision. It is paid once per revision, not per request.
func BenchmarkBundleActivation(b *testing.B) {
	ctx := context.Background()
	w := bndWorkloads[1]
	path := bndBundle(b, w)
	in, _ := w.request("POST")
	b.Run("engine", func(b *testing.B) {
		e, err := policy.NewEngine(policy.Config{Logger: bndQuiet})
		if err != nil {
			b.Fatal(err)
		}
		m, err := bundles.New(bundles.Config{Engine: e, Logger: bndQuiet, Bundles: []bundles.Source{{Name: "authz", Path: path}}})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if err := m.Trigger(ctx); err != nil {
				b.Fatal(err)
			}
			if d, err := e.Eval(ctx, in); err != nil || !d.Allow {
				b.Fatalf("%+v %v", d, err)
			}
		}
	})
}
