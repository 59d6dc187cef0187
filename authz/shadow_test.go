package authz_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/regoguard/regoguard/authz"
	"github.com/regoguard/regoguard/policy"
	"github.com/regoguard/regoguard/prommetrics"
)

// shadowEngine compiles a policy of one allow rule.
func shadowEngine(t testing.TB, rule string) *policy.Engine {
	t.Helper()
	p := policy.MustParse(map[string]string{"p.rego": "package httpapi.authz\n\n" + rule}, nil)
	e, err := policy.New(context.Background(), policy.Config{}, p)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestShadowCountsDisagreementsAndNeverChangesTheAnswer(t *testing.T) {
	// Live: GET is allowed. Candidate: only /public is allowed, and DELETE
	// of anything too. So GET /api → allow→deny, DELETE /api → deny→allow.
	live := shadowEngine(t, `allow if input.method == "GET"`)
	candidate := shadowEngine(t, `allow if startswith(input.path, "/public")
allow if input.method == "DELETE"`)
	reg := prometheus.NewRegistry()
	dl := &recorder{}
	shadow, err := authz.NewShadow(live, authz.ShadowConfig{Candidate: candidate, DecisionLogger: dl})
	if err != nil {
		t.Fatal(err)
	}
	reg.MustRegister(prommetrics.NewShadowCollector(shadow))
	mw, err := authz.New(authz.Config{Authenticator: testAuth, Evaluator: shadow})
	if err != nil {
		t.Fatal(err)
	}
	h := mw.Handler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
	requests := []struct {
		method, path string
		want         int
	}{
		{"GET", "/public/a", 200}, // agree (allow)
		{"GET", "/api/a", 200},    // allow→deny: still allowed
		{"DELETE", "/api/a", 403}, // deny→allow: still refused
		{"POST", "/api/a", 403},   // agree (deny)
		{"GET", "/api/b", 200},    // allow→deny
	}
	for _, rq := range requests {
		r := httptest.NewRequest(rq.method, rq.path, nil)
		r.Header.Set("X-Test-User", "alice")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != rq.want {
			t.Errorf("%s %s: status %d, want %d (the live policy's answer)", rq.method, rq.path, w.Code, rq.want)
		}
	}
	if err := shadow.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	got := shadow.Stats()
	want := authz.ShadowStats{Agree: 2, AllowToDeny: 2, DenyToAllow: 1}
	if got != want {
		t.Errorf("stats %+v, want %+v", got, want)
	}
	for result, n := range map[string]float64{"agree": 2, "allow_to_deny": 2, "deny_to_allow": 1, "candidate_error": 0} {
		if v := counterValue(t, reg, "regoguard_shadow_decisions_total", "result", result); v != n {
			t.Errorf("regoguard_shadow_decisions_total{result=%q} = %v, want %v", result, v, n)
		}
	}
	if len(dl.events) != 3 {
		t.Fatalf("%d events logged, want 3 (one per disagreement)", len(dl.events))
	}
	for _, ev := range dl.events {
		sh, ok := ev.Custom[authz.ShadowCustomKey].(map[string]any)
		if !ok {
			t.Fatalf("event %s has no %s: %+v", ev.ID, authz.ShadowCustomKey, ev.Custom)
		}
		if ev.Revision != candidate.Revision() || sh["live_revision"] != live.Revision() {
			t.Errorf("event revisions %q (candidate) and %v (live), want %q and %q", ev.Revision, sh["live_revision"], candidate.Revision(), live.Revision())
		}
		if ev.Input == nil || ev.Path != "data.httpapi.authz" {
			t.Errorf("event input %v, path %q", ev.Input, ev.Path)
		}
		liveAllow := sh["live_result"].(map[string]any)["allow"] == true
		candAllow := false
		if m, ok := ev.Result.(map[string]any); ok {
			candAllow = m["allow"] == true
		}
		if liveAllow == candAllow {
			t.Errorf("a logged disagreement whose results agree: live %v, candidate %v", sh["live_result"], ev.Result)
		}
	}
}

func counterValue(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// slowEvaluator takes its time, as a candidate policy that is too slow.
type slowEvaluator struct{ d time.Duration }

func (s slowEvaluator) Eval(ctx context.Context, _ ast.Value) (policy.Decision, error) {
	select {
	case <-time.After(s.d):
		return policy.Decision{Allow: true}, nil
	case <-ctx.Done():
		return policy.Decision{}, ctx.Err()
	}
}

func TestShadowSlowCandidateNeitherDelaysNorGrowsWithoutBound(t *testing.T) {
	live := shadowEngine(t, `allow := true`)
	reg := prometheus.NewRegistry()
	shadow, err := authz.NewShadow(live, authz.ShadowConfig{
		Candidate: slowEvaluator{d: time.Second}, Queue: 4, Timeout: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	reg.MustRegister(prommetrics.NewShadowCollector(shadow))
	input := ast.MustParseTerm(`{"method": "GET"}`).Value
	start := time.Now()
	for range 100 {
		d, err := shadow.Eval(t.Context(), input)
		if err != nil || !d.Allow {
			t.Fatalf("live decision %+v, %v", d, err)
		}
	}
	if took := time.Since(start); took > 500*time.Millisecond {
		t.Errorf("100 decisions took %v behind a slow candidate: the candidate is on the request path", took)
	}
	if err := shadow.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	st := shadow.Stats()
	// At most the queue plus the one being judged were compared; the rest
	// were skipped, and the ones compared timed out as candidate errors.
	if st.Skipped < 90 || st.CandidateErrors+st.Skipped != 100 || st.Agree != 0 {
		t.Errorf("stats %+v: want ≥90 skipped and the rest candidate errors (timeouts)", st)
	}
	if v := plainCounter(t, reg, "regoguard_shadow_skipped_total"); v != float64(st.Skipped) {
		t.Errorf("regoguard_shadow_skipped_total = %v, want %d", v, st.Skipped)
	}
}

func plainCounter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return -1
}

func TestShadowSamples(t *testing.T) {
	live := shadowEngine(t, `allow := true`)
	shadow, err := authz.NewShadow(live, authz.ShadowConfig{Candidate: live, Sample: 0.1, Queue: 10000})
	if err != nil {
		t.Fatal(err)
	}
	input := ast.MustParseTerm(`{"method": "GET"}`).Value
	for range 2000 {
		if _, err := shadow.Eval(t.Context(), input); err != nil {
			t.Fatal(err)
		}
	}
	if err := shadow.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	// 10 % of 2000 is 200; a binomial's standard deviation here is ~13.
	if n := shadow.Stats().Agree; n < 120 || n > 280 {
		t.Errorf("%d of 2000 decisions compared at a 10%% sample", n)
	}
	if _, err := authz.NewShadow(live, authz.ShadowConfig{Candidate: live, Sample: 1.5}); err == nil || !strings.Contains(err.Error(), "fraction") {
		t.Errorf("sample 1.5: error %v", err)
	}
}
