package authz_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/authz"
	"github.com/regoguard/regoguard/internal/testissuer"
)

// customAuth reads a credential from a header, a cookie and a query
// parameter of its own naming, and declares them: what a user-written
// authenticator does.
type customAuth struct{}

func (customAuth) Authenticate(r *http.Request) (*authn.Identity, error) {
	if r.Header.Get("X-Custom-Token") == "" && r.URL.Query().Get("sig") == "" {
		if _, err := r.Cookie("sid"); err != nil {
			return nil, authn.ErrNoCredential
		}
	}
	return &authn.Identity{Subject: "alice", Method: authn.MethodAPIKey}, nil
}

func (customAuth) Credentials() authn.Credentials {
	return authn.Credentials{Headers: []string{"X-Custom-Token"}, Cookies: []string{"sid"}, Query: []string{"sig"}}
}

// Issue #22 item 1: `serve --api-key-header X-Auth` verified the key, then
// forwarded it upstream and wrote it into the decision log, because the
// middleware had its own idea of the API-key header. An authenticator now
// declares where it reads credentials (authn.CredentialsOf) and the
// middleware takes the list from it. Probe: for every authenticator, with a
// custom name wherever it can have one, the credential reaches neither the
// handler (upstream), nor the decision event, nor the decision line, nor the
// access log. Count what got through: must be 0.
func TestDeclaredCredentialsNeverLeak(t *testing.T) {
	iss := testissuer.Start(t)
	bearer, err := authn.NewBearer(authn.BearerConfig{Issuer: iss.URL, ClientID: iss.ClientID})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := authn.NewAPIKeys(authn.APIKeyConfig{Header: "X-Auth", Keys: []authn.APIKey{{Key: "SECRET-apikey-0123456789", Subject: "alice"}}})
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := authn.NewProxyHeaders(authn.ProxyConfig{TrustedCIDRs: []string{"192.0.2.0/24"}})
	if err != nil {
		t.Fatal(err)
	}
	browser, err := authn.NewBrowser(authn.BrowserConfig{Issuer: iss.URL, ClientID: iss.ClientID, AppURI: "https://app.example",
		CookieName: "my-session", CookieKeys: [][]byte{[]byte("0123456789abcdef0123456789abcdef")}})
	if err != nil {
		t.Fatal(err)
	}
	token := iss.Token(t, "alice", nil)
	type probe struct {
		name   string
		auth   authn.Authenticator
		secret string
		edit   func(r *http.Request)
		// refused: another spelling of the key is refused (401), never
		// read as the key nor let through unread; it must not leak either.
		refused bool
	}
	probes := []probe{
		{"API key in X-Auth", keys, "SECRET-apikey-0123456789", func(r *http.Request) { r.Header.Set("X-Auth", "SECRET-apikey-0123456789") }, false},
		{"API key in X-Auth, in a chain", authn.Chain{bearer, keys}, "SECRET-apikey-0123456789", func(r *http.Request) { r.Header.Set("X-Auth", "SECRET-apikey-0123456789") }, false},
		{"API key in x_auth", keys, "SECRET-apikey-0123456789", func(r *http.Request) { r.Header["x_auth"] = []string{"SECRET-apikey-0123456789"} }, true},
		{"API key in X_AUTH, in a chain", authn.Chain{bearer, keys}, "SECRET-apikey-0123456789", func(r *http.Request) { r.Header["X_AUTH"] = []string{"SECRET-apikey-0123456789"} }, true},
		{"OIDC bearer", bearer, token, func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }, false},
		{"OIDC bearer in a chain", authn.Chain{keys, bearer}, token, func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }, false},
		{"proxy access token", proxy, "SECRET-proxy-token", func(r *http.Request) {
			r.Header.Set("X-Forwarded-User", "alice")
			r.Header.Set("X-Forwarded-Access-Token", "SECRET-proxy-token")
		}, false},
		{"proxy access token, other spelling", proxy, "SECRET-proxy-token", func(r *http.Request) {
			r.Header.Set("X-Forwarded-User", "alice")
			r.Header["x_auth_request_access_token"] = []string{"SECRET-proxy-token"}
		}, false},
		{"session cookie my-session", authn.Chain{keys, browser}, "SECRET-session", func(r *http.Request) {
			r.Header.Set("X-Auth", "SECRET-apikey-0123456789")
			r.Header.Set("Cookie", "theme=dark; my-session=SECRET-session; my-session.1=SECRET-session")
		}, false},
		{"custom header", customAuth{}, "SECRET-custom", func(r *http.Request) { r.Header.Set("X-Custom-Token", "SECRET-custom") }, false},
		{"custom cookie", customAuth{}, "SECRET-cookie", func(r *http.Request) {
			r.Header.Set("Cookie", "theme=dark; sid=SECRET-cookie; sid.1=SECRET-cookie")
		}, false},
		{"custom query parameter", customAuth{}, "SECRET-query", func(r *http.Request) { r.URL.RawQuery = "page=2&sig=SECRET-query" }, false},
	}
	through := []string{}
	for _, p := range probes {
		for _, inputCookies := range []bool{false, true} {
			var logs bytes.Buffer
			logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			dl := &recorder{}
			var mu sync.Mutex
			var got *http.Request
			next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				got = r
				mu.Unlock()
			})
			cfg := authz.Config{Authenticator: p.auth, Evaluator: engine(t, "testdata/regoguard"), Logger: logger, AccessLog: logger,
				DecisionLogger: dl, LogInput: true, DecisionLogLevel: slog.LevelInfo, AllowAnonymous: true}
			if inputCookies {
				cfg.InputHeaders = []string{"Cookie"}
			}
			m, err := authz.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest("GET", "/api/x", nil)
			p.edit(r)
			w := httptest.NewRecorder()
			m.Handler(next).ServeHTTP(w, r)
			name := fmt.Sprintf("%s (Cookie in the input: %v)", p.name, inputCookies)
			if p.refused {
				if got != nil || w.Code != http.StatusUnauthorized {
					through = append(through, fmt.Sprintf("%s: %d, want 401", name, w.Code))
				}
				if strings.Contains(logs.String(), p.secret) || strings.Contains(w.Body.String(), p.secret) {
					through = append(through, name+": a log or the answer holds the credential")
				}
				continue
			}
			if got == nil {
				through = append(through, fmt.Sprintf("%s: refused with %d", name, w.Code))
				continue
			}
			var fwd strings.Builder
			_ = got.Header.Write(&fwd)
			fwd.WriteString(got.URL.String() + " " + got.RequestURI)
			if strings.Contains(fwd.String(), p.secret) {
				through = append(through, name+": the handler got the credential")
			}
			if strings.Contains(got.Header.Get("Cookie"), "theme=dark") != strings.Contains(r.Header.Get("Cookie"), "theme=dark") {
				through = append(through, name+": another cookie was lost on the way")
			}
			if len(dl.events) != 1 {
				through = append(through, fmt.Sprintf("%s: %d decision events", name, len(dl.events)))
				continue
			}
			ev, _ := json.Marshal(dl.events[0].Input)
			if strings.Contains(string(ev), p.secret) {
				through = append(through, name+": the decision event holds the credential")
			}
			if strings.Contains(logs.String(), p.secret) {
				through = append(through, name+": the decision line or access log holds the credential")
			}
			if !strings.Contains(logs.String(), `"msg":"request"`) && !strings.Contains(logs.String(), "latency") {
				through = append(through, name+": no access log line")
			}
		}
	}
	t.Logf("%d declared-credential probes", 2*len(probes))
	if len(through) > 0 {
		t.Errorf("%d declared-credential probes got through:\n%s", len(through), strings.Join(through, "\n"))
	}
}

// Every authenticator of package authn says where it reads credentials;
// a Chain says what its members read.
func TestCredentialsOf(t *testing.T) {
	keys, err := authn.NewAPIKeys(authn.APIKeyConfig{Header: "X-Auth", Keys: []authn.APIKey{{Key: "k-0123456789abcdef", Subject: "a"}}})
	if err != nil {
		t.Fatal(err)
	}
	got := authn.CredentialsOf(authn.Chain{keys, customAuth{}, authn.None(quietLogger())})
	if fmt.Sprint(got.Headers) != "[X-Auth X-Custom-Token]" || fmt.Sprint(got.Cookies) != "[sid]" || fmt.Sprint(got.Query) != "[sig]" {
		t.Errorf("CredentialsOf(chain) = %+v", got)
	}
	if c := authn.CredentialsOf(authn.None(quietLogger())); len(c.Headers)+len(c.Cookies)+len(c.Query) != 0 {
		t.Errorf("None reads %+v", c)
	}
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
