package authz

import (
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/policy"
)

func newDryRunCounter(reg prometheus.Registerer) (prometheus.Counter, error) {
	c := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "regoguard_dry_run_would_refuse_total",
		Help: "Requests let through by --dry-run that the policy refused or could not decide on.",
	})
	if err := reg.Register(c); err != nil {
		return nil, fmt.Errorf("authz: registering dry-run metrics: %w", err)
	}
	return c, nil
}

// letThrough logs and counts a refusal that Config.DryRun sets aside. The
// status is the one the request would have been answered with.
func (m *Middleware) letThrough(r *http.Request, id *authn.Identity, d policy.Decision) {
	if m.wouldRefuse != nil {
		m.wouldRefuse.Inc()
	}
	status := orDefault(d.Status, m.denyStatus)
	if id == nil && d.Status == 0 {
		status = http.StatusUnauthorized
	}
	m.logger.InfoContext(r.Context(), "dry run: would have refused", "decision_id", d.ID, "status", status,
		"reason", d.Reason, "method", r.Method, "path", r.URL.Path, "user", id.String(), "revision", d.Revision)
}
