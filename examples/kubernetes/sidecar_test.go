package kubernetes

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/oauth2-proxy/mockoidc"
	"github.com/open-policy-agent/opa/v1/bundle"
	"golang.org/x/oauth2"
)

// The sidecar starts with exactly the manifest's arguments and environment
// variable names (only addresses and secrets replaced by loopback test
// servers and test values), becomes ready once it has the bundle built from
// the manifest's policy, and judges bearer tokens of a real OpenID Provider
// with it, answering a deny with 401 as the manifest asks.
func TestSidecarRunsWithTheManifest(t *testing.T) {
	m, _ := load(t)
	rg := findContainer(t, m.get(t, "Deployment", "notes").Spec.Template.Spec.Containers, "regoguard")
	bin := buildRegoguard(t)
	op := startOP(t)
	bundles := serveBundle(t, m.get(t, "ConfigMap", "authz-policy").Data)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s", r.Header.Get("X-Auth-Request-User"))
	}))
	t.Cleanup(upstream.Close)

	listen, admin := freeAddr(t), freeAddr(t)
	args := replaceFlags(t, rg.Args, map[string]string{
		"listen":             listen,
		"admin-listen":       admin,
		"upstream":           upstream.URL,
		"bundle":             bundles.URL + "/bundles/authz.tar.gz",
		"bundle-persist-dir": t.TempDir(),
	})
	env := sidecarEnv(t, m, rg, map[string]string{
		"OIDC_WELL_KNOWN":       op.Issuer() + "/.well-known/openid-configuration",
		"OIDC_CLIENT_ID":        op.Config().ClientID,
		"OIDC_CLIENT_SECRET":    op.Config().ClientSecret,
		"REGOGUARD_SESSION_KEY": strings.Repeat("ab", 32),
	})
	logs := startSidecar(t, bin, args, env)
	waitReady(t, "http://"+admin+"/readyz", logs)

	staff := idToken(t, op, &mockoidc.MockUser{Subject: "sam", Groups: []string{"staff"}})
	editor := idToken(t, op, &mockoidc.MockUser{Subject: "eve", Groups: []string{"editors"}})
	cases := []struct {
		method, token string
		status        int
		body          string
	}{
		{"GET", staff, 200, "hello sam"},
		{"POST", staff, 401, ""},
		{"POST", editor, 200, "hello eve"},
		{"GET", "", 401, ""},
		{"GET", "not-a-token", 401, ""},
	}
	for _, c := range cases {
		req, _ := http.NewRequest(c.method, "http://"+listen+"/notes", nil)
		req.Header.Set("Accept", "application/json")
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status || (c.body != "" && string(body) != c.body) {
			t.Errorf("%s /notes: %d %q, want %d %q\n%s", c.method, resp.StatusCode, body, c.status, c.body, logs)
		}
	}
}

// buildRegoguard builds the command into a temporary directory, unless
// .ci/run has built it once for every module already.
func buildRegoguard(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("TEST_REGOGUARD_BINARY"); bin != "" {
		return bin
	}
	bin := filepath.Join(t.TempDir(), "regoguard")
	// The command is a module of its own, whose go.sum covers it.
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = "../../cmd/regoguard"
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building regoguard: %v\n%s", err, out)
	}
	return bin
}

func startOP(t *testing.T) *mockoidc.MockOIDC {
	t.Helper()
	op, err := mockoidc.Run()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = op.Shutdown() })
	return op
}

// idToken runs the authorization code flow at op for user and returns the
// ID token.
func idToken(t *testing.T, op *mockoidc.MockOIDC, user *mockoidc.MockUser) string {
	t.Helper()
	op.QueueUser(user)
	cfg := op.Config()
	conf := oauth2.Config{ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, RedirectURL: "http://127.0.0.1:1/cb",
		Endpoint: oauth2.Endpoint{AuthURL: op.AuthorizationEndpoint(), TokenURL: op.TokenEndpoint(), AuthStyle: oauth2.AuthStyleInParams},
		Scopes:   []string{oidc.ScopeOpenID, "groups"}}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(conf.AuthCodeURL("state", oidc.Nonce("nonce")))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if err != nil {
		t.Fatalf("authorize: %s %v", resp.Status, err)
	}
	tok, err := conf.Exchange(context.Background(), loc.Query().Get("code"))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		t.Fatal("no ID token")
	}
	return raw
}

// serveBundle serves, at any path, the bundle that `opa build` makes of the
// policy files, built here by OPA's own bundle writer.
func serveBundle(t *testing.T, files map[string]string) *httptest.Server {
	t.Helper()
	b := bundle.Bundle{Manifest: bundle.Manifest{Revision: "test"}, Data: map[string]any{}}
	for name, src := range files {
		b.Modules = append(b.Modules, bundle.ModuleFile{URL: "/" + name, Path: "/" + name, Raw: []byte(src)})
	}
	var buf bytes.Buffer
	if err := bundle.NewWriter(&buf).Write(b); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/gzip")
		_, _ = w.Write(buf.Bytes())
	}))
	t.Cleanup(srv.Close)
	return srv
}

// replaceFlags returns args with the values of the named --name=value flags
// replaced; every name must be present.
func replaceFlags(t *testing.T, args []string, values map[string]string) []string {
	t.Helper()
	out := append([]string(nil), args...)
	seen := map[string]bool{}
	for i, a := range out {
		name, _, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if v, ok := values[name]; ok {
			out[i] = "--" + name + "=" + v
			seen[name] = true
		}
	}
	for name := range values {
		if !seen[name] {
			t.Fatalf("the manifest has no --%s", name)
		}
	}
	return out
}

// sidecarEnv is the container's environment as Kubernetes would set it:
// the ConfigMap of envFrom, then env, with the values in replace (each must
// be a variable the manifest sets) standing in for cluster addresses and
// secrets. Only PATH and HOME come from the test's own environment.
func sidecarEnv(t *testing.T, m manifests, c container, replace map[string]string) []string {
	t.Helper()
	vars := map[string]string{}
	for _, ef := range c.EnvFrom {
		for k, v := range m.get(t, "ConfigMap", ef.ConfigMapRef.Name).Data {
			vars[k] = v
		}
	}
	for _, e := range c.Env {
		vars[e.Name] = e.Value
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			ref := e.ValueFrom.SecretKeyRef
			vars[e.Name] = m.get(t, "Secret", ref.Name).StringData[ref.Key]
		}
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range replace {
		if _, ok := vars[k]; !ok {
			t.Fatalf("the manifest does not set %s", k)
		}
		vars[k] = v
	}
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	return env
}

// syncBuffer collects a process's output for failure messages.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func startSidecar(t *testing.T, bin string, args, env []string) *syncBuffer {
	t.Helper()
	logs := &syncBuffer{}
	cmd := exec.Command(bin, args...)
	cmd.Env, cmd.Stdout, cmd.Stderr = env, logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	return logs
}

// waitReady polls the readiness endpoint as the kubelet would.
func waitReady(t *testing.T, url string, logs *syncBuffer) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s never answered 200\n%s", url, logs)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
