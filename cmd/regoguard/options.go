package main

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
	"go.opentelemetry.io/otel/trace"

	"github.com/regoguard/regoguard/authz"
	"github.com/regoguard/regoguard/policy"
	"github.com/regoguard/regoguard/prommetrics"
)

// policyOptions are the flags that decide how a request is judged: shared by
// serve, check and bench, so that check and bench judge exactly as serve does.
type policyOptions struct {
	policies       []string
	decision       string
	wholeDecision  bool
	opaURL         string
	opaTimeout     time.Duration
	remoteFirst    bool
	layout         string
	allowAnonymous bool
	denyStatus     int
	body           bool
	maxBodyBytes   int64
	skips          []string
	corsPreflight  bool
	preserveTokens bool
	denyBuiltins   []string
	nonStrict      bool
	store          string
	cacheSize      int
	cacheTTL       time.Duration
	cacheKey       []string
	regoVersion    string
	// tracerProvider traces remote OPA calls; set by serve, nil otherwise.
	tracerProvider trace.TracerProvider
	// resultParser reads decisions in a decision-service mode whose
	// policies answer in their own shape (Envoy's, AuthZEN's); nil: the
	// default.
	resultParser policy.ResultParser
}

func (o *policyOptions) register(fs *pflag.FlagSet) {
	fs.StringArrayVar(&o.policies, "policy", nil, "Rego and data files or directories (repeatable)")
	fs.StringVar(&o.decision, "decision", policy.DefaultDecision, "decision path evaluated for each request")
	fs.BoolVar(&o.wholeDecision, "whole-decision", false, "evaluate every rule of the decision package for every request (by default an allowed request evaluates only allow; reason and status are computed for refusals)")
	fs.StringVar(&o.opaURL, "opa-url", "", "remote OPA server; alone, every decision is asked of it; with a local policy, it is the fallback")
	fs.BoolVar(&o.remoteFirst, "remote-first", false, "with --policy and --opa-url: ask the remote OPA first and the local policy only when it fails")
	fs.DurationVar(&o.opaTimeout, "opa-timeout", authz.DefaultRemoteTimeout, "time limit of one remote OPA decision")
	fs.StringVar(&o.layout, "input-layout", string(authz.LayoutRegoguard), "policy input layout: regoguard, fastapi-opa, or envoy (opa-envoy-plugin's, with --forward-auth or --ext-authz-listen)")
	fs.BoolVar(&o.allowAnonymous, "allow-anonymous", false, "let requests without credentials reach the policy (user.authenticated false)")
	fs.IntVar(&o.denyStatus, "deny-status", http.StatusForbidden, "status of a denied request when the policy gives none (fastapi-opa: 401)")
	fs.BoolVar(&o.body, "body", false, "add the JSON request body to the input as body")
	fs.Int64Var(&o.maxBodyBytes, "max-body-bytes", authz.DefaultMaxBodyBytes, "largest body read into the input; larger bodies get 413")
	fs.StringArrayVar(&o.skips, "skip", nil, "regular expression of paths exempt from authentication and authorization, matched against the whole path (repeatable)")
	fs.BoolVar(&o.corsPreflight, "cors-preflight", false, "let CORS pre-flight requests (OPTIONS with Origin and Access-Control-Request-Method) through")
	fs.BoolVar(&o.preserveTokens, "preserve-tokens", false, "add the caller's raw token to the policy input (user.token); it may then reach decision logs")
	fs.StringArrayVar(&o.denyBuiltins, "deny-builtin", nil, "built-in function the policy may not call, such as http.send (repeatable)")
	fs.BoolVar(&o.nonStrict, "non-strict", false, "turn off OPA's strict compilation checks")
	fs.StringVar(&o.store, "store", policy.StoreFlat.String(), "how data documents are held: flat (one compact immutable encoding, converted as each decision reads it: a fraction of the memory and load time), read-optimized (converted once at load, like opa run --optimize-store-for-read-speed) or compact (Go values, like opa run's default)")
	fs.IntVar(&o.cacheSize, "decision-cache", 0, "keep up to this many decisions, for deterministic policies (0: no cache)")
	fs.DurationVar(&o.cacheTTL, "decision-cache-ttl", 10*time.Second, "how long a cached decision is kept")
	fs.StringSliceVar(&o.cacheKey, "decision-cache-key", nil, "input fields the policy's decisions are expected to depend on, such as method,path,user: refused at start when the policy reads another; decisions are always keyed on what the policy reads")
	fs.StringVar(&o.regoVersion, "rego-version", "v1", "Rego syntax of the --policy files: v1, or v0 for policies written before OPA 1.0 (fastapi-opa's), compiled with OPA's v0 compatibility")
	envAlias(fs, "opa-url", "OPA_HOST")
}

func (o *policyOptions) validate() error {
	if err := oneOf("input-layout", o.layout, string(authz.LayoutRegoguard), string(authz.LayoutFastAPIOPA), string(authz.LayoutEnvoy)); err != nil {
		return err
	}
	if err := oneOf("store", o.store, policy.StoreFlat.String(), policy.StoreReadOptimized.String(), policy.StoreCompact.String()); err != nil {
		return err
	}
	if o.denyStatus < 400 || o.denyStatus > 599 {
		return configErrorf("--deny-status: %d is not an HTTP error status (400-599)", o.denyStatus)
	}
	if o.cacheSize < 0 || o.cacheTTL <= 0 {
		return configErrorf("--decision-cache and --decision-cache-ttl must not be negative")
	}
	if err := oneOf("rego-version", o.regoVersion, "v1", "v0"); err != nil {
		return err
	}
	if _, err := policy.DecisionRef(o.decision); err != nil {
		return configErrorf("--decision: %w", err)
	}
	if o.maxBodyBytes <= 0 {
		return configErrorf("--max-body-bytes: must be positive, got %d", o.maxBodyBytes)
	}
	return nil
}

func (o *policyOptions) engineConfig(logger *slog.Logger) policy.Config {
	return policy.Config{Decision: o.decision, DenyBuiltins: o.denyBuiltins, NonStrict: o.nonStrict,
		WholeDocument: o.wholeDecision, Logger: logger, RegoVersion: o.astRegoVersion(),
		Store: o.storeOption(), ResultParser: o.resultParser}
}

// storeOption is the --store flag as a policy.Store (validate checked it).
func (o *policyOptions) storeOption() policy.Store {
	for _, s := range []policy.Store{policy.StoreReadOptimized, policy.StoreCompact} {
		if o.store == s.String() {
			return s
		}
	}
	return policy.StoreFlat
}

// loadEngine compiles the policy files into a new engine.
func (o *policyOptions) loadEngine(ctx context.Context, paths []string, logger *slog.Logger) (*policy.Engine, error) {
	return o.loadEngineWith(ctx, paths, o.engineConfig(logger))
}

// loadEngineWith is loadEngine with the engine's configuration given: the
// files are parsed once, and what follows the policy (cfg.OnLoad) follows
// it from that parse.
func (o *policyOptions) loadEngineWith(ctx context.Context, paths []string, cfg policy.Config) (*policy.Engine, error) {
	p, err := o.loadPolicy(paths)
	if err != nil {
		return nil, err
	}
	e, err := policy.New(ctx, cfg, p)
	return e, sourceError("--policy", err)
}

// loadPolicy reads the policy files, not compiled yet.
func (o *policyOptions) loadPolicy(paths []string) (*policy.Policy, error) {
	for _, path := range paths {
		if _, err := os.Stat(path); err != nil {
			return nil, configErrorf("--policy: %w", err)
		}
	}
	p, err := policy.Loader{RegoVersion: o.astRegoVersion()}.LoadFiles(paths...)
	return p, sourceError("--policy", err)
}

// remote returns the remote OPA evaluator, or nil without --opa-url.
func (o *policyOptions) remote() (*authz.Remote, error) {
	if o.opaURL == "" {
		return nil, nil
	}
	r, err := authz.NewRemote(authz.RemoteConfig{URL: o.opaURL, Decision: o.decision, Timeout: o.opaTimeout, TracerProvider: o.tracerProvider, ResultParser: o.resultParser})
	if err != nil {
		return nil, configErrorf("--opa-url: %w", err)
	}
	return r, nil
}

// combined is what decides with the local policy, the remote OPA, or both
// (--remote-first says which is asked first, the other being its fallback),
// as serve combines them and check --replay does as serve would; nil with
// neither. It logs the combination to logger.
func (o *policyOptions) combined(engine *policy.Engine, remote *authz.Remote, logger *slog.Logger) authz.Evaluator {
	switch {
	case engine != nil && remote != nil && o.remoteFirst:
		logger.Info("the local policy is the fallback of the remote OPA", "opa", redactURL(remote.Endpoint()))
		return &authz.Fallback{Primary: remote, Secondary: engine}
	case engine != nil && remote != nil:
		logger.Info("remote OPA is the fallback of the local policy", "opa", redactURL(remote.Endpoint()))
		return &authz.Fallback{Primary: engine, Secondary: remote}
	case engine != nil:
		return engine
	case remote != nil:
		logger.Info("every decision is asked of a remote OPA server", "opa", redactURL(remote.Endpoint()))
		return remote
	}
	return nil
}

// cached puts the decision cache in front of eval when it is asked for, and
// registers its metrics with reg.
func (o *policyOptions) cached(eval authz.Evaluator, logger *slog.Logger, reg prometheus.Registerer) (authz.Evaluator, error) {
	if o.cacheSize == 0 || eval == nil {
		return eval, nil
	}
	c, err := authz.NewCache(eval, authz.CacheConfig{Size: o.cacheSize, TTL: o.cacheTTL, KeyFields: o.cacheKey})
	if err != nil {
		return nil, configErrorf("--decision-cache: %w", err)
	}
	if s, err := authz.PlanOf(eval); err == nil && s.Revision == "" {
		logger.Warn("the decision cache keeps no decision of a remote OPA asked first or alone: regoguard cannot see when its policy changes")
	}
	if reg != nil {
		reg.MustRegister(prommetrics.NewCacheCollector(c))
	}
	return c, nil
}

// middlewareConfig is the part of authz.Config these flags decide.
func (o *policyOptions) middlewareConfig() authz.Config {
	cfg := authz.Config{
		Layout:             authz.Layout(o.layout),
		AllowAnonymous:     o.allowAnonymous,
		DenyStatus:         o.denyStatus,
		Body:               o.body,
		MaxBodyBytes:       o.maxBodyBytes,
		AllowCORSPreflight: o.corsPreflight,
		PreserveTokens:     o.preserveTokens,
	}
	for _, s := range o.skips {
		cfg.Skip = append(cfg.Skip, authz.Skip{Path: s})
	}
	return cfg
}

// astRegoVersion is --rego-version as OPA names it.
func (o *policyOptions) astRegoVersion() ast.RegoVersion {
	if o.regoVersion == "v0" {
		return ast.RegoV0
	}
	return ast.RegoV1
}
