package main

import (
	"log/slog"
	"net/http"
	"strings"

	"github.com/spf13/pflag"

	"github.com/regoguard/regoguard/authz"
	"github.com/regoguard/regoguard/bundles"
	"github.com/regoguard/regoguard/filter"
	"github.com/regoguard/regoguard/policy"
)

// compileAPIOptions put OPA's Compile API (POST /v1/compile/{path}) in
// serve, answered from the policy serve enforces (--policy or --bundle,
// always its current revision).
//
// It is never open to anonymous callers: --compile-api admin serves it on
// --admin-listen only (a listener for operators and sidecar neighbours, as
// OPA's own API usually is); --compile-api authenticated serves it on the
// proxy listener, in place of the upstream for /v1/compile/, to callers
// that serve's authenticators verified and that the policy allowed like
// any other request (it sees POST /v1/compile/filters/include and the
// caller). A request the middleware let through without both (an
// anonymous caller under --allow-anonymous, a refusal let through by
// --dry-run, a --skip path) is refused with 401 or 403.
type compileAPIOptions struct {
	compileAPI string
	// compileSource is the local policy engine, set by evaluator; nil
	// without a local policy.
	compileSource filter.Source
}

const (
	compileAPIOff           = "off"
	compileAPIAdmin         = "admin"
	compileAPIAuthenticated = "authenticated"
	compileAPIPrefix        = "/v1/compile/"
)

func (o *compileAPIOptions) register(fs *pflag.FlagSet) {
	fs.StringVar(&o.compileAPI, "compile-api", compileAPIOff, "serve OPA's Compile API (POST /v1/compile/{path}: SQL and UCAST data filters from the local policy): off, admin (on --admin-listen) or authenticated (on --listen, to callers authenticated and allowed by the policy)")
}

// checkCompileAPI checks the flag once the policy is known.
func (o *compileAPIOptions) checkCompileAPI(adminListen string) error {
	if err := oneOf("compile-api", o.compileAPI, compileAPIOff, compileAPIAdmin, compileAPIAuthenticated); err != nil {
		return err
	}
	switch {
	case o.compileAPI == compileAPIOff:
		return nil
	case o.compileSource == nil:
		return configErrorf("--compile-api needs a local policy (--policy or --bundle): the filters are compiled in-process, and --no-authz has none")
	case o.compileAPI == compileAPIAdmin && adminListen == "":
		return configErrorf("--compile-api admin needs --admin-listen")
	}
	return nil
}

// compileAdmin adds the Compile API to the admin listener's handler h under
// --compile-api admin.
func (o *compileAPIOptions) compileAdmin(h http.Handler, dl *bundles.DecisionLogger, logger *slog.Logger) http.Handler {
	if o.compileAPI != compileAPIAdmin {
		return h
	}
	mux := http.NewServeMux()
	mux.Handle(compileAPIPrefix, compileAPIHandler(newEngineFilters(o.compileSource), logger, compileLogger(dl)))
	mux.Handle("/", h)
	logger.Info("OPA's Compile API is served on the admin listener", "path", compileAPIPrefix+"{path}")
	return mux
}

// compileRoute answers /v1/compile/ itself, behind the middleware, under
// --compile-api authenticated; every other request goes to next.
func (o *compileAPIOptions) compileRoute(next http.Handler, dl *bundles.DecisionLogger, logger *slog.Logger) http.Handler {
	if o.compileAPI != compileAPIAuthenticated {
		return next
	}
	api := compileAPIHandler(newEngineFilters(o.compileSource), logger, compileLogger(dl))
	logger.Info("OPA's Compile API is served to authenticated callers the policy allows", "path", compileAPIPrefix+"{path}")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, compileAPIPrefix) {
			next.ServeHTTP(w, r)
			return
		}
		if err := compileCallerAllowed(r); err != nil {
			writeCompileError(w, err)
			return
		}
		api.ServeHTTP(w, r)
	})
}

// compileCallerAllowed fails closed: the middleware must have judged r,
// with an identity, and the policy must have allowed it.
func compileCallerAllowed(r *http.Request) error {
	res, ok := authz.FromContext(r.Context())
	switch {
	case !ok || res.Identity == nil:
		return &compileAPIError{Status: http.StatusUnauthorized, Code: "unauthorized", Message: "the Compile API needs an authenticated caller"}
	case !res.Decision.Allow:
		return &compileAPIError{Status: http.StatusForbidden, Code: "unauthorized", Message: "request rejected by administrative policy"}
	}
	return nil
}

// compileLogger is dl as a policy.DecisionLogger, nil (not a typed nil)
// without one.
func compileLogger(dl *bundles.DecisionLogger) policy.DecisionLogger {
	if dl == nil {
		return nil
	}
	return dl
}
