package authz_test

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/regoguard/regoguard/authz"
)

// The live and the candidate policies read the same input at the same time,
// from different goroutines: -race must find nothing, and the same policy
// never disagrees with itself.
func TestShadowConcurrentSameInput(t *testing.T) {
	rule := `allow if {
	input.method == "GET"
	"staff" in input.user.claims.groups
	startswith(input.path, "/api")
}`
	live, candidate := shadowEngine(t, rule), shadowEngine(t, rule)
	shadow, err := authz.NewShadow(live, authz.ShadowConfig{Candidate: candidate, Workers: 2, Queue: 100000})
	if err != nil {
		t.Fatal(err)
	}
	mw, err := authz.New(authz.Config{Authenticator: testAuth, Evaluator: shadow})
	if err != nil {
		t.Fatal(err)
	}
	h := mw.Handler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 300 {
				r := httptest.NewRequest("GET", "/api/x?y=1", nil)
				r.Header.Set("X-Test-User", "alice;staff")
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if w.Code != 200 {
					t.Errorf("status %d", w.Code)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := shadow.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if st := shadow.Stats(); st.Agree != 1200 {
		t.Errorf("stats %+v, want 1200 agreements", st)
	}
}
