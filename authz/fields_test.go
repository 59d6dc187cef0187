package authz_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/regoguard/regoguard/authz"
	"github.com/regoguard/regoguard/policy"
)

func policyOf(t *testing.T, src string) *policy.Engine {
	t.Helper()
	e, err := policy.New(context.Background(), policy.Config{}, policy.MustParse(map[string]string{"p.rego": src}, nil))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// The input holds only what the policy reads: an enricher the policy never
// reads is not called and a body it never reads is not parsed. Logging the
// input (or shipping decision logs) brings every field back.
func TestInputHoldsOnlyWhatThePolicyReads(t *testing.T) {
	const methodOnly = "package httpapi.authz\nallow if input.method == \"POST\"\n"
	const readsAll = "package httpapi.authz\nallow if {\n\tinput.method == \"POST\"\n\tinput.tenant == \"acme\"\n\tinput.body.n == 1\n}\n"
	cases := []struct {
		name       string
		src        string
		logInput   bool
		wantCalls  int64
		wantStatus int
	}{
		{"policy reads method only", methodOnly, false, 0, 200},
		{"policy reads tenant and body", readsAll, false, 1, 400},
		{"input logged", methodOnly, true, 1, 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var calls atomic.Int64
			tenant := authz.Enricher{Key: "tenant", Func: func(*http.Request, []byte) (any, error) {
				calls.Add(1)
				return "acme", nil
			}}
			h := newMiddleware(t, authz.Config{Evaluator: policyOf(t, c.src), Body: true, LogInput: c.logInput,
				Enrichers: []authz.Enricher{tenant}})
			post := func(body string) response {
				r := request("POST", "/api/items", "alice")
				r.Header.Set("Content-Type", "application/json")
				r.Body = io.NopCloser(strings.NewReader(body))
				return do(t, h, r)
			}
			post(`{"n": 1}`)
			if n := calls.Load(); n != c.wantCalls {
				t.Errorf("enricher called %d times, want %d", n, c.wantCalls)
			}
			// Broken JSON is a 400 only when the body is parsed.
			if res := post(`{"n": `); res.status != c.wantStatus {
				t.Errorf("broken body: status %d, want %d (%v)", res.status, c.wantStatus, res.body)
			}
		})
	}
	// The same policy still decides on the fields it reads.
	h := newMiddleware(t, authz.Config{Evaluator: policyOf(t, readsAll), Body: true,
		Enrichers: []authz.Enricher{{Key: "tenant", Func: func(*http.Request, []byte) (any, error) { return "acme", nil }}}})
	r := request("POST", "/api/items", "alice")
	r.Header.Set("Content-Type", "application/json")
	r.Body = io.NopCloser(strings.NewReader(`{"n": 1}`))
	if res := do(t, h, r); res.status != 200 {
		t.Errorf("allowed request: %d %v", res.status, res.body)
	}
}
