package main

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/spf13/pflag"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/cmd/regoguard/demo"
)

// authOptions are the flags that decide how callers are authenticated.
type authOptions struct {
	apiKeysFile    string
	apiKeyHeader   string
	trustedProxy   []string
	noAuthn        bool
	oidcIssuer     string
	oidcClientID   string
	oidcSecret     string
	oidcAudience   string
	oidcAccepted   []string
	oidcSkew       time.Duration
	oidcUserInfo   bool
	appURI         string
	sessionKeys    []string
	insecureCookie bool
	oidcScopes     []string
	saml           samlOptions
	// allowUnverifiedEmail keeps emails whose email_verified claim is false.
	allowUnverifiedEmail bool
	sessionStore         sessionStoreOptions
	// proxyIdentityOff keeps --trusted-proxy from believing identity
	// headers (forward-auth: there it names whose description of the
	// original request is believed).
	proxyIdentityOff bool
}

func (o *authOptions) register(fs *pflag.FlagSet) {
	fs.StringVar(&o.apiKeysFile, "api-keys", "", "YAML file of API keys (key or sha256:<hex>, subject, claims), or env:NAME for that YAML in the environment variable NAME")
	fs.StringVar(&o.apiKeyHeader, "api-key-header", authn.DefaultAPIKeyHeader, "header that carries the API key")
	fs.StringArrayVar(&o.trustedProxy, "trusted-proxy", nil, "CIDR of a proxy whose identity headers (X-Forwarded-User, X-Auth-Request-*) are believed (repeatable)")
	fs.BoolVar(&o.noAuthn, "no-authn", false, "NOT RECOMMENDED: authenticate nobody; every request is anonymous (for services already authenticated upstream)")
	fs.StringVar(&o.oidcIssuer, "oidc-well-known", "", "OpenID Provider: issuer URL or its .well-known/openid-configuration URL")
	fs.StringVar(&o.oidcClientID, "oidc-client-id", "", "OIDC client ID (the audience of ID tokens)")
	fs.StringVar(&o.oidcSecret, "oidc-client-secret", "", "OIDC client secret, for the browser login (prefer the environment variable)")
	fs.StringVar(&o.oidcAudience, "oidc-audience", "", "audience of JWT access tokens (default: the client ID)")
	fs.StringArrayVar(&o.oidcAccepted, "oidc-accept", nil, "bearer token kinds accepted: id_token, access_token (repeatable; default both)")
	fs.DurationVar(&o.oidcSkew, "oidc-clock-skew", 30*time.Second, "tolerance on token expiry, not-before and issued-at times")
	fs.BoolVar(&o.oidcUserInfo, "oidc-userinfo", false, "add the provider's userinfo claims to verified tokens (cached)")
	fs.StringVar(&o.appURI, "app-uri", "", "public URL of the protected application; enables the browser login")
	fs.StringArrayVar(&o.sessionKeys, "session-key", nil, "key of the session cookie, 32 bytes or more: base64:<base64>, hex:<hex>, or unprefixed hex or base64; the first encrypts, all decrypt (repeatable, or comma-separated)")
	fs.BoolVar(&o.allowUnverifiedEmail, "oidc-allow-unverified-email", false, "keep a token's email (in the policy input and X-Auth-Request-Email) when its email_verified claim is false")
	fs.BoolVar(&o.insecureCookie, "insecure-cookie", false, "session cookie without Secure, only for an http://localhost app URI")
	fs.StringArrayVar(&o.oidcScopes, "oidc-scope", nil, "scope the browser login requests (repeatable; openid is always added; default profile, email)")
	o.saml.register(fs)
	o.sessionStore.register(fs)
	envAlias(fs, "oidc-well-known", "OIDC_WELL_KNOWN")
	envAlias(fs, "oidc-client-id", "OIDC_CLIENT_ID")
	envAlias(fs, "oidc-client-secret", "OIDC_CLIENT_SECRET")
	envAlias(fs, "app-uri", "APP_URI")
	// The name authn.ConfigFromEnv reads, for deployments configured for it.
	envAlias(fs, "session-key", "REGOGUARD_SESSION_KEYS")
}

// authConfigured reports whether any way of authenticating was asked for.
func (o *authOptions) authConfigured() bool {
	return o.apiKeysFile != "" || len(o.trustedProxy) > 0 || o.noAuthn || o.oidcIssuer != "" || o.appURI != "" || o.saml.configured()
}

// authSetup is what serve needs from authentication.
type authSetup struct {
	authenticator authn.Authenticator
	// routes wraps the protected handler: it removes spoofed identity
	// headers (the guard itself serves the browser flows' login routes).
	routes   func(http.Handler) http.Handler
	demoKeys map[string]string
}

func (o *authOptions) authenticator(ctx context.Context, demoing bool, logger *slog.Logger) (*authSetup, error) {
	var chain authn.Chain
	setup := &authSetup{}
	var proxy *authn.ProxyHeaders
	if len(o.trustedProxy) > 0 && !o.proxyIdentityOff {
		p, err := authn.NewProxyHeaders(authn.ProxyConfig{TrustedCIDRs: o.trustedProxy})
		if err != nil {
			return nil, configErrorf("--trusted-proxy: %w", err)
		}
		proxy = p
		chain = append(chain, p)
	}
	switch {
	case demoing:
		keys, plain := demo.APIKeys()
		a, err := authn.NewAPIKeys(authn.APIKeyConfig{Header: o.apiKeyHeader, Keys: keys})
		if err != nil {
			return nil, err
		}
		chain = append(chain, a)
		setup.demoKeys = plain
	case o.apiKeysFile != "":
		keys, err := loadAPIKeys(o.apiKeysFile)
		if err != nil {
			return nil, configErrorf("--api-keys: %w", withYAMLHint(err, reflect.TypeFor[authn.APIKey]()))
		}
		a, err := authn.NewAPIKeys(authn.APIKeyConfig{Header: o.apiKeyHeader, Keys: keys})
		if err != nil {
			return nil, configErrorf("--api-keys: %w", err)
		}
		chain = append(chain, a)
	}
	if o.sessionStore.configured() && o.appURI == "" {
		return nil, configErrorf("--session-store keeps the state of the browser logins: it needs --app-uri")
	}
	if err := o.sessionStore.open(ctx, logger); err != nil {
		return nil, err
	}
	if o.oidcIssuer != "" {
		b, err := o.bearer(logger)
		if err != nil {
			return nil, err
		}
		chain = append(chain, b)
	}
	// Both browser logins seal their cookies with the same keys, decoded
	// (or, without --session-key, made at random and warned about) once.
	cookieKeys := sync.OnceValues(func() ([][]byte, error) { return sessionKeys(o.sessionKeys, logger) })
	if o.appURI != "" && (o.oidcIssuer != "" || !o.saml.configured()) {
		b, err := o.browser(cookieKeys, logger)
		if err != nil {
			return nil, err
		}
		chain = append(chain, b)
	}
	if o.saml.configured() {
		sp, err := o.saml.serviceProvider(ctx, o, cookieKeys, logger)
		if err != nil {
			return nil, err
		}
		chain = append(chain, sp)
	}
	if o.noAuthn {
		chain = append(chain, authn.None(logger))
	}
	if len(chain) == 0 {
		return nil, configErrorf("no authentication: give --api-keys, --oidc-well-known, --saml-idp-metadata, --trusted-proxy, or --no-authn explicitly")
	}
	setup.authenticator = chain
	// The guard (authz) mounts the login routes of the chain's browser
	// flows and loads their sessions; the upstream never sees the session
	// cookie.
	setup.routes = func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// Identity headers are believed only from a trusted proxy, and
			// never forwarded as they came.
			if proxy == nil || !proxy.Trusted(r) {
				authn.StripIdentityHeaders(r)
			}
			next.ServeHTTP(w, r)
		})
	}
	return setup, nil
}

// browser sets up the OIDC login for browsers (--app-uri).
func (o *authOptions) browser(cookieKeys func() ([][]byte, error), logger *slog.Logger) (*authn.Browser, error) {
	if o.oidcIssuer == "" || o.oidcClientID == "" {
		return nil, configErrorf("--app-uri needs --oidc-well-known and --oidc-client-id (OIDC_WELL_KNOWN, OIDC_CLIENT_ID)")
	}
	keys, err := cookieKeys()
	if err != nil {
		return nil, err
	}
	b, err := authn.NewBrowser(authn.BrowserConfig{
		Issuer:        o.oidcIssuer,
		ClientID:      o.oidcClientID,
		ClientSecret:  o.oidcSecret,
		ClockSkew:     o.oidcSkew,
		Scopes:        o.oidcScopes,
		SessionData:   o.sessionStore.data,
		SessionConfig: authn.SessionConfig{AppURI: o.appURI, CookieKeys: keys, InsecureCookies: o.insecureCookie, Logger: logger, Store: o.sessionStore.store},
	})
	if err != nil {
		return nil, configErrorf("--app-uri: %w", err)
	}
	return b, nil
}

// sessionKeys decodes --session-key values (each one key, or a
// comma-separated list as REGOGUARD_SESSION_KEYS holds) with the parser
// authn.ConfigFromEnv uses. With none, a random key is made: sessions then
// end when the process does and are not shared between replicas, which is
// said loudly.
func sessionKeys(values []string, logger *slog.Logger) ([][]byte, error) {
	if len(values) == 0 {
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		logger.Warn("no --session-key: using a random one; browser sessions end at restart and are not shared between replicas")
		return [][]byte{key}, nil
	}
	var keys [][]byte
	for _, v := range values {
		for _, k := range strings.Split(v, ",") {
			key, err := authn.ParseSessionKey(k)
			if err != nil {
				return nil, configErrorf("--session-key #%d: %w", len(keys)+1, err)
			}
			keys = append(keys, key)
		}
	}
	return keys, nil
}

func (o *authOptions) bearer(logger *slog.Logger) (*authn.Bearer, error) {
	if o.oidcClientID == "" {
		return nil, configErrorf("--oidc-client-id (OIDC_CLIENT_ID) is required with --oidc-well-known")
	}
	var accepted []authn.TokenKind
	for _, k := range o.oidcAccepted {
		if err := oneOf("oidc-accept", k, string(authn.IDToken), string(authn.AccessToken)); err != nil {
			return nil, err
		}
		accepted = append(accepted, authn.TokenKind(k))
	}
	b, err := authn.NewBearer(authn.BearerConfig{
		Issuer: o.oidcIssuer, ClientID: o.oidcClientID, Audience: o.oidcAudience, Accepted: accepted,
		ClockSkew: o.oidcSkew, UserInfo: o.oidcUserInfo, AllowUnverifiedEmail: o.allowUnverifiedEmail, Logger: logger,
	})
	if err != nil {
		return nil, configErrorf("--oidc-well-known: %w", err)
	}
	return b, nil
}
