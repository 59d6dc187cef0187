package authz

import (
	"cmp"
	"net/http"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/policy"
)

// letThrough logs and counts a refusal that Config.DryRun sets aside. The
// status is the one the request would have been answered with.
func (m *Middleware) letThrough(r *http.Request, id *authn.Identity, d policy.Decision) {
	if mt := m.pipe.Metrics(); mt != nil {
		mt.WouldRefuse()
	}
	status := cmp.Or(d.Status, m.denyStatus)
	if id == nil && d.Status == 0 {
		status = http.StatusUnauthorized
	}
	m.logger.InfoContext(r.Context(), "dry run: would have refused", "decision_id", d.ID, "status", status,
		"reason", d.Reason, "method", r.Method, "path", r.URL.Path, "user", id.String(), "revision", d.Revision)
}
