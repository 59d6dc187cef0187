package extauthzgrpc_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/open-policy-agent/opa/v1/ast"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/authz"
	"github.com/regoguard/regoguard/extauthz"
	"github.com/regoguard/regoguard/extauthzgrpc"
	"github.com/regoguard/regoguard/policy"
)

// The policies below are opa-envoy-plugin's, as its documentation and
// examples give them (Rego v0, as they were written), unchanged.

// primerBool is the first policy of OPA's Envoy policy primer.
const primerBool = `package envoy.authz
import future.keywords

import input.attributes.request.http

default allow := false

allow if {
    is_token_valid
    action_allowed
}

is_token_valid if {
    token.valid
    now := time.now_ns() / 1000000000
    token.payload.nbf <= now
    now < token.payload.exp
}

action_allowed if {
    http.method == "GET"
    token.payload.role == "guest"
    glob.match("/people/*", ["/"], http.path)
}

action_allowed if {
    http.method == "GET"
    token.payload.role == "admin"
    glob.match("/people/*", ["/"], http.path)
}

action_allowed if {
    http.method == "POST"
    token.payload.role == "admin"
    glob.match("/people", ["/"], http.path)
    lower(input.parsed_body.firstname) != base64url.decode(token.payload.sub)
}


token := {"valid": valid, "payload": payload} if {
    [_, encoded] := split(http.headers.authorization, " ")
    [valid, _, payload] := io.jwt.decode_verify(encoded, {"secret": "secret"})
}
`

// primerObject is the primer's policy with additional controls, with the
// result object of its "Output Document" section.
const primerObject = `package envoy.authz
import future.keywords

import input.attributes.request.http

default allow := false

allow if {
    is_token_valid
    action_allowed
}

headers["x-ext-auth-allow"] := "yes"
headers["x-validated-by"] := "security-checkpoint"

request_headers_to_remove := ["one-auth-header", "another-auth-header"]

response_headers_to_add["x-foo"] := "bar"

status_code := 200 if {
  allow
} else := 401 {
  not is_token_valid
} else := 403

body := "Authentication Failed" if status_code == 401
body := "Unauthorized Request"  if status_code == 403

is_token_valid if {
    token.valid
    now := time.now_ns() / 1000000000
    token.payload.nbf <= now
    now < token.payload.exp
}

action_allowed if {
    http.method == "GET"
    token.payload.role == "guest"
    glob.match("/people/*", ["/"], http.path)
}

action_allowed if {
    http.method == "GET"
    token.payload.role == "admin"
    glob.match("/people/*", ["/"], http.path)
}

action_allowed if {
    http.method == "POST"
    token.payload.role == "admin"
    glob.match("/people", ["/"], http.path)
    lower(input.parsed_body.firstname) != base64url.decode(token.payload.sub)
}


token := {"valid": valid, "payload": payload} if {
    [_, encoded] := split(http.headers.authorization, " ")
    [valid, _, payload] := io.jwt.decode_verify(encoded, {"secret": "secret"})
}

result["allowed"] := allow
result["headers"] := headers
result["response_headers_to_add"] := response_headers_to_add
result["request_headers_to_remove"] := request_headers_to_remove
result["body"] := body
result["http_status"] := status_code
`

// istioReadme is the example policy of opa-envoy-plugin's README (the
// opa-istio days): basic credentials read from the authorization header.
const istioReadme = `package istio.authz

import input.attributes.request.http as http_request

default allow = false

allow {
    roles_for_user[r]
    required_roles[r]
}

roles_for_user[r] {
    r := user_roles[user_name][_]
}

required_roles[r] {
    perm := role_perms[r][_]
    perm.method = http_request.method
    perm.path = http_request.path
}

user_name = parsed {
    [_, encoded] := split(http_request.headers.authorization, " ")
    [parsed, _] := split(base64url.decode(encoded), ":")
}

user_roles = {
    "alice": ["guest"],
    "bob": ["admin"]
}

role_perms = {
    "guest": [
        {"method": "GET",  "path": "/productpage"},
    ],
    "admin": [
        {"method": "GET",  "path": "/productpage"},
        {"method": "GET",  "path": "/api/v1/products"},
    ],
}
`

// parsedQuery is the primer's parsed_path and parsed_query example.
const parsedQuery = `package envoy.authz
import future.keywords

default allow := false

allow if {
    input.parsed_path == ["people"]
    input.parsed_query.lang == ["en"]
    input.parsed_query.id == ["1", "2"]
}
`

// apiKeys is opa-envoy-plugin's API-key example with dynamic metadata.
const apiKeys = `package apikeys.policy

import future.keywords.if

default allow := false

allow if {
    has_key(data.daily, api_key)
}

allow if {
    has_key(data.full, api_key)
}

api_key := input.http_request.headers["api-key"]

http_status := 200 if {
  allow
} else := 403

body := "Unauthorized Request"  if http_status == 403

headers["x-ext-auth-allow"] := "yes" if {
    allow
}

request_headers_to_remove := ["api-key"]

dynamic_metadata["rateLimit"] := data.apikeys[api_key].metadata.rateLimit if {
	allow
}

# Helper function to check if a dictionary has a key
has_key(dict, k) {
    dict[k]
}
`

// client starts a Check server judging with the policy (Rego v0) at
// decision, authenticating nobody (the policy decides), and returns a real
// gRPC client of it over loopback TCP, and what the decision log got.
func client(t *testing.T, module, decision string, data map[string]any, auth authn.Authenticator) (authv3.AuthorizationClient, *events) {
	t.Helper()
	ctx := context.Background()
	p, err := policy.Loader{RegoVersion: ast.RegoV0}.Parse(map[string]string{"policy.rego": module}, data)
	if err != nil {
		t.Fatal(err)
	}
	engine, err := policy.New(ctx, policy.Config{Decision: decision, RegoVersion: ast.RegoV0, ResultParser: extauthz.ParseResult}, p)
	if err != nil {
		t.Fatal(err)
	}
	if auth == nil {
		auth = authn.None(slog.New(slog.DiscardHandler))
	}
	ev := &events{}
	guard, err := authz.New(authz.Config{
		Authenticator: auth, Evaluator: engine, Layout: authz.LayoutEnvoy,
		Logger: slog.New(slog.DiscardHandler), DecisionLogger: ev,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := extauthzgrpc.New(extauthzgrpc.Config{Guard: guard})
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	srv.Register(g)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = g.Serve(ln) }()
	t.Cleanup(g.Stop)
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return authv3.NewAuthorizationClient(conn), ev
}

type events struct {
	mu  sync.Mutex
	evs []policy.DecisionEvent
}

func (e *events) LogDecision(_ context.Context, ev policy.DecisionEvent) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.evs = append(e.evs, ev)
	return nil
}

func (e *events) all() []policy.DecisionEvent {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]policy.DecisionEvent(nil), e.evs...)
}

// hs256 is a JWT signed with "secret", as the primer's tokens are.
func hs256(t *testing.T, claims map[string]any) string {
	t.Helper()
	enc := base64.RawURLEncoding
	h := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	b, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	signing := h + "." + enc.EncodeToString(b)
	mac := hmac.New(sha256.New, []byte("secret"))
	mac.Write([]byte(signing))
	return signing + "." + enc.EncodeToString(mac.Sum(nil))
}

func check(method, path string, headers map[string]string, body string) *authv3.CheckRequest {
	h := map[string]string{":authority": "app.example", ":method": method, ":path": path}
	for k, v := range headers {
		h[k] = v
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: "10.0.0.7", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 61402}}}}},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Id: "13519049518330544501", Method: method, Path: path, Host: "app.example", Protocol: "HTTP/1.1",
			Headers: h, Body: body, Size: int64(len(body)),
		}},
	}}
}

func TestPrimerBoolean(t *testing.T) {
	c, _ := client(t, primerBool, "envoy/authz/allow", nil, nil)
	now := time.Now().Unix()
	admin := hs256(t, map[string]any{"role": "admin", "sub": base64.URLEncoding.EncodeToString([]byte("bob")), "nbf": now - 60, "exp": now + 600})
	guest := hs256(t, map[string]any{"role": "guest", "sub": "YWxpY2U=", "nbf": now - 60, "exp": now + 600})
	expired := hs256(t, map[string]any{"role": "admin", "sub": "Ym9i", "nbf": now - 600, "exp": now - 60})
	json := map[string]string{"content-type": "application/json"}
	cases := []struct {
		name   string
		req    *authv3.CheckRequest
		allow  bool
		status int
	}{
		{"guest reads people", check("GET", "/people/1", map[string]string{"authorization": "Bearer " + guest}, ""), true, 0},
		{"guest may not add", check("POST", "/people", merge(json, "authorization", "Bearer "+guest), `{"firstname":"Charlie"}`), false, 403},
		{"admin adds someone else", check("POST", "/people", merge(json, "authorization", "Bearer "+admin), `{"firstname":"Charlie"}`), true, 0},
		{"admin may not add himself", check("POST", "/people", merge(json, "authorization", "Bearer "+admin), `{"firstname":"Bob"}`), false, 403},
		{"an expired token", check("GET", "/people/1", map[string]string{"authorization": "Bearer " + expired}, ""), false, 403},
		{"a forged token", check("GET", "/people/1", map[string]string{"authorization": "Bearer " + guest[:len(guest)-2] + "AA"}, ""), false, 403},
		{"no token", check("GET", "/people/1", nil, ""), false, 403},
		{"a body that is not JSON is refused, not judged as absent", check("POST", "/people", merge(json, "authorization", "Bearer "+admin), `{"firstname":`), false, 400},
		{"a repeated key is refused", check("POST", "/people", merge(json, "authorization", "Bearer "+admin), `{"firstname":"Charlie","firstname":"Bob"}`), false, 400},
		{"dot segments are refused", check("GET", "/people/../admin", map[string]string{"authorization": "Bearer " + guest}, ""), false, 400},
	}
	for _, c2 := range cases {
		t.Run(c2.name, func(t *testing.T) {
			resp, err := c.Check(context.Background(), c2.req)
			if err != nil {
				t.Fatalf("Check: a gRPC error, never wanted: %v", err)
			}
			if got := resp.GetStatus().GetCode() == int32(codes.OK); got != c2.allow {
				t.Fatalf("allowed %v, want %v (status %v, denied %v)", got, c2.allow, resp.GetStatus(), resp.GetDeniedResponse())
			}
			if !c2.allow && int(resp.GetDeniedResponse().GetStatus().GetCode()) != c2.status {
				t.Fatalf("HTTP status %d, want %d", resp.GetDeniedResponse().GetStatus().GetCode(), c2.status)
			}
			if !c2.allow && c2.status == 403 && resp.GetStatus().GetCode() != int32(codes.PermissionDenied) {
				t.Fatalf("gRPC status %v, want PERMISSION_DENIED", resp.GetStatus())
			}
		})
	}
}

func merge(m map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

func TestPrimerObject(t *testing.T) {
	c, ev := client(t, primerObject, "envoy/authz/result", nil, nil)
	now := time.Now().Unix()
	guest := hs256(t, map[string]any{"role": "guest", "sub": "YWxpY2U=", "nbf": now - 60, "exp": now + 600})

	resp, err := c.Check(context.Background(), check("GET", "/people/1", map[string]string{
		"authorization": "Bearer " + guest, "one-auth-header": "x", "x-forwarded-user": "admin"}, ""))
	if err != nil {
		t.Fatal(err)
	}
	ok := resp.GetOkResponse()
	if resp.GetStatus().GetCode() != int32(codes.OK) || ok == nil {
		t.Fatalf("not allowed: %v", resp)
	}
	got := map[string]string{}
	for _, h := range ok.GetHeaders() {
		got[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
	}
	if got["x-ext-auth-allow"] != "yes" || got["x-validated-by"] != "security-checkpoint" {
		t.Errorf("upstream headers %v, want the policy's", got)
	}
	removed := strings.Join(ok.GetHeadersToRemove(), ",")
	for _, h := range []string{"one-auth-header", "another-auth-header", "x-forwarded-user"} {
		if !strings.Contains(removed, h) {
			t.Errorf("headers to remove %q lack %s", removed, h)
		}
	}
	if len(ok.GetResponseHeadersToAdd()) != 1 || ok.GetResponseHeadersToAdd()[0].GetHeader().GetKey() != "x-foo" {
		t.Errorf("response headers to add %v, want x-foo", ok.GetResponseHeadersToAdd())
	}

	resp, err = c.Check(context.Background(), check("GET", "/people/1", map[string]string{"authorization": "Bearer nonsense.token.here"}, ""))
	if err != nil {
		t.Fatal(err)
	}
	d := resp.GetDeniedResponse()
	if resp.GetStatus().GetCode() != int32(codes.PermissionDenied) || d.GetStatus().GetCode() != 401 || d.GetBody() != "Authentication Failed" {
		t.Fatalf("denied: status %v, http %v, body %q; want PERMISSION_DENIED, 401, Authentication Failed", resp.GetStatus(), d.GetStatus(), d.GetBody())
	}
	var hdr bool
	for _, h := range d.GetHeaders() {
		hdr = hdr || h.GetHeader().GetKey() == "x-ext-auth-allow"
	}
	if !hdr {
		t.Errorf("denied response headers %v lack the policy's", d.GetHeaders())
	}

	// The decision log has the policy's input, without the token.
	evs := ev.all()
	if len(evs) != 2 {
		t.Fatalf("%d decision events, want 2", len(evs))
	}
	for _, e := range evs {
		s := e.Input.String()
		if strings.Contains(s, "Bearer") || strings.Contains(s, guest) {
			t.Errorf("decision event %s holds the token: %s", e.ID, s)
		}
		if !strings.Contains(s, `"parsed_path"`) {
			t.Errorf("decision event %s lacks the input: %s", e.ID, s)
		}
	}
}

func TestIstioReadme(t *testing.T) {
	c, _ := client(t, istioReadme, "istio/authz/allow", nil, nil)
	basic := func(u string) map[string]string {
		return map[string]string{"authorization": "Basic " + base64.URLEncoding.EncodeToString([]byte(u+":password"))}
	}
	for _, c2 := range []struct {
		user, path string
		allow      bool
	}{{"alice", "/productpage", true}, {"alice", "/api/v1/products", false}, {"bob", "/api/v1/products", true}, {"eve", "/productpage", false}} {
		resp, err := c.Check(context.Background(), check("GET", c2.path, basic(c2.user), ""))
		if err != nil {
			t.Fatal(err)
		}
		if got := resp.GetStatus().GetCode() == int32(codes.OK); got != c2.allow {
			t.Errorf("%s %s: allowed %v, want %v", c2.user, c2.path, got, c2.allow)
		}
	}
}

func TestParsedQuery(t *testing.T) {
	c, _ := client(t, parsedQuery, "envoy/authz/allow", nil, nil)
	for path, allow := range map[string]bool{"/people?lang=en&id=1&id=2": true, "/people?lang=fr&id=1&id=2": false, "/people/x?lang=en&id=1&id=2": false} {
		resp, err := c.Check(context.Background(), check("GET", path, nil, ""))
		if err != nil {
			t.Fatal(err)
		}
		if got := resp.GetStatus().GetCode() == int32(codes.OK); got != allow {
			t.Errorf("%s: allowed %v, want %v", path, got, allow)
		}
	}
}

// The API-key example reads input.http_request, a field of another
// integration (Gloo): under Envoy's layout its keys are never found, and
// every request is refused with its own 403 and body.
func TestAPIKeyExampleDynamicMetadata(t *testing.T) {
	module := strings.Replace(apiKeys, "input.http_request.headers", "input.attributes.request.http.headers", 1)
	module += "\nresult := {\"allowed\": allow, \"headers\": headers, \"request_headers_to_remove\": request_headers_to_remove, \"http_status\": http_status, \"dynamic_metadata\": dynamic_metadata} if allow\nresult := {\"allowed\": false, \"http_status\": http_status, \"body\": body} if not allow\n"
	data := map[string]any{
		"daily":   map[string]any{"k-daily": true},
		"full":    map[string]any{},
		"apikeys": map[string]any{"k-daily": map[string]any{"metadata": map[string]any{"rateLimit": 10}}},
	}
	c, _ := client(t, module, "apikeys/policy/result", data, nil)
	resp, err := c.Check(context.Background(), check("GET", "/x", map[string]string{"api-key": "k-daily"}, ""))
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetStatus().GetCode() != int32(codes.OK) {
		t.Fatalf("not allowed: %v", resp)
	}
	want, _ := structpb.NewStruct(map[string]any{"rateLimit": 10.0})
	if !reflect.DeepEqual(resp.GetDynamicMetadata().AsMap(), want.AsMap()) {
		t.Errorf("dynamic metadata %v, want %v", resp.GetDynamicMetadata(), want)
	}
	resp, err = c.Check(context.Background(), check("GET", "/x", map[string]string{"api-key": "nope"}, ""))
	if err != nil {
		t.Fatal(err)
	}
	if d := resp.GetDeniedResponse(); d.GetStatus().GetCode() != 403 || d.GetBody() != "Unauthorized Request" {
		t.Errorf("denied %v, want 403 Unauthorized Request", d)
	}
}

// The input is opa-envoy-plugin's: the protojson form of the CheckRequest
// and its parsed fields, built here the way opa-envoy-plugin builds it.
func TestInputIsOPAEnvoyPlugins(t *testing.T) {
	md, _ := structpb.NewStruct(map[string]any{"sub": "alice", "n": 3.0})
	req := check("POST", "/people?lang=en&id=1&id=2", map[string]string{"content-type": "application/json", "content-length": "24", "x-request-id": "r1"}, `{"firstname":"Charlie"}`+" ")
	req.Attributes.MetadataContext = &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{"envoy.filters.http.jwt_authn": md}}
	req.Attributes.ContextExtensions = map[string]string{"tenant": "acme"}
	req.Attributes.Destination = &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
		SocketAddress: &corev3.SocketAddress{Address: "10.0.0.8", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 8000}}}},
		Principal: "spiffe://cluster/ns/default/sa/app"}

	b, err := protojson.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&want); err != nil {
		t.Fatal(err)
	}
	want["version"] = map[string]any{"ext_authz": "v3", "encoding": "protojson"}
	want["parsed_path"] = []any{"people"}
	want["parsed_query"] = map[string]any{"lang": []any{"en"}, "id": []any{"1", "2"}}
	want["parsed_body"] = map[string]any{"firstname": "Charlie"}
	want["truncated_body"] = false

	er, err := extauthzgrpc.Request(req)
	if err != nil {
		t.Fatal(err)
	}
	in, err := extauthz.Input(er, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ast.JSONWithOpt(in, ast.JSONOpt{})
	if err != nil {
		t.Fatal(err)
	}
	wantV, _ := ast.InterfaceToValue(want)
	gotV, _ := ast.InterfaceToValue(got)
	if wantV.Compare(gotV) != 0 {
		t.Errorf("input differs from opa-envoy-plugin's:\n got %v\nwant %v", gotV, wantV)
	}
	_ = fmt.Sprint
}

// With an authenticator, the caller is verified by regoguard, is in
// input.user, and is named upstream; the credential it consumed and the
// identity headers the client sent are removed upstream.
func TestAuthenticatedCheck(t *testing.T) {
	keys, err := authn.NewAPIKeys(authn.APIKeyConfig{Keys: []authn.APIKey{{Key: "alice-key-0123456789", Subject: "alice"}}})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := client(t, `package envoy.authz
default allow = false
allow { input.user.sub == "alice"; input.attributes.request.http.method == "GET" }`, "envoy/authz/allow", nil, keys)

	resp, err := c.Check(context.Background(), check("GET", "/x", map[string]string{"x-api-key": "alice-key-0123456789", "x-auth-request-user": "root"}, ""))
	if err != nil {
		t.Fatal(err)
	}
	ok := resp.GetOkResponse()
	if ok == nil {
		t.Fatalf("not allowed: %v", resp)
	}
	var user string
	for _, h := range ok.GetHeaders() {
		if h.GetHeader().GetKey() == "X-Auth-Request-User" {
			user = h.GetHeader().GetValue()
		}
	}
	removed := strings.Join(ok.GetHeadersToRemove(), ",")
	if user != "alice" || !strings.Contains(removed, "x-api-key") {
		t.Errorf("upstream user %q, removed %q: want alice, and the API key removed", user, removed)
	}

	for name, h := range map[string]map[string]string{
		"no key":         nil,
		"a wrong key":    {"x-api-key": "nope-nope-nope-nope"},
		"a spoofed user": {"x-auth-request-user": "alice", "x-forwarded-user": "alice"},
	} {
		resp, err := c.Check(context.Background(), check("GET", "/x", h, ""))
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetStatus().GetCode() != int32(codes.Unauthenticated) || resp.GetDeniedResponse().GetStatus().GetCode() != 401 {
			t.Errorf("%s: %v, want UNAUTHENTICATED 401", name, resp.GetStatus())
		}
	}
}
