package authzen_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/authz"
	"github.com/regoguard/regoguard/authzen"
	"github.com/regoguard/regoguard/policy"
)

// An AuthZEN PDP: the PEP asks about three documents and stops at the
// first one alice may read.
func Example() {
	p, _ := policy.Parse(map[string]string{"p.rego": `package authzen
default decision := false
decision if input.resource.properties.owner == input.subject.id`}, nil)
	engine, _ := policy.New(context.Background(), policy.Config{Decision: "authzen/decision",
		ResultParser: authzen.ParseResult, Logger: slog.New(slog.DiscardHandler)}, p)
	keys, _ := authn.NewAPIKeys(authn.APIKeyConfig{Keys: []authn.APIKey{{Key: "pep-key-0123456789abcdef", Subject: "pep"}}})
	guard, _ := authz.New(authz.Config{Authenticator: keys, Evaluator: engine, Logger: slog.New(slog.DiscardHandler)})
	h, _ := authzen.New(authzen.Config{Guard: guard})

	r := httptest.NewRequest("POST", authzen.EvaluationsPath, strings.NewReader(`{
	  "subject": {"type": "user", "id": "alice"}, "action": {"name": "read"},
	  "options": {"evaluations_semantic": "permit_on_first_permit"},
	  "evaluations": [
	    {"resource": {"type": "doc", "id": "1", "properties": {"owner": "bob"}}},
	    {"resource": {"type": "doc", "id": "2", "properties": {"owner": "alice"}}},
	    {"resource": {"type": "doc", "id": "3", "properties": {"owner": "alice"}}}]}`))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("X-API-Key", "pep-key-0123456789abcdef")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	fmt.Print(w.Code, " ", w.Body.String())
	// Output:
	// 200 {"evaluations":[{"decision":false},{"decision":true}]}
}
