package authz_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"time"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/authz"
	"github.com/regoguard/regoguard/policy"
)

// outcomeCounter is an authz.Metrics for a metrics system of your own
// (package prommetrics is the one for Prometheus): it must be safe for
// concurrent use and must not block.
type outcomeCounter struct {
	mu          sync.Mutex
	requests    map[authz.Outcome]int
	wouldRefuse atomic.Int64
}

func (c *outcomeCounter) Request(o authz.Outcome) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.requests[o]++
}
func (c *outcomeCounter) Decision(authz.Outcome, time.Duration) {}
func (c *outcomeCounter) Fallback()                             {}
func (c *outcomeCounter) WouldRefuse()                          { c.wouldRefuse.Add(1) }

// Count requests by outcome, here with a dry run: what the policy refuses
// is let through and counted as "would have refused".
func ExampleMetrics() {
	engine, err := policy.New(context.Background(), policy.Config{}, policy.MustParse(map[string]string{
		"authz.rego": "package httpapi.authz\n\ndefault allow := false\n\nallow if input.method == \"GET\"\n",
	}, nil))
	if err != nil {
		log.Fatal(err)
	}
	counter := &outcomeCounter{requests: map[authz.Outcome]int{}}
	guard, err := authz.New(authz.Config{
		Authenticator: authn.None(slog.New(slog.DiscardHandler)),
		Evaluator:     engine,
		Metrics:       counter,
		DryRun:        true,
		Logger:        slog.New(slog.DiscardHandler),
	})
	if err != nil {
		log.Fatal(err)
	}
	h := guard.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	for _, method := range []string{"GET", "GET", "DELETE"} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(method, "/orders", nil))
		fmt.Println(method, w.Code)
	}
	for _, o := range authz.Outcomes() {
		if n := counter.requests[o]; n > 0 {
			fmt.Println(o, n)
		}
	}
	fmt.Println("would refuse", counter.wouldRefuse.Load())
	// Output:
	// GET 200
	// GET 200
	// DELETE 200
	// allow 2
	// deny 1
	// would refuse 1
}
