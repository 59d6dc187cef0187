package main_test

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
)

func TestServeForwardAuth(t *testing.T) {
	keys := writeFile(t, "keys.yaml", keysFile)
	s := startServe(t, nil, "--listen", "127.0.0.1:0", "--forward-auth", "--trusted-proxy", "127.0.0.1/32",
		"--policy", "testdata/policy", "--api-keys", keys)
	alice := "alice-key-0123456789"
	cases := []struct {
		name    string
		headers map[string]string
		status  int
		user    string
	}{
		{"nginx describes a read", map[string]string{"X-Original-Method": "GET", "X-Original-URI": "/docs/1", "X-API-Key": alice}, 200, "alice"},
		{"Traefik describes a read", map[string]string{"X-Forwarded-Method": "GET", "X-Forwarded-Uri": "/docs/1", "X-Forwarded-Host": "app.example", "X-Forwarded-Proto": "https", "X-API-Key": alice}, 200, "alice"},
		{"nginx describes a write", map[string]string{"X-Original-Method": "POST", "X-Original-URI": "/docs", "X-API-Key": alice}, 403, ""},
		{"the trusted proxy's identity headers are the client's", map[string]string{"X-Original-URI": "/docs/1", "X-Auth-Request-User": "alice", "X-Forwarded-User": "alice", "X-Auth-Request-Groups": "reader"}, 401, ""},
		{"descriptions that disagree", map[string]string{"X-Original-Method": "POST", "X-Forwarded-Method": "GET", "X-Original-URI": "/docs", "X-API-Key": alice}, 400, ""},
	}
	for _, c := range cases {
		status, h, body := s.get(t, "GET", "/auth", c.headers)
		if status != c.status || h.Get("X-Auth-Request-User") != c.user {
			t.Errorf("%s: %d, user %q (%s); want %d, %q", c.name, status, h.Get("X-Auth-Request-User"), body, c.status, c.user)
		}
	}
}

const envoyPolicy = `package envoy.authz

default allow := false

allow if {
	input.attributes.request.http.method == "GET"
	input.parsed_path[0] == "people"
	input.attributes.request.http.headers["x-api-key"] != ""
}

result := {"allowed": allow, "headers": {"x-ext-auth-allow": "yes"}, "http_status": 418, "body": "no"}
`

var grpcLine = regexp.MustCompile(`ext_authz gRPC listening.*addr=([0-9.]+:[0-9]+)`)

func TestServeEnvoyExtAuthz(t *testing.T) {
	pol := writeFile(t, "envoy.rego", envoyPolicy)
	s := startServe(t, nil, "--listen", "127.0.0.1:0", "--forward-auth", "--trusted-proxy", "127.0.0.1/32",
		"--ext-authz-listen", "127.0.0.1:0", "--input-layout", "envoy", "--decision", "envoy/authz/result",
		"--no-authn", "--policy", pol)

	// Envoy's HTTP ext_authz: the original request, as the check's own.
	status, h, _ := s.get(t, "GET", "/people/1", map[string]string{"X-API-Key": "k"})
	if status != 200 || h.Get("X-Ext-Auth-Allow") != "yes" {
		t.Errorf("HTTP ext_authz allowed: %d %v", status, h)
	}
	status, _, body := s.get(t, "DELETE", "/people/1", map[string]string{"X-API-Key": "k"})
	if status != 418 || body != "no" {
		t.Errorf("HTTP ext_authz denied: %d %q, want the policy's 418 no", status, body)
	}

	// gRPC.
	m := grpcLine.FindStringSubmatch(s.logs.String())
	if m == nil {
		t.Fatalf("no gRPC listen line in\n%s", s.logs)
	}
	conn, err := grpc.NewClient(m[1], grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := authv3.NewAuthorizationClient(conn)
	check := func(method string) *authv3.CheckResponse {
		resp, err := client.Check(context.Background(), &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
			Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
				Method: method, Path: "/people/1", Host: "app", Headers: map[string]string{"x-api-key": "k"}}}}})
		if err != nil {
			t.Fatalf("Check: %v", err)
		}
		return resp
	}
	if resp := check("GET"); resp.GetStatus().GetCode() != int32(codes.OK) {
		t.Errorf("gRPC allowed: %v", resp)
	}
	if resp := check("DELETE"); resp.GetStatus().GetCode() != int32(codes.PermissionDenied) || resp.GetDeniedResponse().GetStatus().GetCode() != 418 {
		t.Errorf("gRPC denied: %v", resp)
	}
}

const authzenPolicy = `package authzen

default decision := false

decision if input.subject.id == "alice"

result := {"decision": decision, "context": {"why": "alice only"}}
`

func TestServeAuthZEN(t *testing.T) {
	pol := writeFile(t, "authzen.rego", authzenPolicy)
	keys := writeFile(t, "keys.yaml", keysFile)
	s := startServe(t, nil, "--listen", "127.0.0.1:0", "--authzen", "--api-keys", keys, "--policy", pol, "--decision", "authzen/result")
	post := func(body string) (int, map[string]any) {
		req, _ := http.NewRequest("POST", s.addr+"/access/v1/evaluations", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-API-Key", "bob-key-0123456789")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	status, out := post(`{"action":{"name":"read"},"resource":{"type":"doc","id":"1"},"options":{"evaluations_semantic":"permit_on_first_permit"},
		"evaluations":[{"subject":{"type":"user","id":"bob"}},{"subject":{"type":"user","id":"alice"}},{"subject":{"type":"user","id":"carol"}}]}`)
	evs, _ := out["evaluations"].([]any)
	if status != 200 || len(evs) != 2 || evs[1].(map[string]any)["decision"] != true {
		t.Fatalf("evaluations: %d %v", status, out)
	}
	if c := evs[0].(map[string]any)["context"].(map[string]any); c["why"] != "alice only" {
		t.Errorf("the policy's context: %v", c)
	}
}

func TestServeDecisionServiceBadConfig(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--forward-auth", "--no-authn", "--policy", "testdata/policy"}, "--trusted-proxy"},
		{[]string{"--forward-auth", "--trusted-proxy", "127.0.0.1", "--upstream", "http://127.0.0.1:1", "--no-authn", "--policy", "testdata/policy"}, "--upstream"},
		{[]string{"--ext-authz-listen", "127.0.0.1:0", "--no-authn", "--policy", "testdata/policy"}, "--input-layout envoy"},
		{[]string{"--authzen", "--forward-auth", "--trusted-proxy", "127.0.0.1", "--no-authn", "--policy", "testdata/policy"}, "--authzen"},
		{[]string{"--forward-auth", "--trusted-proxy", "127.0.0.1", "--body", "--no-authn", "--policy", "testdata/policy"}, "body"},
		{[]string{"--upstream", "http://127.0.0.1:1", "--input-layout", "envoy", "--no-authn", "--policy", "testdata/policy"}, "--input-layout envoy"},
	} {
		res := run(t, nil, append([]string{"serve", "--listen", "127.0.0.1:0"}, c.args...)...)
		if res.code != 2 || !strings.Contains(res.stderr, c.want) {
			t.Errorf("serve %v: exit %d, stderr %q; want 2 naming %s", c.args, res.code, res.stderr, c.want)
		}
	}
}
