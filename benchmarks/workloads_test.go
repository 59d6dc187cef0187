package benchmarks

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/regoguard/regoguard/authn"
)

// A workload is a reference policy, the data it reads, and one request that
// it allows after doing its full work.
type workload struct {
	name    string
	data    func() map[string]any // generated, so that no large file is kept in the repository
	request func() *http.Request
	user    *authn.Identity
}

var workloads = []workload{
	{
		name:    "small",
		request: func() *http.Request { return httptest.NewRequest("GET", "/orders/42", nil) },
		user:    &authn.Identity{Subject: "alice", Method: authn.MethodOIDC, Claims: map[string]any{"groups": []any{"staff"}}},
	},
	{
		name: "rbac",
		data: rbacData,
		// role19 holds the grant that matches, last of 200: the scan is complete.
		request: func() *http.Request { return httptest.NewRequest("POST", "/api/v1/svc19/items/7", nil) },
		user: &authn.Identity{Subject: "bob", Method: authn.MethodOIDC, Claims: map[string]any{
			"roles": []any{"role3", "role11", "role19"}, "email": "bob@example.com",
		}},
	},
	{
		name:    "abac",
		data:    abacData,
		request: func() *http.Request { return httptest.NewRequest("PUT", "/records/r777", nil) },
		user: &authn.Identity{Subject: "carol", Method: authn.MethodOIDC, Claims: map[string]any{
			"department": "d7", "clearance": 4, "position": "editor", "suspended": false,
		}},
	},
	{
		name:    "largedata",
		data:    largeData,
		request: func() *http.Request { return httptest.NewRequest("GET", "/documents/doc9876", nil) },
		user:    &authn.Identity{Subject: "user76", Method: authn.MethodOIDC, Claims: map[string]any{}},
	},
}

// rbacData is 20 roles x 10 grants: role N may use method M on
// /api/v1/svcN/<resource>/*.
func rbacData() map[string]any {
	methods := []string{"GET", "POST", "PUT", "DELETE", "PATCH"}
	var grants []any
	for role := range 20 {
		for g := range 10 {
			grants = append(grants, map[string]any{
				"role":   fmt.Sprintf("role%d", role),
				"method": methods[g%len(methods)],
				"path":   fmt.Sprintf("/api/v1/svc%d/%s/*", role, []string{"items", "orders"}[g/5]),
			})
		}
	}
	return map[string]any{"rbac": map[string]any{"grants": grants}}
}

func abacData() map[string]any {
	resources := map[string]any{}
	for i := range 1000 {
		resources[fmt.Sprintf("r%d", i)] = map[string]any{
			"department": fmt.Sprintf("d%d", i%10), "level": i % 5, "public": i%100 == 0,
		}
	}
	return map[string]any{"abac": map[string]any{
		"resources": resources,
		"actions": map[string]any{
			"viewer": []any{"GET"}, "editor": []any{"GET", "PUT", "PATCH"}, "admin": []any{"GET", "PUT", "PATCH", "DELETE"},
		},
	}}
}

// largeData is 10 000 documents, each readable by its owner and 5 readers.
func largeData() map[string]any {
	docs := make(map[string]any, 10000)
	for i := range 10000 {
		readers := make([]any, 5)
		for j := range readers {
			readers[j] = fmt.Sprintf("user%d", (i+j*13)%100)
		}
		docs[fmt.Sprintf("doc%d", i)] = map[string]any{"owner": fmt.Sprintf("user%d", i%100), "readers": readers}
	}
	return map[string]any{"acl": map[string]any{"documents": docs}}
}

// policyDir writes the workload's policy and generated data into a fresh
// directory, read the same way by the in-process engine and by opa run.
func (w workload) policyDir(tb testing.TB) string {
	tb.Helper()
	dir := tb.TempDir()
	src, err := os.ReadFile(filepath.Join("testdata", w.name, "authz.rego"))
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "authz.rego"), src, 0o600); err != nil {
		tb.Fatal(err)
	}
	if w.data != nil {
		data, err := json.Marshal(w.data())
		if err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "data.json"), data, 0o600); err != nil {
			tb.Fatal(err)
		}
	}
	return dir
}
