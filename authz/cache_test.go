package authz_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/regoguard/regoguard/authz"
	"github.com/regoguard/regoguard/internal/testopa"
	"github.com/regoguard/regoguard/policy"
	"github.com/regoguard/regoguard/prommetrics"
)

// counting is a wrapper of the kind a user writes (a recorder): it counts
// the decisions that reach the evaluator it wraps, and forwards
// authz.Planner as package authz documents, so that the middleware and a
// cache in front still see the revision and the fields read. It keeps the
// inputs it is given when keep is set.
type counting struct {
	inner authz.Evaluator
	n     atomic.Int64
	keep  bool
	mu    sync.Mutex
	seen  []ast.Value
}

func (c *counting) Eval(ctx context.Context, in ast.Value) (policy.Decision, error) {
	c.count(in)
	return c.inner.Eval(ctx, in)
}

func (c *counting) Plan() (policy.Plan, error) { return authz.PlanOf(c.inner) }

func (c *counting) count(in ast.Value) {
	c.n.Add(1)
	if c.keep {
		c.mu.Lock()
		c.seen = append(c.seen, in)
		c.mu.Unlock()
	}
}

func parse(t testing.TB, s string) ast.Value {
	t.Helper()
	v, err := ast.ParseTerm(s)
	if err != nil {
		t.Fatal(err)
	}
	return v.Value
}

func newCache(t testing.TB, eval authz.Evaluator, cfg authz.CacheConfig) *authz.Cache {
	t.Helper()
	c, err := authz.NewCache(eval, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const readsMethodSegmentsGroups = `package httpapi.authz
allow if {
	input.method == "GET"
	input.path_segments[0] == "api"
	"staff" in input.user.claims.groups
}`

func TestCacheHitsMissesAndRevisions(t *testing.T) {
	ctx := context.Background()
	e := policyOf(t, readsMethodSegmentsGroups)
	inner := &counting{inner: e}
	c := newCache(t, inner, authz.CacheConfig{})
	staff := `"user": {"authenticated": true, "claims": {"groups": ["staff"], "email": "a@x"}}`
	a := parse(t, `{"method": "GET", "path_segments": ["api"], "remote_addr": "1:1", `+staff+`}`)
	// Differs only where the policy does not read: the client's address,
	// another claim.
	sameRead := parse(t, `{"remote_addr": "2:2", "path_segments": ["api"], "method": "GET", "headers": {"x": "y"},
		"user": {"authenticated": true, "claims": {"groups": ["staff"], "email": "b@x"}}}`)
	other := parse(t, `{"method": "DELETE", "path_segments": ["api"], `+staff+`}`)
	otherGroups := parse(t, `{"method": "GET", "path_segments": ["api"], "user": {"claims": {"groups": ["staff", "x"]}}}`)

	var got []bool
	for _, in := range []ast.Value{a, sameRead, other, otherGroups} {
		d, err := c.Eval(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, d.Allow)
	}
	if fmt.Sprint(got) != "[true true false true]" {
		t.Fatalf("decisions %v, want [true true false true]", got)
	}
	if n := inner.n.Load(); n != 3 || c.Len() != 3 {
		t.Fatalf("%d evaluations, %d entries; want 3 and 3 (the second input differs only where the policy does not read)", n, c.Len())
	}

	// A new revision is never answered from the old one's decisions.
	if err := e.Load(ctx, policy.MustParse(map[string]string{"p.rego": "package httpapi.authz\nallow := false\n"}, nil)); err != nil {
		t.Fatal(err)
	}
	if d, _ := c.Eval(ctx, a); d.Allow || inner.n.Load() != 4 {
		t.Fatalf("after a new revision: allow=%v after %d evaluations; want a fresh deny", d.Allow, inner.n.Load())
	}
}

// Weakness 9 of the security review: a key that leaves out a field the
// policy reads would answer one caller with another's decision. It is
// refused at start, naming the fields it leaves out.
func TestCacheKeyLeavingOutWhatThePolicyReadsIsRefused(t *testing.T) {
	e := policyOf(t, readsMethodSegmentsGroups)
	cases := []struct {
		key     []string
		refused string // "" when accepted
	}{
		{[]string{"method", "path"}, "leaves out input fields the policy (revision " + e.Revision() + ") reads: path_segments,user"},
		{[]string{"method", "path_segments"}, "reads: user"},
		{[]string{"method", "path_segments", "user"}, ""},
		{[]string{"method", "path_segments", "user", "headers"}, ""},
	}
	for _, c := range cases {
		_, err := authz.NewCache(e, authz.CacheConfig{KeyFields: c.key})
		switch {
		case c.refused == "" && err != nil:
			t.Errorf("key %v: %v, want it accepted", c.key, err)
		case c.refused != "" && (err == nil || !strings.Contains(err.Error(), c.refused)):
			t.Errorf("key %v: %v, want an error with %q", c.key, err, c.refused)
		}
	}
	// Behind any wrapper that forwards Planner, and behind a fallback.
	for name, eval := range map[string]authz.Evaluator{
		"wrapper":  &counting{inner: e},
		"fallback": &authz.Fallback{Primary: e, Secondary: failing{}},
	} {
		if _, err := authz.NewCache(eval, authz.CacheConfig{KeyFields: []string{"method"}}); err == nil ||
			!strings.Contains(err.Error(), "path_segments,user") {
			t.Errorf("%s: %v, want the key refused", name, err)
		}
	}
	whole := policyOf(t, "package httpapi.authz\nallow if count(input) > 1\n")
	if _, err := authz.NewCache(whole, authz.CacheConfig{KeyFields: []string{"method"}}); err == nil ||
		!strings.Contains(err.Error(), "reads its input as a whole") {
		t.Errorf("a policy reading its whole input: %v, want the key refused", err)
	}
}

func TestCacheExpires(t *testing.T) {
	inner := &counting{inner: policyOf(t, readsMethodSegmentsGroups)}
	c := newCache(t, inner, authz.CacheConfig{TTL: time.Nanosecond})
	in := parse(t, `{"method": "GET", "path_segments": ["public"], "user": {}}`)
	_, _ = c.Eval(context.Background(), in)
	time.Sleep(time.Millisecond)
	_, _ = c.Eval(context.Background(), in)
	if inner.n.Load() != 2 {
		t.Errorf("%d evaluations; an expired decision was reused", inner.n.Load())
	}
}

func TestCacheNeverCachesErrors(t *testing.T) {
	for name, eval := range map[string]authz.Evaluator{
		"no revision": failing{},
		"engine with no policy": func() authz.Evaluator {
			e, err := policy.New(context.Background(), policy.Config{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			return e
		}(),
	} {
		c := newCache(t, eval, authz.CacheConfig{})
		for range 2 {
			if d, err := c.Eval(context.Background(), ast.NewObject()); err == nil || d.Allow {
				t.Fatalf("%s: got %+v, %v; want the evaluator's error each time", name, d, err)
			}
		}
		if c.Len() != 0 {
			t.Errorf("%s: %d entries cached from errors", name, c.Len())
		}
	}
}

// The target, measured through the middleware: with the engine
// wrapped in a Cache (and a recorder of one's own in between), the policy
// input holds only the fields the policy reads, and 100 identical requests
// from 100 client ports make one cache entry and one evaluation. Behind a
// fallback to a remote OPA the whole input is built (the remote may read
// any field), but the key is still what the local policy reads.
func TestCacheBehindTheMiddlewareKeysOnWhatThePolicyReads(t *testing.T) {
	const src = "package httpapi.authz\nallow if {\n\tinput.method == \"GET\"\n\tinput.path == \"/api/x\"\n}\n"
	opa := testopa.Start(t)
	putPolicy(t, opa.URL, src)
	for _, c := range []struct {
		name     string
		fallback bool
		input    string // what the engine is given
	}{
		{"engine", false, `{"method": "GET", "path": "/api/x"}`},
		{"engine, then remote", true, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			rec := &counting{inner: policyOf(t, src), keep: true}
			var eval authz.Evaluator = rec
			if c.fallback {
				eval = &authz.Fallback{Primary: rec, Secondary: remote(t, opa.URL)}
			}
			cache := newCache(t, eval, authz.CacheConfig{})
			h := newMiddleware(t, authz.Config{Evaluator: cache})
			for port := range 100 {
				r := request("GET", "/api/x?q=1", "alice;staff")
				r.RemoteAddr = fmt.Sprintf("192.0.2.7:%d", 40000+port)
				r.Header.Set("X-Trace", fmt.Sprint(port))
				if res := do(t, h, r); res.status != 200 {
					t.Fatalf("request %d: %d", port, res.status)
				}
			}
			if cache.Len() != 1 || rec.n.Load() != 1 {
				t.Errorf("%d cache entries and %d evaluations for 100 identical requests from 100 ports; want 1 and 1", cache.Len(), rec.n.Load())
			}
			if got := rec.seen[0].String(); c.input != "" && got != c.input {
				t.Errorf("the policy was given %s; want only the method and path it reads: %s", got, c.input)
			}
		})
	}
}

// The middleware counts fallbacks in its metrics without writing into the
// caller's Fallback.
func TestMiddlewareLeavesTheCallersFallbackAlone(t *testing.T) {
	unloaded, err := policy.New(context.Background(), policy.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	fb := &authz.Fallback{Primary: unloaded, Secondary: policyOf(t, "package httpapi.authz\nallow := true\n")}
	reg := prometheus.NewRegistry()
	h := newMiddleware(t, authz.Config{Evaluator: fb, Metrics: promMetrics(reg, prommetrics.MiddlewareOptions{})})
	if res := do(t, h, request("GET", "/x", "alice")); res.status != 200 {
		t.Fatalf("status %d", res.status)
	}
	if fb.OnFallback != nil {
		t.Error("authz.New wrote into the caller's Fallback.OnFallback")
	}
	if n := metricValue(t, reg, "regoguard_fallbacks_total", ""); n != 1 {
		t.Errorf("fallbacks metric %v, want 1", n)
	}
}

// putPolicy replaces the remote OPA's policy (one module, id p).
func putPolicy(t testing.TB, opaURL, src string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, opaURL+"/v1/policies/p", strings.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "text/plain")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT policy: %s", resp.Status)
	}
}

// arrangement is one way of putting evaluators behind a Cache: eval is what
// the cache wraps; truth names the evaluator whose policy must decide
// (the others keep the old policy when it changes, as a remote fallback does
// when the local files change).
type arrangement struct {
	name  string
	truth string // "engine" or "remote"
	build func(e *policy.Engine, r *authz.Remote) authz.Evaluator
	outer bool // the cache sits inside the evaluator: build's result is asked directly
}

func arrangements(t testing.TB) []arrangement {
	unloaded := func() *policy.Engine {
		e, err := policy.New(context.Background(), policy.Config{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	return []arrangement{
		{name: "engine", truth: "engine", build: func(e *policy.Engine, _ *authz.Remote) authz.Evaluator { return e }},
		{name: "user wrapper around the engine", truth: "engine", build: func(e *policy.Engine, _ *authz.Remote) authz.Evaluator {
			return &counting{inner: e}
		}},
		{name: "engine, then remote", truth: "engine", build: func(e *policy.Engine, r *authz.Remote) authz.Evaluator {
			return &authz.Fallback{Primary: e, Secondary: r}
		}},
		{name: "remote, then engine", truth: "remote", build: func(e *policy.Engine, r *authz.Remote) authz.Evaluator {
			return &authz.Fallback{Primary: r, Secondary: e}
		}},
		{name: "remote", truth: "remote", build: func(_ *policy.Engine, r *authz.Remote) authz.Evaluator { return r }},
		{name: "unloaded engine, then engine", truth: "engine", build: func(e *policy.Engine, _ *authz.Remote) authz.Evaluator {
			return &authz.Fallback{Primary: unloaded(), Secondary: e}
		}},
		{name: "engine, then a failing evaluator", truth: "engine", build: func(e *policy.Engine, _ *authz.Remote) authz.Evaluator {
			return &authz.Fallback{Primary: e, Secondary: failing{}}
		}},
		{name: "fallback to remote around a cached engine", truth: "engine", outer: true, build: func(e *policy.Engine, r *authz.Remote) authz.Evaluator {
			c, err := authz.NewCache(e, authz.CacheConfig{})
			if err != nil {
				t.Fatal(err)
			}
			return &authz.Fallback{Primary: c, Secondary: r}
		}},
	}
}

// Weakness 8 of the security review: an allow cached before a revoking
// policy is loaded kept answering. Whatever stands behind the cache, the
// next decision after the change is the new policy's.
func TestCacheNewRevisionIsNeverAnsweredFromAnOldOne(t *testing.T) {
	ctx := context.Background()
	opa := testopa.Start(t)
	const allowAll = "package httpapi.authz\nallow if input.method == \"GET\"\n"
	const revoke = "package httpapi.authz\nallow if input.method == \"HEAD\"\n"
	in := parse(t, `{"method": "GET", "path": "/x"}`)
	for _, a := range arrangements(t) {
		t.Run(a.name, func(t *testing.T) {
			putPolicy(t, opa.URL, allowAll)
			e := policyOf(t, allowAll)
			eval := a.build(e, remote(t, opa.URL))
			if !a.outer {
				eval = newCache(t, eval, authz.CacheConfig{TTL: time.Hour})
			}
			for range 3 {
				if d, err := eval.Eval(ctx, in); err != nil || !d.Allow {
					t.Fatalf("before: %+v, %v", d, err)
				}
			}
			if a.truth == "engine" {
				if err := e.Load(ctx, policy.MustParse(map[string]string{"p.rego": revoke}, nil)); err != nil {
					t.Fatal(err)
				}
			} else {
				putPolicy(t, opa.URL, revoke)
			}
			if d, err := eval.Eval(ctx, in); err != nil || d.Allow {
				t.Fatalf("after the revoking policy: %+v, %v; want a deny", d, err)
			}
		})
	}
}

// prune keeps of v what fields reads, as the middleware builds it.
func prune(v ast.Value, fields *policy.InputFields) ast.Value {
	obj, ok := v.(ast.Object)
	if fields == nil || !ok {
		return v
	}
	out := ast.NewObject()
	obj.Foreach(func(k, val *ast.Term) {
		if s, ok := k.Value.(ast.String); ok && fields.Reads(string(s)) {
			out.Insert(k, ast.NewTerm(prune(val.Value, fields.Under(string(s)))))
		}
	})
	return out
}

// The adversarial probe of the decision cache class (keys that leave out
// what the policy reads, decisions that outlive their revision): many
// policies, each followed by a revision that reads other fields, under
// several keys and every arrangement of evaluators, on inputs that differ in
// every field one at a time. Every cached answer is compared with a fresh
// evaluation of the policy that must decide; the count of wrong answers
// must be zero.
func TestCacheAdversarialProbe(t *testing.T) {
	ctx := context.Background()
	opa := testopa.Start(t)
	type pair struct{ name, before, after string }
	policies := []pair{
		{"method, then address", `allow if input.method == "GET"`, `allow if input.remote_addr == "10.0.0.1:1"`},
		{"groups, then method", `allow if "admin" in input.user.claims.groups`, `allow if input.method == "POST"`},
		{"header, then path", `allow if input.headers["x-role"] == "admin"`, `allow if input.path == "/a"`},
		{"sub and path, then groups", `allow if {
	input.user.sub == "alice"
	input.path == "/a"
}`, `allow if "reader" in input.user.claims.groups`},
		{"whole input, then header", `allow if {
	some p, v
	walk(input, [p, v])
	v == "admin"
	p[0] == "headers"
}`, `allow if input.headers["x-role"] == "reader"`},
		{"computed key, then method", `k := "method"
allow if input[k] == "GET"`, `allow if input.method == "GET"`},
		{"address, then sub", `allow if input.remote_addr == "10.0.0.2:2"`, `allow if input.user.sub == "bob"`},
		{"everything allowed, then nothing", `allow := true`, `allow := false`},
	}
	keys := [][]string{nil, {"method"}, {"method", "path", "user"}, {"method", "path", "user", "headers", "remote_addr"}}

	// Inputs that differ in each field the policies read, in all
	// combinations.
	var inputs []ast.Value
	for i := range 32 {
		pick := func(bit int, a, b string) string {
			if i&(1<<bit) == 0 {
				return a
			}
			return b
		}
		inputs = append(inputs, parse(t, fmt.Sprintf(`{"method": %q, "path": %q, "headers": {"x-role": %q},
			"remote_addr": %q, "user": {"sub": %q, "claims": {"groups": [%q]}}}`,
			pick(0, "GET", "POST"), pick(1, "/a", "/b"), pick(2, "admin", "reader"),
			pick(3, "10.0.0.1:1", "10.0.0.2:2"), pick(4, "alice", "bob"), pick(4, "admin", "reader"))))
	}
	module := func(body string) string { return "package httpapi.authz\n" + body + "\n" }

	var asked, wrong, refused, missedRefusals int
	for _, p := range policies {
		before := policyOf(t, module(p.before))
		after := policyOf(t, module(p.after))
		beforePlan, _ := before.Plan()
		for _, a := range arrangements(t) {
			for _, key := range keys {
				putPolicy(t, opa.URL, module(p.before))
				e := policyOf(t, module(p.before))
				eval := a.build(e, remote(t, opa.URL))
				if !a.outer {
					c, err := authz.NewCache(eval, authz.CacheConfig{KeyFields: key, TTL: time.Hour})
					if err != nil {
						refused++
						if coversReads(key, beforePlan.RevisionFields) {
							t.Errorf("%s, %s, key %v: refused a key that covers what the policy reads: %v", p.name, a.name, key, err)
							wrong++
						}
						continue
					}
					if key != nil && !coversReads(key, beforePlan.RevisionFields) && a.truth == "engine" {
						missedRefusals++
						t.Errorf("%s, %s, key %v: a key leaving out what the policy reads was accepted", p.name, a.name, key)
					}
					eval = c
				}
				check := func(stage string, truth *policy.Engine) {
					for pass := range 2 {
						for i, in := range inputs {
							if pass == 1 {
								in = inputs[len(inputs)-1-i]
							}
							want, err := truth.Eval(ctx, in)
							if err != nil {
								t.Fatal(err)
							}
							var d policy.Decision
							// The second pass goes the middleware's way: a
							// plan, an input pruned to what it reads.
							if pl, ok := eval.(authz.Planner); ok && pass == 1 {
								plan, perr := pl.Plan()
								if perr != nil {
									t.Fatal(perr)
								}
								d, err = eval.Eval(ctx, prune(in, plan.Fields))
							} else {
								d, err = eval.Eval(ctx, in)
							}
							asked++
							if err != nil || d.Allow != want.Allow {
								wrong++
								if wrong <= 10 {
									t.Errorf("%s, %s, key %v, %s, pass %d: %v on %v (%+v); the policy says %v",
										p.name, a.name, key, stage, pass, d.Allow, in, err, want.Allow)
								}
							}
						}
					}
				}
				check("before", before)
				if a.truth == "engine" {
					if err := e.Load(ctx, policy.MustParse(map[string]string{"p.rego": module(p.after)}, nil)); err != nil {
						t.Fatal(err)
					}
				} else {
					putPolicy(t, opa.URL, module(p.after))
				}
				check("after", after)
			}
		}
	}
	t.Logf("cache probe: %d decisions asked, %d keys refused at start, %d wrong answers, %d keys wrongly accepted",
		asked, refused, wrong, missedRefusals)
	if wrong != 0 || missedRefusals != 0 {
		t.Fatalf("%d wrong answers and %d keys wrongly accepted, want 0", wrong, missedRefusals)
	}
}

// coversReads reports whether key names every top-level field fields reads.
func coversReads(key []string, fields *policy.InputFields) bool {
	if key == nil {
		return true
	}
	if fields == nil {
		return false
	}
	for _, k := range fields.Keys() {
		if !strings.Contains(","+strings.Join(key, ",")+",", ","+k+",") {
			return false
		}
	}
	return true
}

// A decision the Fallback's Secondary made (here a remote OPA, because the
// local policy fails on this input) is not kept under the local revision:
// when the remote policy changes, the next answer is the new one.
func TestCacheKeepsOnlyTheDecisionsOfItsRevision(t *testing.T) {
	ctx := context.Background()
	opa := testopa.Start(t)
	putPolicy(t, opa.URL, "package httpapi.authz\nallow := true\n")
	// Two values for allow on a POST: an evaluation error, every time.
	e := policyOf(t, "package httpapi.authz\nallow := true if input.method == \"POST\"\nallow := false if input.method == \"POST\"\n")
	c := newCache(t, &authz.Fallback{Primary: e, Secondary: remote(t, opa.URL)}, authz.CacheConfig{TTL: time.Hour})
	in := parse(t, `{"method": "POST"}`)
	if d, err := c.Eval(ctx, in); err != nil || !d.Allow || c.Len() != 0 {
		t.Fatalf("the remote's answer: %+v, %v, %d entries; want an allow, not kept", d, err, c.Len())
	}
	putPolicy(t, opa.URL, "package httpapi.authz\nallow := false\n")
	if d, err := c.Eval(ctx, in); err != nil || d.Allow {
		t.Fatalf("after the remote policy changed: %+v, %v; want its deny", d, err)
	}
}
