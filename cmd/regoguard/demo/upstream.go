package demo

import (
	"encoding/json"
	"net/http"

	"github.com/regoguard/regoguard/authz"
)

// Upstream is the demo's built-in protected service: it answers every
// request it is let through with the request, the caller's identity and the
// policy's decision, as JSON.
func Upstream() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, _ := authz.FromContext(r.Context())
		answer := map[string]any{
			"request":  map[string]any{"method": r.Method, "path": r.URL.Path, "query": r.URL.Query()},
			"identity": nil,
			"decision": map[string]any{"allow": res.Decision.Allow, "id": res.Decision.ID, "revision": res.Decision.Revision},
		}
		if id := res.Identity; id != nil {
			answer["identity"] = map[string]any{"sub": id.Subject, "method": id.Method, "claims": id.Claims}
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(answer)
	})
}
