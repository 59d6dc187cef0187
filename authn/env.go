package authn

import (
	"github.com/regoguard/regoguard/authn/internal/websession"

	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Environment variables read by [ConfigFromEnv]. The first four are the names
// of the fastapi-opa deployment guide, so the same Kubernetes Secret works.
const (
	EnvAppURI       = "APP_URI"            // external base URL of the app; enables the browser flow
	EnvClientID     = "OIDC_CLIENT_ID"     // client ID (and expected audience)
	EnvClientSecret = "OIDC_CLIENT_SECRET" // client secret (browser flow)
	EnvWellKnown    = "OIDC_WELL_KNOWN"    // issuer URL or its .well-known/openid-configuration URL
	// EnvSessionKeys holds the session cookie keys, comma-separated, newest
	// first; each is at least 32 bytes, given raw or as "base64:<std base64>".
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
	out.Browser = &BrowserConfig{Issuer: wk, ClientID: id, ClientSecret: get(EnvClientSecret), AppURI: app, CookieKeys: keys,
		InsecureCookies: u.Scheme == "http" && websession.IsLoopbackHost(u.Hostname())}
	return out, nil
}

func parseSessionKeys(s string) ([][]byte, error) {
	if s == "" {
		return nil, fmt.Errorf("authn: %s is required with %s (at least one key of %d bytes or more)", EnvSessionKeys, EnvAppURI, MinCookieKeyLen)
	}
	var keys [][]byte
	for i, k := range strings.Split(s, ",") {
		k = strings.TrimSpace(k)
		var key []byte
		if b64, ok := strings.CutPrefix(k, "base64:"); ok {
			var err error
			if key, err = base64.StdEncoding.DecodeString(b64); err != nil {
				return nil, fmt.Errorf("authn: %s: key %d is not valid base64", EnvSessionKeys, i+1)
			}
		} else {
			key = []byte(k)
		}
		if len(key) < MinCookieKeyLen {
			return nil, fmt.Errorf("authn: %s: key %d is shorter than %d bytes", EnvSessionKeys, i+1, MinCookieKeyLen)
		}
		keys = append(keys, key)
	}
	if len(keys) == 0 {
		return nil, errors.New("authn: no session keys")
	}
	return keys, nil
}
