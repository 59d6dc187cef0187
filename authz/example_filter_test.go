package authz_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/authz"
	"github.com/regoguard/regoguard/filter"
	"github.com/regoguard/regoguard/policy"
)

// A list handler behind the middleware asks for the caller's filter and
// runs it with database/sql (here only printed).
func ExampleMiddleware_Filter() {
	ctx := context.Background()
	engine, err := policy.New(ctx, policy.Config{Logger: slog.New(slog.DiscardHandler)}, policy.MustParse(map[string]string{
		"authz.rego":   "package httpapi.authz\n\nallow if input.user.authenticated\n",
		"filters.rego": "package filters\n\ninclude if input.docs.owner == input.user.sub\ninclude if input.docs.public\n",
	}, nil))
	if err != nil {
		log.Fatal(err)
	}
	docs, err := filter.New(engine, filter.Config{Query: "data.filters.include", Unknowns: []string{"input.docs"}})
	if err != nil {
		log.Fatal(err)
	}
	keys, err := authn.NewAPIKeys(authn.APIKeyConfig{Keys: []authn.APIKey{{Key: "alice-key-0123456789", Subject: "alice"}}})
	if err != nil {
		log.Fatal(err)
	}
	guard, err := authz.New(authz.Config{Authenticator: keys, Evaluator: engine, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		log.Fatal(err)
	}
	list := func(w http.ResponseWriter, r *http.Request) {
		f, err := guard.Filter(r, docs)
		if err != nil {
			http.Error(w, "no filter", http.StatusServiceUnavailable)
			return
		}
		q, err := f.SQL(filter.PostgreSQL, filter.SQLOptions{Parameterized: true})
		if err != nil {
			http.Error(w, "no filter", http.StatusInternalServerError)
			return
		}
		// rows, err := db.QueryContext(r.Context(), "SELECT id, title FROM docs "+q.Where+" LIMIT 50", q.Args...)
		fmt.Println(q.Where, q.Args)
	}
	r := httptest.NewRequest("GET", "/docs", nil)
	r.Header.Set("X-API-Key", "alice-key-0123456789")
	guard.Handler(http.HandlerFunc(list)).ServeHTTP(httptest.NewRecorder(), r)
	// Output:
	// WHERE (docs.owner = $1 OR docs.public = $2) [alice true]
}
