package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"google.golang.org/grpc"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/authz"
	"github.com/regoguard/regoguard/authzen"
	"github.com/regoguard/regoguard/extauthz"
	"github.com/regoguard/regoguard/extauthzgrpc"
	"github.com/regoguard/regoguard/forwardauth"
)

// frontOptions are the flags of the decision-service modes, where serve
// answers another proxy's or application's questions instead of proxying:
// forward-auth (nginx auth_request, Traefik, Caddy, Envoy's HTTP
// ext_authz), Envoy's gRPC ext_authz and AuthZEN.
type frontOptions struct {
	forwardAuth         bool
	forwardAuthIdentity bool
	extAuthzListen      string
	authzen             bool
	authzenBaseURL      string
}

func (o *frontOptions) register(fs *pflag.FlagSet) {
	fs.BoolVar(&o.forwardAuth, "forward-auth", false, "answer forward-auth requests on --listen instead of proxying (nginx auth_request, Traefik forwardAuth, Caddy forward_auth; with --input-layout envoy, Envoy's HTTP ext_authz): each is judged as the original request the proxy describes, believed only from --trusted-proxy addresses")
	fs.BoolVar(&o.forwardAuthIdentity, "forward-auth-identity-headers", false, "with --forward-auth: believe identity headers (X-Forwarded-User, X-Auth-Request-*) from --trusted-proxy; only when that proxy sets them itself, since nginx relays the client's own")
	fs.StringVar(&o.extAuthzListen, "ext-authz-listen", "", "serve Envoy's ext_authz gRPC API (envoy.service.auth.v3.Authorization/Check) on this address, with --input-layout envoy")
	fs.BoolVar(&o.authzen, "authzen", false, "serve the AuthZEN 1.0 Authorization API on --listen (POST /access/v1/evaluation(s), GET /.well-known/authzen-configuration) instead of proxying; callers authenticate with the authenticators given")
	fs.StringVar(&o.authzenBaseURL, "authzen-base-url", "", "with --authzen: the PDP's public URL in its metadata (default: the scheme and host each request came to)")
}

// decisionService reports whether serve answers decisions instead of
// proxying.
func (o *serveOptions) decisionService() bool {
	return o.forwardAuth || o.extAuthzListen != "" || o.authzen
}

// prepareFrontEnds checks the mode's flags and sets what the mode decides
// for the rest: the decision path and the reading of decisions. fs tells
// which flags were given.
func (o *serveOptions) prepareFrontEnds(fs *pflag.FlagSet) error {
	envoy := o.layout == string(authz.LayoutEnvoy)
	switch {
	case !o.decisionService():
		if envoy {
			return configErrorf("--input-layout envoy is for --forward-auth and --ext-authz-listen")
		}
		return nil
	case o.upstream != "":
		return configErrorf("--upstream proxies requests; --forward-auth, --ext-authz-listen and --authzen answer decisions instead: give one or the other")
	case o.authzen && (o.forwardAuth || o.extAuthzListen != ""):
		return configErrorf("--authzen serves AuthZEN on --listen: it cannot be combined with --forward-auth or --ext-authz-listen")
	case o.extAuthzListen != "" && !envoy:
		return configErrorf("--ext-authz-listen answers with opa-envoy-plugin's input and decisions: add --input-layout envoy")
	case o.forwardAuth && len(o.trustedProxy) == 0:
		return configErrorf("--forward-auth needs --trusted-proxy: the address of the proxy whose X-Original-*/X-Forwarded-* headers describe the original request")
	case o.forwardAuth && !envoy && o.body:
		return configErrorf("--forward-auth: the proxies do not send the original body; a policy reading input.body would judge it as absent (drop --body)")
	case o.forwardAuthIdentity && !o.forwardAuth:
		return configErrorf("--forward-auth-identity-headers goes with --forward-auth")
	}
	if o.noAuthz {
		return configErrorf("--no-authz: a decision service without a policy decides nothing")
	}
	// In forward-auth, --trusted-proxy says whose description of the
	// original request is believed; the identity headers the proxy relays
	// are the client's unless said otherwise.
	o.proxyIdentityOff = o.forwardAuth && !o.forwardAuthIdentity
	switch {
	case envoy:
		if !fs.Changed("decision") {
			o.decision = extauthz.DefaultDecision
		}
		o.resultParser = extauthz.ParseResult
	case o.authzen:
		o.resultParser = authzen.ParseResult
	}
	return nil
}

// frontHandler is what serves --listen in a decision-service mode (nil
// with --ext-authz-listen alone), and the gRPC server of
// --ext-authz-listen (nil without it).
func (o *serveOptions) frontHandler(guard *authz.Middleware, logger *slog.Logger) (http.Handler, *grpcFront, error) {
	var h http.Handler
	switch {
	case o.forwardAuth:
		fwd := authn.ForwardOptions{AllowUnverifiedEmail: o.allowUnverifiedEmail}
		cfg := forwardauth.Config{Guard: guard, TrustedProxies: o.trustedProxy, ForwardOptions: fwd,
			DirectOnly: []string{authn.DefaultLoginPath, authn.DefaultCallbackPath, authn.DefaultLogoutPath, "/saml/"}}
		if o.layout == string(authz.LayoutEnvoy) {
			cfg.Allowed = envoyAllowed(fwd)
		}
		fa, err := forwardauth.New(cfg)
		if err != nil {
			return nil, nil, configErrorf("--forward-auth: %w", err)
		}
		h = fa
	case o.authzen:
		az, err := authzen.New(authzen.Config{Guard: guard, BaseURL: o.authzenBaseURL})
		if err != nil {
			return nil, nil, err
		}
		h = az
	}
	if o.extAuthzListen == "" {
		return h, nil, nil
	}
	srv, err := extauthzgrpc.New(extauthzgrpc.Config{Guard: guard, ForwardOptions: authn.ForwardOptions{AllowUnverifiedEmail: o.allowUnverifiedEmail}})
	if err != nil {
		return nil, nil, err
	}
	ln, err := net.Listen("tcp", o.extAuthzListen)
	if err != nil {
		return nil, nil, fmt.Errorf("--ext-authz-listen: %w", err)
	}
	g := grpc.NewServer(grpc.ConnectionTimeout(o.headerTimeout))
	srv.Register(g)
	logger.Info("Envoy ext_authz gRPC listening", "addr", ln.Addr().String(), "decision", o.decision)
	return h, &grpcFront{srv: g, ln: ln}, nil
}

// envoyAllowed answers an allowed Envoy HTTP ext_authz check: 200 with the
// policy's headers (for allowed_upstream_headers), its
// response_headers_to_add (allowed_client_headers_on_success), its
// request_headers_to_remove in x-envoy-auth-headers-to-remove, and the
// identity headers.
func envoyAllowed(fwd authn.ForwardOptions) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, _ := authz.FromContext(r.Context())
		result, err := extauthz.ReadResult(res.Decision)
		if err != nil {
			http.Error(w, "the decision cannot be applied", http.StatusServiceUnavailable)
			return
		}
		if res.Identity != nil {
			h, err := authn.ForwardedIdentity(res.Identity, fwd)
			if err != nil {
				http.Error(w, "the caller's identity cannot be passed on faithfully", http.StatusForbidden)
				return
			}
			for k, v := range h {
				w.Header()[k] = v
			}
		}
		for _, m := range []http.Header{result.Headers, result.ResponseHeadersToAdd} {
			for k, vs := range m {
				for _, v := range vs {
					w.Header().Add(k, v)
				}
			}
		}
		for _, k := range result.RequestHeadersToRemove {
			w.Header().Add("X-Envoy-Auth-Headers-To-Remove", k)
		}
		w.Header().Set("X-Decision-Id", res.Decision.ID)
		w.WriteHeader(http.StatusOK)
	})
}

// grpcFront is the gRPC server of --ext-authz-listen.
type grpcFront struct {
	srv *grpc.Server
	ln  net.Listener
}

// serve serves until ctx ends, then stops gracefully within grace.
func (g *grpcFront) serve(ctx context.Context, grace time.Duration) error {
	errc := make(chan error, 1)
	go func() { errc <- g.srv.Serve(g.ln) }()
	select {
	case err := <-errc:
		if errors.Is(err, grpc.ErrServerStopped) {
			return nil
		}
		return fmt.Errorf("ext_authz gRPC server: %w", err)
	case <-ctx.Done():
	}
	done := make(chan struct{})
	go func() { g.srv.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
		g.srv.Stop()
	}
	return nil
}

// modeLabel names the decision-service modes serve runs.
func (o *serveOptions) modeLabel() string {
	var modes []string
	if o.forwardAuth {
		modes = append(modes, "forward-auth")
	}
	if o.extAuthzListen != "" {
		modes = append(modes, "ext_authz gRPC")
	}
	if o.authzen {
		modes = append(modes, "AuthZEN")
	}
	return strings.Join(modes, ", ")
}

// serveWithGRPC serves the HTTP servers and the ext_authz gRPC server
// until ctx ends or one of them fails.
func serveWithGRPC(ctx context.Context, servers []*namedServer, front *grpcFront, grace time.Duration, logger *slog.Logger) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 2)
	go func() { errc <- front.serve(ctx, grace); cancel() }()
	go func() {
		if len(servers) == 0 {
			<-ctx.Done()
			errc <- nil
			return
		}
		errc <- serveUntilDone(ctx, servers, grace, logger)
		cancel()
	}()
	return errors.Join(<-errc, <-errc)
}
