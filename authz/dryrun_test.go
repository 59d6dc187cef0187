package authz_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/regoguard/regoguard/authz"
	"github.com/regoguard/regoguard/policy"
	"github.com/regoguard/regoguard/prommetrics"
)

type failingEvaluator struct{}

func (failingEvaluator) Eval(context.Context, ast.Value) (policy.Decision, error) {
	return policy.Decision{}, errors.New("policy broke")
}

func TestDryRunLetsRefusalsThroughButStillAuthenticates(t *testing.T) {
	onlyGet := shadowEngine(t, `allow if input.method == "GET"`)
	for _, tc := range []struct {
		name      string
		eval      authz.Evaluator
		method    string
		user      string
		want      int
		wouldDeny float64
	}{
		{"allowed", onlyGet, "GET", "alice", 200, 0},
		{"refused by the policy", onlyGet, "DELETE", "alice", 200, 1},
		{"the policy cannot decide", failingEvaluator{}, "GET", "alice", 200, 1},
		{"no credential", onlyGet, "DELETE", "", 401, 0},
		{"bad credential", onlyGet, "GET", "!", 401, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			var logs bytes.Buffer
			mw, err := authz.New(authz.Config{Authenticator: testAuth, Evaluator: tc.eval, DryRun: true, Metrics: promMetrics(reg, prommetrics.MiddlewareOptions{DryRun: true}),
				Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(logs.String(), "DRY RUN") {
				t.Errorf("no loud warning at start: %s", logs.String())
			}
			reached := false
			h := mw.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				reached = true
				res, _ := authz.FromContext(r.Context())
				if res.Decision.Allow != (tc.wouldDeny == 0) {
					t.Errorf("the handler sees allow %v", res.Decision.Allow)
				}
			}))
			r := httptest.NewRequest(tc.method, "/api/a", nil)
			if tc.user != "" {
				r.Header.Set("X-Test-User", tc.user)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.want || reached != (tc.want == 200) {
				t.Errorf("status %d (handler reached %v), want %d", w.Code, reached, tc.want)
			}
			if v := plainCounter(t, reg, "regoguard_dry_run_would_refuse_total"); v != tc.wouldDeny {
				t.Errorf("regoguard_dry_run_would_refuse_total = %v, want %v", v, tc.wouldDeny)
			}
			if got := strings.Contains(logs.String(), "would have refused"); got != (tc.wouldDeny > 0) {
				t.Errorf("would-have-refused logged %v: %s", got, logs.String())
			}
		})
	}
}
