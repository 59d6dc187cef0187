package authz

import (
	"errors"
	"net/http"

	"github.com/regoguard/regoguard/filter"
)

// Filter returns the data filter of c for the request r, for a list
// handler behind the middleware: compiled for the identity the middleware
// authenticated and with the input it built for r, with the policy
// revision that authorized r (or an error wrapping filter.ErrRevisionChanged
// if a new one was loaded since), and logged as a decision in OPA's
// Compile API format with the filter in the event. A request that did not
// pass through the middleware's authorization is an error: no filter is
// ever made without an identity the middleware verified.
func (m *Middleware) Filter(r *http.Request, c *filter.Compiler) (*filter.Filter, error) {
	return nil, errors.New("authz: Filter not implemented yet")
}
