package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/http/pprof"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/authz"
	"github.com/regoguard/regoguard/bundles"
	"github.com/regoguard/regoguard/cmd/regoguard/demo"
	"github.com/regoguard/regoguard/policy"
	"github.com/regoguard/regoguard/prommetrics"
)

type serveOptions struct {
	policyOptions
	authOptions
	bundleOptions
	rolloutOptions
	compileAPIOptions
	frontOptions
	listen          string
	upstream        string
	adminListen     string
	watch           bool
	noAuthz         bool
	logLevel        string
	logFormat       string
	logDecisions    bool
	accessLog       bool
	pprof           bool
	readTimeout     time.Duration
	headerTimeout   time.Duration
	maxHeaderBytes  int
	writeTimeout    time.Duration
	shutdownTimeout time.Duration
	gcFloorMiB      int
	// forwardCredentials passes the credentials regoguard consumed on to
	// the upstream.
	forwardCredentials bool
}

func newServeCommand() *cobra.Command {
	o := &serveOptions{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run a reverse proxy that authenticates and authorizes every request",
		Long: `serve runs a reverse proxy (a sidecar) in front of --upstream: every request is
authenticated, judged by the policy, and only then passed on, with the caller's
identity in X-Auth-Request-User, -Email and -Groups (incoming copies of those
headers, in any spelling, are always removed), and without the credentials it
verified (unless --forward-credentials).

The policy is evaluated in-process (--policy). --opa-url alone asks a remote
OPA server for every decision, as fastapi-opa does; with --policy it is the
fallback while the local policy cannot decide.

With no flags at all, serve runs the demo: an embedded example policy, demo
API keys and a built-in upstream that answers with what it was told.`,
		Example: `  regoguard serve                                   # the demo
  regoguard serve --upstream http://127.0.0.1:3000 --policy policy/ --api-keys keys.yaml
  regoguard serve --upstream http://127.0.0.1:3000 --opa-url http://127.0.0.1:8181 --input-layout fastapi-opa \
      --oidc-well-known https://idp.example/.well-known/openid-configuration --oidc-client-id app
  REGOGUARD_UPSTREAM=http://127.0.0.1:3000 regoguard serve --config regoguard.yaml
  regoguard serve --upstream http://127.0.0.1:3000 --policy policy/ --api-keys keys.yaml \
      --shadow-policy new-policy/ --shadow-sample 0.1 --decision-log-file decisions.jsonl`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.prepareFrontEnds(cmd.Flags()); err != nil {
				return err
			}
			return o.run(cmd.Context(), cmd.OutOrStdout())
		},
	}
	fs := cmd.Flags()
	o.policyOptions.register(fs)
	o.authOptions.register(fs)
	o.bundleOptions.register(fs)
	o.rolloutOptions.register(fs)
	o.compileAPIOptions.register(fs)
	o.frontOptions.register(fs)
	fs.StringVar(&o.listen, "listen", "127.0.0.1:8080", "address the proxy listens on")
	fs.StringVar(&o.upstream, "upstream", "", "URL of the protected service")
	fs.StringVar(&o.adminListen, "admin-listen", "", "address for /healthz, /readyz and /metrics (none when empty)")
	fs.BoolVar(&o.watch, "watch", false, "reload --policy files when they change")
	fs.BoolVar(&o.noAuthz, "no-authz", false, "authenticate only: let every authenticated request through without asking a policy (fastapi-opa's authentication-only mode)")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&o.logFormat, "log-format", "text", "text or json")
	fs.BoolVar(&o.pprof, "admin-pprof", false, "serve Go's profiler at /debug/pprof/ on --admin-listen, for latency tuning")
	fs.BoolVar(&o.logDecisions, "log-decisions", false, "log one line per decision at info level (otherwise at debug)")
	fs.BoolVar(&o.accessLog, "access-log", false, "log one line per request: status, method, path, user, decision ID, latency, upstream status (never a credential)")
	fs.DurationVar(&o.headerTimeout, "read-header-timeout", 10*time.Second, "longest time to read a request's headers (slow clients are cut off)")
	fs.IntVar(&o.maxHeaderBytes, "max-header-bytes", 64<<10, "largest request header block; larger ones get 431")
	fs.DurationVar(&o.readTimeout, "read-timeout", time.Minute, "longest time to read a request, body included")
	fs.DurationVar(&o.writeTimeout, "write-timeout", 0, "longest time to write a response (0: none, for streaming upstreams)")
	fs.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 20*time.Second, "how long in-flight requests may finish after SIGTERM")
	fs.BoolVar(&o.forwardCredentials, "forward-credentials", false, "pass the credentials regoguard verified (Authorization, the API-key header, a trusted proxy's access-token headers) on to the upstream; by default they are removed")
	fs.IntVar(&o.gcFloorMiB, "gc-heap-floor", 32, "MiB the heap may grow to before Go's garbage collector runs (0: Go's default; ignored when GOGC is set)")
	cmd = withLayers(cmd)
	groupedUsage(cmd, serveFlagGroups)
	return cmd
}

// demoMode reports whether serve was started with nothing to protect and no
// policy: it then runs the README's demo.
func (o *serveOptions) demoMode() bool {
	return o.upstream == "" && len(o.policies) == 0 && len(o.bundles) == 0 && o.opaURL == "" && !o.authConfigured()
}

func (o *serveOptions) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return nil, configErrorf("--log-level: %q is not one of debug, info, warn, error", o.logLevel)
	}
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: redactAttr}
	switch o.logFormat {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, configErrorf("--log-format: %q is not one of text, json", o.logFormat)
}

func (o *serveOptions) run(ctx context.Context, out io.Writer) error {
	if err := o.validate(); err != nil {
		return err
	}
	if o.gcFloorMiB < 0 {
		return configErrorf("--gc-heap-floor: must not be negative, got %d", o.gcFloorMiB)
	}
	logger, err := o.logger(os.Stderr)
	if err != nil {
		return err
	}
	defer startGCTuner(uint64(o.gcFloorMiB)<<20, logger)()
	demoing := o.demoMode()
	if demoing {
		o.allowAnonymous = true
	} else if o.upstream == "" && !o.decisionService() {
		return configErrorf("--upstream is required (or start serve with no flags at all for the demo)")
	}
	build := currentBuild()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), build.collector())
	env := envMap(os.Environ())
	tp, stopTracing, err := tracingFromEnv(ctx, env, build)
	if err != nil {
		return err
	}
	if stopTracing != nil {
		defer stopWithin(func(ctx context.Context) {
			if err := stopTracing(ctx); err != nil {
				logger.Warn("flushing traces failed", "error", err)
			}
		}, o.shutdownTimeout)
	}
	o.tracerProvider = tp
	met := newObserver(reg, tp)
	met.accessLog = o.accessLog

	dl, err := o.decisionLogger(ctx, logger)
	if err != nil {
		return err
	}
	if dl != nil {
		defer stopWithin(dl.Stop, o.shutdownTimeout)
	}
	var eval authz.Evaluator
	ready := func() error { return nil }
	if !o.noAuthz {
		if eval, ready, err = o.evaluator(ctx, demoing, dl, reg, logger); err != nil {
			return err
		}
		if eval, err = o.cached(eval, logger, reg); err != nil {
			return err
		}
	}
	if err := o.checkCompileAPI(o.adminListen); err != nil {
		return err
	}
	eval, stopShadow, err := o.shadowed(ctx, eval, dl, reg, logger)
	if err != nil {
		return err
	}
	defer stopShadow()
	auth, err := o.authenticator(ctx, demoing, logger)
	if err != nil {
		return err
	}
	defer o.sessionStore.close()
	metrics := prommetrics.NewMiddleware(prommetrics.MiddlewareOptions{DryRun: o.dryRun})
	reg.MustRegister(metrics)
	cfg := o.middlewareConfig()
	cfg.Authenticator, cfg.Evaluator, cfg.Logger, cfg.Metrics = auth.authenticator, eval, logger, metrics
	cfg.DisableAuthorization, cfg.DryRun = o.noAuthz, o.dryRun
	cfg.ForwardCredentials = o.forwardCredentials
	cfg.TracerProvider = tp
	if o.accessLog {
		cfg.AccessLog = logger
	}
	if dl != nil {
		cfg.DecisionLogger = dl
	}
	cfg.KeepCredentialsInDecisionLogs = o.logKeepCreds
	cfg.DecisionLogLevel = slog.LevelDebug
	if o.logDecisions {
		cfg.DecisionLogLevel = slog.LevelInfo
	}
	guard, err := authz.New(cfg)
	if err != nil {
		return err
	}
	handler, front, err := o.frontHandler(guard, logger)
	if err != nil {
		return err
	}
	if !o.decisionService() {
		next, err := o.next(demoing, logger, met)
		if err != nil {
			return err
		}
		next = authz.ForwardIdentity(next, authn.ForwardOptions{AllowUnverifiedEmail: o.allowUnverifiedEmail}, logger)
		next = o.compileRoute(next, dl, logger)
		handler = guard.Handler(next)
	}
	var servers []*namedServer
	ln := net.Listener(nil)
	if handler != nil {
		if ln, err = net.Listen("tcp", o.listen); err != nil {
			return fmt.Errorf("--listen: %w", err)
		}
		servers = append(servers, &namedServer{name: "proxy", ln: ln, srv: o.server(auth.routes(handler), logger)})
	}
	if o.adminListen != "" {
		aln, err := net.Listen("tcp", o.adminListen)
		if err != nil {
			if ln != nil {
				ln.Close()
			}
			return fmt.Errorf("--admin-listen: %w", err)
		}
		servers = append(servers, &namedServer{name: "admin", ln: aln, srv: o.server(o.compileAdmin(adminHandler(reg, ready, o.pprof), dl, logger), logger)})
		logger.Info("admin listening", "addr", aln.Addr().String())
	}
	listenLabel := "none"
	if ln != nil {
		listenLabel = ln.Addr().String()
	}
	logger.Info("regoguard serving", append([]any{"listen", listenLabel, "upstream", o.upstreamLabel(demoing), "admin", o.adminListen,
		"tracing", tracingLabel(tp, env)}, build.logAttrs()...)...)
	if demoing {
		printDemo(out, ln.Addr().String(), auth.demoKeys)
	}
	if front != nil {
		return serveWithGRPC(ctx, servers, front, o.shutdownTimeout, logger)
	}
	return serveUntilDone(ctx, servers, o.shutdownTimeout, logger)
}

func (o *serveOptions) upstreamLabel(demoing bool) string {
	if demoing {
		return "built-in demo upstream"
	}
	if o.decisionService() {
		return "none: " + o.modeLabel()
	}
	return redactURL(o.upstream)
}

// evaluator assembles what decides: the local policy, a remote OPA, or
// both, and a readiness check.
func (o *serveOptions) evaluator(ctx context.Context, demoing bool, dl *bundles.DecisionLogger, reg prometheus.Registerer, logger *slog.Logger) (authz.Evaluator, func() error, error) {
	remote, err := o.remote()
	if err != nil {
		return nil, nil, err
	}
	if len(o.policies) > 0 && len(o.bundles) > 0 {
		return nil, nil, configErrorf("give --policy or --bundle, not both")
	}
	var engine *policy.Engine
	ready := func() error { return nil }
	switch {
	case len(o.bundles) > 0:
		if engine, err = policy.New(ctx, o.engineConfig(logger), nil); err != nil {
			return nil, nil, err
		}
		m, err := o.manager(engine, dl, reg, logger)
		if err != nil {
			return nil, nil, err
		}
		// Errors of local bundles are fatal at start-up; a remote bundle
		// may still arrive, and until then requests fail closed (503).
		if err := m.Start(ctx); err != nil && !o.hasRemoteBundle() {
			return nil, nil, sourceError("--bundle", err)
		} else if err != nil {
			// The manager has logged the failure itself, with the bundle's name.
			logger.Info("bundles not activated yet; refusing requests until they are")
		}
		go func() {
			<-ctx.Done()
			stopWithin(m.Stop, o.shutdownTimeout)
		}()
		onHangup(ctx, logger, "bundles", m.Trigger, true)
		ready = m.Check
	case demoing:
		p, err := demo.Policy()
		if err != nil {
			return nil, nil, err
		}
		if engine, err = policy.New(ctx, o.engineConfig(logger), p); err != nil {
			return nil, nil, err
		}
	case len(o.policies) > 0:
		// The files are parsed once per load (at start, on SIGHUP, on a
		// --watch change), and the decision log's masking and drop rules
		// (system.log.mask, system.log.drop) follow every revision from
		// that parse, as a bundle activation does for --bundle.
		cfg := o.engineConfig(logger)
		if dl != nil {
			cfg.OnLoad = dl.UsePolicy
		}
		if engine, err = o.loadEngineWith(ctx, o.policies, cfg); err != nil {
			return nil, nil, err
		}
		if o.watch {
			if err := engine.WatchFiles(ctx, policy.DefaultDebounce, o.policies...); err != nil {
				return nil, nil, err
			}
		}
		onHangup(ctx, logger, "policy", func(ctx context.Context) error { return engine.ReloadFiles(ctx, o.policies...) }, false)
	}
	if engine != nil && len(o.bundles) == 0 {
		ready = engineReady(engine)
	}
	if engine != nil {
		reg.MustRegister(prommetrics.NewEngineCollector(engine))
		o.compileSource = engine
	}
	if eval := o.combined(engine, remote, logger); eval != nil {
		return eval, ready, nil
	}
	return nil, nil, configErrorf("no policy: give --policy, --bundle or --opa-url")
}

func (o *serveOptions) hasRemoteBundle() bool {
	for _, b := range o.bundles {
		if strings.HasPrefix(b, "http://") || strings.HasPrefix(b, "https://") {
			return true
		}
	}
	return false
}

// onHangup calls reload on every SIGHUP until ctx ends: the usual way to
// tell a daemon to re-read what it serves (policy files without --watch,
// local bundles that are never polled). A failed reload keeps the previous
// revision serving. A reload that logs its own failures (selfLogging) is
// not logged again.
func onHangup(ctx context.Context, logger *slog.Logger, what string, reload func(context.Context) error, selfLogging bool) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if err := reload(ctx); err != nil {
					if !selfLogging {
						logger.Error("reload on SIGHUP failed; the previous revision keeps serving", "what", what, "error", err)
					}
					continue
				}
				logger.Info("reloaded on SIGHUP", "what", what)
			}
		}
	}()
}

// stopWithin calls stop with a context that ends after d.
func stopWithin(stop func(context.Context), d time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	stop(ctx)
}

func engineReady(e *policy.Engine) func() error {
	return func() error {
		if !e.Ready() {
			return errors.New("no policy loaded yet")
		}
		return nil
	}
}

// next is what an allowed request reaches: the upstream, or the demo's
// built-in one.
func (o *serveOptions) next(demoing bool, logger *slog.Logger, met *observer) (http.Handler, error) {
	if demoing {
		return demo.Upstream(), nil
	}
	u, err := url.Parse(o.upstream)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, configErrorf("--upstream: %q is not an absolute http(s) URL", o.upstream)
	}
	return newProxy(u, logger, met), nil
}

func (o *serveOptions) server(h http.Handler, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: o.headerTimeout,
		ReadTimeout:       o.readTimeout,
		WriteTimeout:      o.writeTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    o.maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

type namedServer struct {
	name string
	ln   net.Listener
	srv  *http.Server
}

// serveUntilDone serves until ctx is done (SIGTERM, SIGINT), then lets
// in-flight requests finish for up to grace.
func serveUntilDone(ctx context.Context, servers []*namedServer, grace time.Duration, logger *slog.Logger) error {
	g, gctx := errgroup.WithContext(ctx)
	for _, s := range servers {
		g.Go(func() error {
			if err := s.srv.Serve(s.ln); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("%s server: %w", s.name, err)
			}
			return nil
		})
	}
	g.Go(func() error {
		<-gctx.Done()
		logger.Info("shutting down; in-flight requests may finish", "grace", grace)
		sctx, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		var errs []error
		for _, s := range servers {
			if err := s.srv.Shutdown(sctx); err != nil {
				errs = append(errs, fmt.Errorf("%s server shutdown: %w", s.name, err))
			}
		}
		return errors.Join(errs...)
	})
	return g.Wait()
}

// newProxy forwards allowed requests to upstream with the identity headers
// set, over a connection pool sized for a busy sidecar (Go's default keeps
// two idle connections per host, which costs a new connection on most
// concurrent requests).
func newProxy(upstream *url.URL, logger *slog.Logger, met *observer) http.Handler {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(upstream)
			pr.SetXForwarded()
			pr.Out.Host = pr.In.Host
			// The identity headers are those authz.ForwardIdentity set: the
			// guard removed every spelling a client or proxy sent.
		},
		ModifyResponse: met.upstreamResponse,
		Transport: tracedTransport(&http.Transport{
			Proxy:                 nil,
			DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:          1024,
			MaxIdleConnsPerHost:   1024,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			ExpectContinueTimeout: time.Second,
			ForceAttemptHTTP2:     true,
		}, met.tp),
		BufferPool: new(copyBuffers),
		ErrorLog:   slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			met.upstreamError(r.Context(), err)
			logger.WarnContext(r.Context(), "upstream unreachable", "error", err, "path", r.URL.Path)
			http.Error(w, "upstream unreachable", http.StatusBadGateway)
		},
	}
}

// copyBuffers lends ReverseProxy the buffers it copies response bodies
// through. Without a pool every request allocates 32 KiB, which under load
// makes the garbage collector run several times as often.
type copyBuffers struct{ pool sync.Pool }

func (c *copyBuffers) Get() []byte {
	if b, ok := c.pool.Get().(*[]byte); ok {
		return *b
	}
	return make([]byte, 32<<10)
}

func (c *copyBuffers) Put(b []byte) { c.pool.Put(&b) }

func adminHandler(reg *prometheus.Registry, ready func() error, withPprof bool) http.Handler {
	mux := http.NewServeMux()
	if withPprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := ready(); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ready\n")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	return mux
}

func printDemo(out io.Writer, addr string, keys map[string]string) {
	base := "http://" + addr
	fmt.Fprintf(out, `
regoguard demo: an embedded policy (package httpapi.authz) protects a built-in upstream.
Try, from another terminal:

  curl -i %[1]s/public/hello                                  # allowed: public
  curl -i %[1]s/api/orders                                    # 401: sign in (an API key) to read /api
  curl -i -H 'X-API-Key: %[2]s' %[1]s/api/orders     # allowed: %[4]s may read
  curl -i -X DELETE -H 'X-API-Key: %[2]s' %[1]s/api/orders  # 403: only admins may change things
  curl -i -X DELETE -H 'X-API-Key: %[3]s' %[1]s/api/orders   # allowed: %[5]s is an admin

Stop with Ctrl-C.
`, base, keys["reader"], keys["admin"], "the reader", "the admin")
}
