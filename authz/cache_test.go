package authz_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/regoguard/regoguard/authz"
	"github.com/regoguard/regoguard/policy"
)

// counting counts the decisions that reach the engine behind a cache.
type counting struct {
	*policy.Engine
	n atomic.Int64
}

func (c *counting) Eval(ctx context.Context, in ast.Value) (policy.Decision, error) {
	c.n.Add(1)
	return c.Engine.Eval(ctx, in)
}

func parse(t testing.TB, s string) ast.Value {
	t.Helper()
	v, err := ast.ParseTerm(s)
	if err != nil {
		t.Fatal(err)
	}
	return v.Value
}

func TestCacheHitsMissesAndRevisions(t *testing.T) {
	ctx := context.Background()
	e := &counting{Engine: engine(t, "testdata/regoguard")}
	c, err := authz.NewCache(e, authz.CacheConfig{KeyFields: []string{"method", "path_segments", "user"}})
	if err != nil {
		t.Fatal(err)
	}
	alice := `"user": {"authenticated": true, "claims": {}}`
	a := parse(t, `{"method": "GET", "path_segments": ["api"], "remote_addr": "1:1", `+alice+`}`)
	sameKey := parse(t, `{"remote_addr": "2:2", "path_segments": ["api"], "method": "GET", `+alice+`}`)
	other := parse(t, `{"method": "DELETE", "path_segments": ["api"], `+alice+`}`)

	d1, _ := c.Eval(ctx, a)
	d2, _ := c.Eval(ctx, sameKey)
	d3, _ := c.Eval(ctx, other)
	if !d1.Allow || !d2.Allow || d3.Allow {
		t.Fatalf("decisions %v %v %v, want allow allow deny", d1.Allow, d2.Allow, d3.Allow)
	}
	if n := e.n.Load(); n != 2 {
		t.Fatalf("%d evaluations, want 2 (the second request differs only outside the key)", n)
	}

	// A new revision empties the cache.
	p := policy.MustParse(map[string]string{"p.rego": "package httpapi.authz\nallow := false\n"}, nil)
	if err := e.Load(ctx, p); err != nil {
		t.Fatal(err)
	}
	if d, _ := c.Eval(ctx, a); d.Allow || e.n.Load() != 3 {
		t.Fatalf("after a new revision: allow=%v after %d evaluations; want a fresh deny", d.Allow, e.n.Load())
	}
}

func TestCacheExpires(t *testing.T) {
	e := &counting{Engine: engine(t, "testdata/regoguard")}
	c, err := authz.NewCache(e, authz.CacheConfig{TTL: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	in := parse(t, `{"method": "GET", "path_segments": ["public"], "user": {}}`)
	c.Eval(context.Background(), in)
	time.Sleep(time.Millisecond)
	c.Eval(context.Background(), in)
	if e.n.Load() != 2 {
		t.Errorf("%d evaluations; an expired decision was reused", e.n.Load())
	}
}

func TestCacheNeverCachesErrors(t *testing.T) {
	c, err := authz.NewCache(failing{}, authz.CacheConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if d, err := c.Eval(context.Background(), ast.NewObject()); err == nil || d.Allow {
			t.Fatalf("got %+v, %v; want the evaluator's error each time", d, err)
		}
	}
	if c.Len() != 0 {
		t.Errorf("%d entries cached from errors", c.Len())
	}
}
