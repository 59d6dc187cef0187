package authz_test

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/util"

	"github.com/regoguard/regoguard/authz"
	"github.com/regoguard/regoguard/policy"
)

// blockedEvaluator answers only once released (or when its context ends).
type blockedEvaluator struct{ release chan struct{} }

func (b blockedEvaluator) Eval(ctx context.Context, _ ast.Value) (policy.Decision, error) {
	select {
	case <-b.release:
		return policy.Decision{Allow: true}, nil
	case <-ctx.Done():
		return policy.Decision{}, ctx.Err()
	}
}

// bodyInput is an input holding a JSON body of about n bytes, as the
// middleware builds it (about 14 times n on the heap).
func bodyInput(t testing.TB, n, seed int) ast.Value {
	var b bytes.Buffer
	b.WriteString(`{"method":"POST","body":{"items":[`)
	for i := 0; b.Len() < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":%d,"name":"item-%d-%d","tags":["a","b"],"ok":true}`, i, seed, i)
	}
	b.WriteString(`]}}`)
	var x any
	if err := util.UnmarshalJSON(b.Bytes(), &x); err != nil {
		t.Fatal(err)
	}
	v, err := ast.InterfaceToValue(x)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// Issue #22, class 3: the shadow queue is bounded by the memory of the
// inputs it holds, not only by their count. 100 decisions with 60 KB
// bodies behind a candidate that never finishes: with a count of 1024 they
// all waited (about 0.9 MB each on the heap: 85 MiB); with QueueBytes 8 MiB
// about nine wait, the rest are skipped, and the heap grows by about the
// budget.
func TestShadowQueueIsBoundedByBytes(t *testing.T) {
	live := shadowEngine(t, `allow := true`)
	const budget = 8 << 20
	block := blockedEvaluator{release: make(chan struct{})}
	shadow, err := authz.NewShadow(live, authz.ShadowConfig{Candidate: block, Queue: 1024, QueueBytes: budget,
		Timeout: time.Minute, CPUShare: 1})
	if err != nil {
		t.Fatal(err)
	}
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before := ms.HeapAlloc
	const n = 100
	for i := range n {
		if _, err := shadow.Eval(t.Context(), bodyInput(t, 60<<10, i)); err != nil {
			t.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	grown := int64(ms.HeapAlloc) - int64(before)
	st := shadow.Stats()
	queued := n - st.Skipped
	close(block.release)
	if err := shadow.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d decisions with 60 KB bodies: %d queued, %d skipped, heap grew by %d MiB (budget %d MiB)",
		n, queued, st.Skipped, grown>>20, budget>>20)
	// 0.9 MB per input: the budget holds nine, plus the one being judged.
	if queued > 12 || queued < 5 {
		t.Errorf("%d inputs queued within %d MiB; want about nine", queued, budget>>20)
	}
	if grown > 3*budget {
		t.Errorf("the heap grew by %d MiB behind a queue bounded at %d MiB", grown>>20, budget>>20)
	}
	if _, err := authz.NewShadow(live, authz.ShadowConfig{Candidate: block, QueueBytes: -1}); err == nil {
		t.Error("a negative QueueBytes was accepted")
	}
}
