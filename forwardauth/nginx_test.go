package forwardauth_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/authz"
	"github.com/regoguard/regoguard/forwardauth"
	"github.com/regoguard/regoguard/internal/testnginx"
	"github.com/regoguard/regoguard/policy"
)

const testPolicy = `package httpapi.authz

default allow := false

allow if {
	input.method == "GET"
	startswith(input.path, "/api/")
	input.user.authenticated
}

allow if input.user.sub == "admin"

allow if input.path == "/public"

allow if {
	input.path == "/where"
	input.host == "app.example"
	input.user.authenticated
}

allow if {
	input.path == "/secure"
	input.scheme == "https"
	input.user.authenticated
}

allow if {
	input.path == "/spoof"
	input.headers["x-forwarded-user"] == "admin"
}

status := 401 if input.path == "/teapot"

headers["X-Policy"] := "seen" if input.path == "/teapot"
`

// setup returns a forward-auth server judging with testPolicy, API keys
// "reader-key-0123456789" (subject reader) and "admin-key-0123456789" (admin), and a challenger
// that sends browsers to log in.
func setup(t *testing.T, trusted ...string) (*httptest.Server, *forwardauth.Handler) {
	t.Helper()
	ctx := context.Background()
	p, err := policy.Parse(map[string]string{"p.rego": testPolicy}, nil)
	if err != nil {
		t.Fatal(err)
	}
	engine, err := policy.New(ctx, policy.Config{}, p)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := authn.NewAPIKeys(authn.APIKeyConfig{Keys: []authn.APIKey{
		{Key: "reader-key-0123456789", Subject: "reader", Claims: map[string]any{"groups": []any{"staff"}}},
		{Key: "admin-key-0123456789", Subject: "admin"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	guard, err := authz.New(authz.Config{
		Authenticator: authn.Chain{keys, browserLogin{}},
		Evaluator:     engine,
		Logger:        slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(trusted) == 0 {
		trusted = []string{"127.0.0.1"}
	}
	h, err := forwardauth.New(forwardauth.Config{Guard: guard, TrustedProxies: trusted, DirectOnly: []string{"/oauth2/"}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/oauth2/login", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://idp.example/authorize?rd="+url.QueryEscape(r.URL.Query().Get("rd")), http.StatusFound)
	})
	mux.Handle("/", h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, h
}

// browserLogin is a Challenger standing for the browser login: it never
// authenticates, and redirects a browser to /oauth2/login.
type browserLogin struct{}

func (browserLogin) Authenticate(*http.Request) (*authn.Identity, error) {
	return nil, authn.ErrNoCredential
}

func (browserLogin) Challenge(w http.ResponseWriter, r *http.Request) bool {
	if !strings.Contains(r.Header.Get("Accept"), "text/html") {
		return false
	}
	http.Redirect(w, r, "/oauth2/login?rd="+url.QueryEscape(r.URL.RequestURI()), http.StatusFound)
	return true
}

// upstream answers with the identity headers it was given.
func upstream(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "user=%s groups=%s path=%s", r.Header.Get("X-User"), r.Header.Get("X-Groups"), r.URL.RequestURI())
	}))
	t.Cleanup(srv.Close)
	return srv
}

// nginxConf is the README's nginx configuration.
func nginxConf(auth, app string) string {
	return fmt.Sprintf(`
        location / {
            auth_request /_regoguard;
            auth_request_set $user   $upstream_http_x_auth_request_user;
            auth_request_set $groups $upstream_http_x_auth_request_groups;
            proxy_set_header X-User   $user;
            proxy_set_header X-Groups $groups;
            error_page 401 = @login;
            proxy_pass %[2]s;
        }
        location = /_regoguard {
            internal;
            proxy_pass %[1]s;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-Method $request_method;
            proxy_set_header X-Original-URI $request_uri;
            proxy_set_header X-Forwarded-Host $host;
            proxy_set_header X-Forwarded-Proto $scheme;
        }
        location @login {
            if ($http_accept ~* "text/html") {
                return 302 /oauth2/login?rd=$request_uri;
            }
            return 401;
        }
        location /oauth2/ {
            proxy_pass %[1]s;
            proxy_set_header Host $host;
        }
`, auth, app)
}

func TestNginxAuthRequest(t *testing.T) {
	auth, _ := setup(t)
	app := upstream(t)
	ngx := testnginx.Start(t, nginxConf(auth.URL, app.URL))
	client := testnginx.Client()

	do := func(method, path string, headers ...string) (int, string, http.Header) {
		t.Helper()
		req, err := http.NewRequest(method, ngx.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(headers); i += 2 {
			if headers[i] == "Host" {
				req.Host = headers[i+1]
				continue
			}
			req.Header.Add(headers[i], headers[i+1])
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}

	cases := []struct {
		name, method, path string
		headers            []string
		status             int
		body               string
	}{
		{"no credential", "GET", "/api/orders", nil, 401, ""},
		{"reader reads", "GET", "/api/orders?x=1", []string{"X-API-Key", "reader-key-0123456789"}, 200, "user=reader groups=staff path=/api/orders?x=1"},
		{"reader may not delete", "DELETE", "/api/orders", []string{"X-API-Key", "reader-key-0123456789"}, 403, ""},
		{"admin deletes", "DELETE", "/api/orders", []string{"X-API-Key", "admin-key-0123456789"}, 200, "user=admin groups= path=/api/orders"},
		{"bad key", "GET", "/api/orders", []string{"X-API-Key", "nope"}, 401, ""},
		{"public, anonymous is challenged", "GET", "/public", nil, 401, ""},
		{"the host and scheme nginx saw", "GET", "/where", []string{"X-API-Key", "reader-key-0123456789", "Host", "app.example:8443"}, 200, "user=reader"},
		{"a spoofed identity is not the caller", "DELETE", "/api/orders", []string{"X-API-Key", "reader-key-0123456789", "X-Auth-Request-User", "admin", "X-Forwarded-User", "admin"}, 403, ""},
		{"a spoofed identity never reaches the input", "GET", "/spoof", []string{"X-API-Key", "reader-key-0123456789", "X-Forwarded-User", "admin"}, 403, ""},
		{"the client's X-Forwarded-Method is not believed", "DELETE", "/api/orders", []string{"X-API-Key", "reader-key-0123456789", "X-Forwarded-Method", "GET"}, 500, ""},
		{"the client's X-Forwarded-Uri is not believed", "GET", "/admin", []string{"X-API-Key", "reader-key-0123456789", "X-Forwarded-Uri", "/api/orders"}, 500, ""},
		{"dot segments in the original URI", "GET", "/api/%2e%2e/admin", []string{"X-API-Key", "reader-key-0123456789"}, 500, ""},
		{"the policy's status", "GET", "/teapot", []string{"X-API-Key", "reader-key-0123456789"}, 401, ""},
		{"login routes are not judged", "GET", "/oauth2/login?rd=/x", nil, 302, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, body, _ := do(c.method, c.path, c.headers...)
			if status != c.status {
				t.Fatalf("status %d, want %d (body %q)", status, c.status, body)
			}
			if c.body != "" && !strings.HasPrefix(body, c.body) {
				t.Fatalf("upstream got %q, want %q", body, c.body)
			}
		})
	}

	t.Run("a browser is sent to log in and comes back", func(t *testing.T) {
		status, _, h := do("GET", "/api/orders?page=2", "Accept", "text/html")
		if status != http.StatusFound || !strings.HasSuffix(h.Get("Location"), "/oauth2/login?rd=/api/orders?page=2") {
			t.Fatalf("status %d, Location %q: want 302 to /oauth2/login?rd=/api/orders?page=2", status, h.Get("Location"))
		}
		loc, err := url.Parse(h.Get("Location"))
		if err != nil {
			t.Fatal(err)
		}
		status, _, h = do("GET", loc.RequestURI(), "Accept", "text/html")
		if status != http.StatusFound || !strings.Contains(h.Get("Location"), "rd=%2Fapi%2Forders%3Fpage%3D2") {
			t.Fatalf("login start: status %d, Location %q", status, h.Get("Location"))
		}
	})
}

// The trust rules, asked directly: what a proxy describes is believed only
// from a trusted address, and two descriptions that disagree are refused.
func TestTrust(t *testing.T) {
	untrusted, _ := setup(t, "10.0.0.0/8")
	trusted, _ := setup(t, "127.0.0.0/8")
	client := testnginx.Client()
	ask := func(base string, method string, headers ...string) int {
		t.Helper()
		req, _ := http.NewRequest(method, base+"/_auth", nil)
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Add(headers[i], headers[i+1])
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	cases := []struct {
		name    string
		base    string
		method  string
		headers []string
		want    int
	}{
		{"nginx headers from an untrusted address", untrusted.URL, "GET", []string{"X-Original-URI", "/api/x", "X-API-Key", "reader-key-0123456789"}, 403},
		{"Traefik headers from an untrusted address", untrusted.URL, "GET", []string{"X-Forwarded-Uri", "/api/x", "X-API-Key", "reader-key-0123456789"}, 403},
		{"an underscore spelling from an untrusted address", untrusted.URL, "GET", []string{"X_Original_URI", "/api/x", "X-API-Key", "reader-key-0123456789"}, 403},
		{"nginx, trusted", trusted.URL, "GET", []string{"X-Original-URI", "/api/x", "X-API-Key", "reader-key-0123456789"}, 200},
		{"Traefik, trusted", trusted.URL, "GET", []string{"X-Forwarded-Method", "GET", "X-Forwarded-Uri", "/secure", "X-Forwarded-Host", "app", "X-Forwarded-Proto", "https", "X-API-Key", "reader-key-0123456789"}, 200},
		{"Traefik, plain http", trusted.URL, "GET", []string{"X-Forwarded-Method", "GET", "X-Forwarded-Uri", "/secure", "X-Forwarded-Proto", "http", "X-API-Key", "reader-key-0123456789"}, 403},
		{"Traefik describes a DELETE", trusted.URL, "GET", []string{"X-Forwarded-Method", "DELETE", "X-Forwarded-Uri", "/api/x", "X-API-Key", "reader-key-0123456789"}, 403},
		{"X-Original-Method wins only when both agree", trusted.URL, "GET", []string{"X-Original-Method", "DELETE", "X-Forwarded-Method", "GET", "X-Original-URI", "/api/x", "X-API-Key", "admin-key-0123456789"}, 400},
		{"URIs that disagree", trusted.URL, "GET", []string{"X-Original-URI", "/api/x", "X-Forwarded-Uri", "/api/y", "X-API-Key", "reader-key-0123456789"}, 400},
		{"a repeated X-Original-URI", trusted.URL, "GET", []string{"X-Original-URI", "/api/x", "X-Original-URI", "/admin", "X-API-Key", "reader-key-0123456789"}, 400},
		{"two spellings of X-Original-URI", trusted.URL, "GET", []string{"X-Original-URI", "/api/x", "X_Original_URI", "/admin", "X-API-Key", "reader-key-0123456789"}, 400},
		{"a relative original URI", trusted.URL, "GET", []string{"X-Original-URI", "api/x", "X-API-Key", "reader-key-0123456789"}, 400},
		{"a scheme that is not http(s)", trusted.URL, "GET", []string{"X-Original-URI", "/api/x", "X-Forwarded-Proto", "gopher", "X-API-Key", "reader-key-0123456789"}, 400},
		{"a host list", trusted.URL, "GET", []string{"X-Original-URI", "/api/x", "X-Forwarded-Host", "a.example, b.example", "X-API-Key", "reader-key-0123456789"}, 400},
		{"ingress-nginx X-Original-URL", trusted.URL, "GET", []string{"X-Original-URL", "https://app.example/where", "X-API-Key", "reader-key-0123456789"}, 200},
		{"X-Original-URL and a Host that disagree", trusted.URL, "GET", []string{"X-Original-URL", "https://app.example/where", "X-Forwarded-Host", "evil.example", "X-API-Key", "reader-key-0123456789"}, 400},
		{"a login route described by a proxy", trusted.URL, "GET", []string{"X-Original-URI", "/oauth2/callback?code=x"}, 403},
		{"no description: judged as itself", untrusted.URL, "GET", []string{"X-API-Key", "reader-key-0123456789"}, 403},
	}
	// Every description that must not be believed is a probe: count those
	// that got through (200 where a refusal was due); it must be 0.
	through := 0
	for _, c := range cases {
		got := ask(c.base, c.method, c.headers...)
		if got != c.want {
			t.Errorf("%s: status %d, want %d", c.name, got, c.want)
			if got == http.StatusOK {
				through++
			}
		}
	}
	if through > 0 {
		t.Errorf("%d untrusted or contradictory descriptions got through", through)
	}
}
