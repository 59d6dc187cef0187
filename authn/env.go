package authn

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/regoguard/regoguard/authn/internal/websession"
)

// Environment variables read by [ConfigFromEnv]. The first four are the names
// of the fastapi-opa deployment guide, so the same Kubernetes Secret works.
const (
	EnvAppURI       = "APP_URI"            // external base URL of the app; enables the browser flow
	EnvClientID     = "OIDC_CLIENT_ID"     // client ID (and expected audience)
	EnvClientSecret = "OIDC_CLIENT_SECRET" // client secret (browser flow)
	EnvWellKnown    = "OIDC_WELL_KNOWN"    // issuer URL or its .well-known/openid-configuration URL
	// EnvSessionKeys holds the session cookie keys, comma-separated, newest
	// first; each is at least 32 bytes, read by [ParseSessionKey]
	// ("base64:...", "hex:...", or unprefixed).
	EnvSessionKeys = "REGOGUARD_SESSION_KEYS"
)

// EnvConfig is what [ConfigFromEnv] read. A nil field means that method is
// not configured.
type EnvConfig struct {
	Bearer  *BearerConfig
	Browser *BrowserConfig
}

// ConfigFromEnv reads OIDC settings with lookup (os.LookupEnv in
// production). OIDC_WELL_KNOWN and OIDC_CLIENT_ID configure bearer tokens;
// APP_URI adds the browser flow, which also needs REGOGUARD_SESSION_KEYS.
// A plain-http APP_URI on localhost turns InsecureCookies on (the only case
// NewBrowser allows it). Nothing configured yields an empty EnvConfig.
// Error messages name variables, never their values.
func ConfigFromEnv(lookup func(string) (string, bool)) (*EnvConfig, error) {
	get := func(k string) string {
		v, _ := lookup(k)
		return strings.TrimSpace(v)
	}
	out := &EnvConfig{}
	wk, id, app := get(EnvWellKnown), get(EnvClientID), get(EnvAppURI)
	if wk == "" {
		if id != "" || app != "" {
			return nil, fmt.Errorf("authn: %s is required with %s or %s", EnvWellKnown, EnvClientID, EnvAppURI)
		}
		return out, nil
	}
	if id == "" {
		return nil, fmt.Errorf("authn: %s is required with %s", EnvClientID, EnvWellKnown)
	}
	out.Bearer = &BearerConfig{Issuer: wk, ClientID: id}
	if app == "" {
		return out, nil
	}
	keys, err := parseSessionKeys(get(EnvSessionKeys))
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(app)
	if err != nil {
		return nil, fmt.Errorf("authn: %s is not a URL", EnvAppURI)
	}
	out.Browser = &BrowserConfig{
		Issuer:        wk,
		ClientID:      id,
		ClientSecret:  get(EnvClientSecret),
		SessionConfig: SessionConfig{AppURI: app, CookieKeys: keys, InsecureCookies: u.Scheme == "http" && websession.IsLoopbackHost(u.Hostname())},
	}
	return out, nil
}

func parseSessionKeys(s string) ([][]byte, error) {
	if s == "" {
		return nil, fmt.Errorf("authn: %s is required with %s (at least one key of %d bytes or more)", EnvSessionKeys, EnvAppURI, MinCookieKeyLen)
	}
	var keys [][]byte
	for i, k := range strings.Split(s, ",") {
		key, err := ParseSessionKey(k)
		if err != nil {
			return nil, fmt.Errorf("authn: %s: key %d: %w", EnvSessionKeys, i+1, err)
		}
		keys = append(keys, key)
	}
	return keys, nil
}

// ParseSessionKey reads one session cookie key as REGOGUARD_SESSION_KEYS and
// regoguard serve's --session-key give it: "base64:<standard base64>",
// "hex:<hex>", "raw:<bytes>", or without a prefix: hex when it is hex of at
// least [MinCookieKeyLen] bytes, else standard base64 when it is that, else
// the raw bytes (prefer a prefix: it says what is meant). The key must hold
// at least MinCookieKeyLen bytes. Errors never contain the key.
func ParseSessionKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	var key []byte
	var err error
	switch {
	case strings.HasPrefix(s, "base64:"):
		if key, err = base64.StdEncoding.DecodeString(s[len("base64:"):]); err != nil {
			return nil, errors.New("not valid base64 after \"base64:\"")
		}
	case strings.HasPrefix(s, "hex:"):
		if key, err = hex.DecodeString(s[len("hex:"):]); err != nil {
			return nil, errors.New("not valid hex after \"hex:\"")
		}
	case strings.HasPrefix(s, "raw:"):
		key = []byte(s[len("raw:"):])
	default:
		key = []byte(s)
		if k, err := hex.DecodeString(s); err == nil && len(k) >= MinCookieKeyLen {
			key = k
		} else if k, err := base64.StdEncoding.DecodeString(s); err == nil && len(k) >= MinCookieKeyLen {
			key = k
		}
	}
	if len(key) < MinCookieKeyLen {
		return nil, fmt.Errorf("%d bytes, want at least %d (openssl rand -hex 32)", len(key), MinCookieKeyLen)
	}
	return key, nil
}
