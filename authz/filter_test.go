package authz_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/authz"
	"github.com/regoguard/regoguard/filter"
	"github.com/regoguard/regoguard/policy"
)

const filterPolicy = `
package httpapi.authz
allow if input.user.sub in {"alice", "bob"}
`

const filterRules = `
package filters
include if input.docs.owner == input.user.sub
include if input.docs.public
`

// TestGuardFilter: a list handler asks the guard for the caller's filter in
// one call; the filter is the authenticated caller's, of the revision that
// authorized the request, and logged as a compile decision.
func TestGuardFilter(t *testing.T) {
	ctx := context.Background()
	keys, err := authn.NewAPIKeys(authn.APIKeyConfig{Keys: []authn.APIKey{
		{Key: "alice-key-0123456789", Subject: "alice"}, {Key: "bob-key-0123456789ab", Subject: "bob"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	engine, err := policy.New(ctx, policy.Config{}, policy.MustParse(map[string]string{"authz.rego": filterPolicy, "filters.rego": filterRules}, nil))
	if err != nil {
		t.Fatal(err)
	}
	fc, err := filter.New(engine, filter.Config{Query: "data.filters.include", Unknowns: []string{"input.docs"}})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	guard, err := authz.New(authz.Config{Authenticator: keys, Evaluator: engine, DecisionLogger: rec})
	if err != nil {
		t.Fatal(err)
	}
	list := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := guard.Filter(r, fc)
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		q, err := f.SQL(filter.PostgreSQL, filter.SQLOptions{Parameterized: true})
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, q.Where, q.Args)
	})
	h := guard.Handler(list)
	for key, want := range map[string]string{
		"alice-key-0123456789": "WHERE (docs.owner = $1 OR docs.public = $2)[alice true]",
		"bob-key-0123456789ab": "WHERE (docs.owner = $1 OR docs.public = $2)[bob true]",
	} {
		w := httptest.NewRecorder()
		r := httptest.NewRequest("GET", "/docs", nil)
		r.Header.Set("X-API-Key", key)
		h.ServeHTTP(w, r)
		if w.Code != 200 || w.Body.String() != want {
			t.Errorf("%d %q, want %q", w.Code, w.Body.String(), want)
		}
	}
	var compiles int
	for _, ev := range rec.events {
		if ev.Custom["type"] != "open-policy-agent/compile" {
			continue
		}
		compiles++
		if ev.Path != "data.filters.include" || ev.Revision != engine.Revision() || ev.Result == nil || ev.Custom["filter"] == "" || ev.ID == "" {
			t.Errorf("compile event %+v", ev)
		}
	}
	if compiles != 2 {
		t.Errorf("%d compile events, want 2", compiles)
	}

	// Not behind the middleware: no identity, no filter.
	if _, err := guard.Filter(httptest.NewRequest("GET", "/docs", nil), fc); !errors.Is(err, authz.ErrNotAuthorized) {
		t.Errorf("a request the middleware did not authorize: %v", err)
	}

	// A reload between the decision and the filter: refused, never the
	// other revision's filter.
	reload := guard.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := engine.Load(ctx, policy.MustParse(map[string]string{"authz.rego": filterPolicy,
			"filters.rego": "package filters\ninclude if input.docs.public\n"}, nil)); err != nil {
			t.Fatal(err)
		}
		_, err := guard.Filter(r, fc)
		if !errors.Is(err, filter.ErrRevisionChanged) {
			t.Errorf("after a reload: %v", err)
		}
	}))
	r := httptest.NewRequest("GET", "/docs", nil)
	r.Header.Set("X-API-Key", "alice-key-0123456789")
	reload.ServeHTTP(httptest.NewRecorder(), r)
}
