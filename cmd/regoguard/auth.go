package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"log/slog"
	"net/http"
	"reflect"
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
}

func (o *authOptions) register(fs *pflag.FlagSet) {
	fs.StringVar(&o.apiKeysFile, "api-keys", "", "YAML file of API keys (key or sha256:<hex>, subject, claims)")
	fs.StringVar(&o.apiKeyHeader, "api-key-header", authn.DefaultAPIKeyHeader, "header that carries the API key")
	fs.StringArrayVar(&o.trustedProxy, "trusted-proxy", nil, "CIDR of a proxy whose identity headers (X-Forwarded-User, X-Auth-Request-*) are believed (repeatable)")
	fs.BoolVar(&o.noAuthn, "no-authn", false, "NOT RECOMMENDED: authenticate nobody; every request is anonymous (for services already authenticated upstream)")
	fs.StringVar(&o.oidcIssuer, "oidc-well-known", "", "OpenID Provider: issuer URL or its .well-known/openid-configuration URL")
	fs.StringVar(&o.oidcClientID, "oidc-client-id", "", "OIDC client ID (the audience of ID tokens)")
	fs.StringVar(&o.oidcSecret, "oidc-client-secret", "", "OIDC client secret, for the browser login (prefer the environment variable)")
	fs.StringVar(&o.oidcAudience, "oidc-audience", "", "audience of JWT access tokens (default: the client ID)")
	fs.StringArrayVar(&o.oidcAccepted, "oidc-accept", nil, "bearer token kinds accepted: id_token, access_token (repeatable; default both)")
	fs.DurationVar(&o.oidcSkew, "oidc-clock-skew", 30*time.Second, "tolerance on token expiry")
	fs.BoolVar(&o.oidcUserInfo, "oidc-userinfo", false, "add the provider's userinfo claims to verified tokens (cached)")
	fs.StringVar(&o.appURI, "app-uri", "", "public URL of the protected application; enables the browser login")
	fs.StringArrayVar(&o.sessionKeys, "session-key", nil, "key of the session cookie, 32 bytes as hex or base64; the first encrypts, all decrypt (repeatable)")
	fs.BoolVar(&o.insecureCookie, "insecure-cookie", false, "session cookie without Secure, only for an http://localhost app URI")
	envAlias(fs, "oidc-well-known", "OIDC_WELL_KNOWN")
	envAlias(fs, "oidc-client-id", "OIDC_CLIENT_ID")
	envAlias(fs, "oidc-client-secret", "OIDC_CLIENT_SECRET")
	envAlias(fs, "app-uri", "APP_URI")
	// The name authn.ConfigFromEnv reads, for deployments configured for it.
	envAlias(fs, "session-key", "REGOGUARD_SESSION_KEYS")
}

// authConfigured reports whether any way of authenticating was asked for.
func (o *authOptions) authConfigured() bool {
	return o.apiKeysFile != "" || len(o.trustedProxy) > 0 || o.noAuthn || o.oidcIssuer != "" || o.appURI != ""
}

// authSetup is what serve needs from authentication.
type authSetup struct {
	authenticator authn.Authenticator
	// routes wraps the protected handler: it removes spoofed identity
	// headers and serves the login routes when the browser flow is on.
	routes   func(http.Handler) http.Handler
	demoKeys map[string]string
}

func (o *authOptions) authenticator(_ context.Context, demoing bool, logger *slog.Logger) (*authSetup, error) {
	var chain authn.Chain
	setup := &authSetup{}
	var proxy *authn.ProxyHeaders
	if len(o.trustedProxy) > 0 {
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
		keys, err := authn.LoadAPIKeys(o.apiKeysFile)
		if err != nil {
			return nil, configErrorf("--api-keys: %w", withYAMLHint(err, reflect.TypeFor[authn.APIKey]()))
		}
		a, err := authn.NewAPIKeys(authn.APIKeyConfig{Header: o.apiKeyHeader, Keys: keys})
		if err != nil {
			return nil, configErrorf("--api-keys: %w", err)
		}
		chain = append(chain, a)
	}
	if o.oidcIssuer != "" {
		b, err := o.bearer(logger)
		if err != nil {
			return nil, err
		}
		chain = append(chain, b)
	}
	var browser *authn.Browser
	if o.appURI != "" {
		b, err := o.browser(logger)
		if err != nil {
			return nil, err
		}
		browser = b
		chain = append(chain, b)
	}
	if o.noAuthn {
		chain = append(chain, authn.None(logger))
	}
	if len(chain) == 0 {
		return nil, configErrorf("no authentication: give --api-keys, --oidc-well-known, --trusted-proxy, or --no-authn explicitly")
	}
	setup.authenticator = chain
	setup.routes = func(next http.Handler) http.Handler {
		if browser != nil {
			// The login routes and the session cookie are handled before
			// authorization; the upstream never sees the session cookie.
			next = browser.Middleware(next)
		}
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
func (o *authOptions) browser(logger *slog.Logger) (*authn.Browser, error) {
	if o.oidcIssuer == "" || o.oidcClientID == "" {
		return nil, configErrorf("--app-uri needs --oidc-well-known and --oidc-client-id (OIDC_WELL_KNOWN, OIDC_CLIENT_ID)")
	}
	keys, err := sessionKeys(o.sessionKeys, logger)
	if err != nil {
		return nil, err
	}
	b, err := authn.NewBrowser(authn.BrowserConfig{
		Issuer: o.oidcIssuer, ClientID: o.oidcClientID, ClientSecret: o.oidcSecret, AppURI: o.appURI,
		CookieKeys: keys, InsecureCookies: o.insecureCookie, ClockSkew: o.oidcSkew, Logger: logger,
	})
	if err != nil {
		return nil, configErrorf("--app-uri: %w", err)
	}
	return b, nil
}

// sessionKeys decodes --session-key values (hex or base64, 32 bytes or
// more). With none, a random key is made: sessions then end when the
// process does and are not shared between replicas, which is said loudly.
func sessionKeys(values []string, logger *slog.Logger) ([][]byte, error) {
	if len(values) == 0 {
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		logger.Warn("no --session-key: using a random one; browser sessions end at restart and are not shared between replicas")
		return [][]byte{key}, nil
	}
	keys := make([][]byte, 0, len(values))
	for i, v := range values {
		key, err := hex.DecodeString(v)
		if err != nil {
			key, err = base64.StdEncoding.DecodeString(v)
		}
		if err != nil {
			return nil, configErrorf("--session-key #%d: neither hex nor base64", i+1)
		}
		if len(key) < 32 {
			return nil, configErrorf("--session-key #%d: %d bytes, want at least 32 (openssl rand -hex 32)", i+1, len(key))
		}
		keys = append(keys, key)
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
		ClockSkew: o.oidcSkew, UserInfo: o.oidcUserInfo, Logger: logger,
	})
	if err != nil {
		return nil, configErrorf("--oidc-well-known: %w", err)
	}
	return b, nil
}
