package authz

import (
	"context"
	"io"
	"log/slog"
	"net/http"

	"github.com/regoguard/regoguard/authn"
)

// NewContext returns a copy of ctx that carries res, for [FromContext]: what
// a front end other than the HTTP middleware uses to hand the caller's
// identity and decision to its handler.
func NewContext(ctx context.Context, res Result) context.Context {
	return withResult(ctx, res)
}

// ForwardIdentity returns a handler that passes the caller's identity on to
// next in the headers an upstream reads (authn.ForwardedIdentity:
// X-Auth-Request-User, -Email and -Groups, in exactly the form
// authn.ProxyHeaders reads them back), for a reverse proxy behind a
// [Middleware]: wrap the proxy with it, then the proxy with the middleware.
// Every identity header a client or another proxy sent, in any spelling,
// is removed first (the middleware has removed them already; this keeps
// the step safe on its own). A request the middleware let through without
// an identity (an exempt path, an anonymous caller) goes on without any.
//
// An identity that no header can carry faithfully (a group holding the
// "," separator, control characters; see authn.ErrUnrepresentable) is
// refused with 403 and logged to logger (slog.Default() when nil): it
// would read back as another identity upstream. The caller's request is
// never written to: next gets a copy.
func ForwardIdentity(next http.Handler, opts authn.ForwardOptions, logger *slog.Logger) http.Handler {
	if logger == nil {
		logger = slog.Default()
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := identityHeaders.Without(r.Header)
		res, ok := FromContext(r.Context())
		if !ok || res.Identity == nil {
			next.ServeHTTP(w, withHeader(r, h))
			return
		}
		fwd, err := authn.ForwardedIdentity(res.Identity, opts)
		if err != nil {
			logger.WarnContext(r.Context(), "request refused: its identity cannot be passed on in headers", "error", err,
				"subject", res.Identity.String(), "path", r.URL.Path)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			_, _ = io.WriteString(w, `{"error":"forbidden","message":"the caller's identity cannot be passed on faithfully"}`+"\n")
			return
		}
		if len(fwd) > 0 {
			if len(h) == len(r.Header) {
				h = h.Clone() // Without returned r.Header itself
			}
			for k, v := range fwd {
				h[k] = v
			}
		}
		r2 := new(http.Request)
		*r2 = *r
		r2.Header = h
		next.ServeHTTP(w, r2)
	})
}
