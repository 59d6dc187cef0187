package grpcauthz_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/authz"
	"github.com/regoguard/regoguard/grpcauthz"
	"github.com/regoguard/regoguard/internal/testissuer"
	"github.com/regoguard/regoguard/policy"
	"github.com/regoguard/regoguard/prommetrics"
)

func metadataContext(ctx context.Context, kv ...string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, kv...)
}

func wantCode(t *testing.T, err error, want codes.Code) {
	t.Helper()
	if got := status.Code(err); got != want {
		t.Fatalf("code %v (%v), want %v", got, err, want)
	}
}

// TestAnswers makes real calls through a gRPC server and client and checks
// each answer code, and that the handler gets the caller.
func TestAnswers(t *testing.T) {
	op := startOP(t)
	conn, d := serve(t, grpcauthz.Config{Tokens: op.bearer(t), APIKeys: apiKeys(t), Evaluator: engine(t, docsPolicy)})
	reader := "Bearer " + op.token(t, "alice", "reader")

	out, err := call(conn, "/test.Docs/Get", nil, "authorization", reader)
	if err != nil {
		t.Fatalf("reader Get: %v", err)
	}
	if got := out.Fields["sub"].GetStringValue(); got != "alice" {
		t.Fatalf("handler saw caller %q, want alice", got)
	}
	if out, err := call(conn, "/test.Docs/Get", nil, "x-api-key", readerKey); err != nil || out.Fields["sub"].GetStringValue() != "reader-svc" {
		t.Fatalf("API key Get: %v %v", out, err)
	}
	if _, err := call(conn, "/test.Docs/Owned", nil, "x-api-key", adminKey); err != nil {
		t.Fatalf("hashed admin API key: %v", err)
	}

	before := d.ran.Load()
	_, err = call(conn, "/test.Docs/Get", nil)
	wantCode(t, err, codes.Unauthenticated)
	_, err = call(conn, "/test.Docs/Owned", nil, "authorization", reader)
	wantCode(t, err, codes.PermissionDenied)
	if msg := status.Convert(err).Message(); msg != "readers may only read" {
		t.Fatalf("deny message %q, want the policy's reason", msg)
	}
	_, err = call(conn, "/test.Docs/Get", nil, "x-api-key", "unknown-key-0123456789")
	wantCode(t, err, codes.Unauthenticated)
	if n := d.ran.Load() - before; n != 0 {
		t.Fatalf("handler ran %d times for refused calls", n)
	}
}

// TestForgedTokens refuses tokens that are not the provider's, whatever the
// policy would say of their claims.
func TestForgedTokens(t *testing.T) {
	op := startOP(t)
	conn, d := serve(t, grpcauthz.Config{Tokens: op.bearer(t), Evaluator: engine(t, docsPolicy)})
	admin := func(mod func(map[string]any)) map[string]any {
		return op.claims("mallory", func(c map[string]any) {
			c["roles"] = []string{"admin"}
			if mod != nil {
				mod(c)
			}
		})
	}
	// Control: the same claims signed with the provider's key pass.
	if _, err := call(conn, "/test.Docs/Owned", nil, "authorization", "Bearer "+op.Sign(t, admin(nil))); err != nil {
		t.Fatalf("control token refused: %v", err)
	}
	rogue, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, _ := x509.MarshalPKIXPublicKey(op.PublicKey())
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	b64 := base64.RawURLEncoding.EncodeToString
	body, _ := json.Marshal(admin(nil))
	forged := map[string]string{
		"alg none":         b64([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + b64(body) + ".",
		"wrong key":        testissuer.SignWith(t, jose.RS256, rogue, admin(nil)),
		"expired":          op.Sign(t, admin(func(c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() })),
		"wrong audience":   op.Sign(t, admin(func(c map[string]any) { c["aud"] = "other" })),
		"wrong issuer":     op.Sign(t, admin(func(c map[string]any) { c["iss"] = "http://127.0.0.1:1" })),
		"HS256 public key": testissuer.SignWith(t, jose.HS256, pubPEM, admin(nil)),
		"garbage":          "not-a-token",
	}
	before := d.ran.Load()
	for name, tok := range forged {
		t.Run(name, func(t *testing.T) {
			_, err := call(conn, "/test.Docs/Owned", nil, "authorization", "Bearer "+tok)
			wantCode(t, err, codes.Unauthenticated)
			if strings.Contains(err.Error(), tok) {
				t.Fatal("the refusal echoes the token")
			}
		})
	}
	if n := d.ran.Load() - before; n != 0 {
		t.Fatalf("handler ran %d times for forged tokens", n)
	}
}

// TestStreamRefusedBeforeFirstMessage: the stream handler never runs, and
// the client learns the refusal on its first receive.
func TestStreamRefusedBeforeFirstMessage(t *testing.T) {
	op := startOP(t)
	conn, d := serve(t, grpcauthz.Config{Tokens: op.bearer(t), Evaluator: engine(t, docsPolicy)})
	desc := &grpc.StreamDesc{StreamName: "Watch", ServerStreams: true, ClientStreams: true}
	open := func(md ...string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s, err := conn.NewStream(metadataContext(ctx, md...), desc, "/test.Docs/Watch")
		if err != nil {
			return err
		}
		if err := s.SendMsg(&structpb.Struct{}); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		if err := s.CloseSend(); err != nil {
			return err
		}
		return s.RecvMsg(new(structpb.Struct))
	}
	wantCode(t, open(), codes.Unauthenticated)
	wantCode(t, open("authorization", "Bearer "+op.token(t, "bob")), codes.PermissionDenied)
	if n := d.ran.Load(); n != 0 {
		t.Fatalf("stream handler ran %d times for refused streams", n)
	}
	if err := open("authorization", "Bearer "+op.token(t, "carol", "reader")); err != nil {
		t.Fatalf("reader stream: %v", err)
	}
	if n := d.ran.Load(); n != 1 {
		t.Fatalf("stream handler ran %d times, want 1", n)
	}
}

// TestUnavailable: an evaluator that cannot decide, or not in time, refuses
// the call with Unavailable. The remote OPA is a closed port (a real
// connection refused) or a server that never answers (a fault no real OPA
// produces on demand).
func TestUnavailable(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + lis.Addr().String()
	lis.Close()
	down, err := authz.NewRemote(authz.RemoteConfig{URL: closed, Decision: "grpcapi/authz"})
	if err != nil {
		t.Fatal(err)
	}
	conn, d := serve(t, grpcauthz.Config{APIKeys: apiKeys(t), Evaluator: down})
	_, err = call(conn, "/test.Docs/Get", nil, "x-api-key", readerKey)
	wantCode(t, err, codes.Unavailable)

	hang := make(chan struct{})
	stuck := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	defer stuck.Close()
	defer close(hang)
	slow, err := authz.NewRemote(authz.RemoteConfig{URL: stuck.URL, Decision: "grpcapi/authz", Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	conn, _ = serve(t, grpcauthz.Config{APIKeys: apiKeys(t), Evaluator: slow, Timeout: 200 * time.Millisecond})
	start := time.Now()
	_, err = call(conn, "/test.Docs/Get", nil, "x-api-key", readerKey)
	wantCode(t, err, codes.Unavailable)
	if el := time.Since(start); el > 3*time.Second {
		t.Fatalf("refusal took %v with a 200ms timeout", el)
	}
	if d.ran.Load() != 0 {
		t.Fatal("handler ran without a decision")
	}
}

// TestMessage: the message is read only when the policy reads it, and a
// message larger than the limit is then refused, never judged as absent.
func TestMessage(t *testing.T) {
	op := startOP(t)
	big := map[string]any{"owner": "alice", "pad": strings.Repeat("x", 2048)}
	small := map[string]any{"owner": "alice"}
	alice := "Bearer " + op.token(t, "alice")
	bob := "Bearer " + op.token(t, "bob")

	conn, _ := serve(t, grpcauthz.Config{Tokens: op.bearer(t), Evaluator: engine(t, ownerPolicy), MaxMessageBytes: 1024})
	if _, err := call(conn, "/test.Docs/Owned", small, "authorization", alice); err != nil {
		t.Fatalf("owner: %v", err)
	}
	_, err := call(conn, "/test.Docs/Owned", small, "authorization", bob)
	wantCode(t, err, codes.PermissionDenied)
	_, err = call(conn, "/test.Docs/Owned", big, "authorization", alice)
	wantCode(t, err, codes.ResourceExhausted)
	_, err = call(conn, "/test.Docs/Owned", nil, "authorization", alice)
	wantCode(t, err, codes.PermissionDenied) // an empty message has no owner

	// The same large message goes through when the policy never reads it.
	conn, _ = serve(t, grpcauthz.Config{Tokens: op.bearer(t), Evaluator: engine(t, docsPolicy), MaxMessageBytes: 1024})
	if _, err := call(conn, "/test.Docs/Get", big, "authorization", "Bearer "+op.token(t, "alice", "reader")); err != nil {
		t.Fatalf("a policy that never reads the message was refused for its size: %v", err)
	}
}

// TestInputFieldsBuilt checks through a decision logger what the input
// holds: credentials never, the message only when the policy reads it.
func TestInputFieldsBuilt(t *testing.T) {
	op := startOP(t)
	var mu sync.Mutex
	var inputs []ast.Value
	logger := decisionLoggerFunc(func(_ context.Context, ev policy.DecisionEvent) error {
		mu.Lock()
		defer mu.Unlock()
		inputs = append(inputs, ev.Input)
		return nil
	})
	reg := prometheus.NewRegistry()
	metrics := prommetrics.NewMiddleware(prommetrics.MiddlewareOptions{GRPC: true})
	reg.MustRegister(metrics)
	conn, _ := serve(t, grpcauthz.Config{Tokens: op.bearer(t), APIKeys: apiKeys(t), Evaluator: engine(t, ownerPolicy),
		DecisionLogger: logger, Metrics: metrics})
	_, err := call(conn, "/test.Docs/Owned", map[string]any{"owner": "alice"},
		"authorization", "Bearer "+op.token(t, "alice"), "x-tenant", "acme", "x-tenant", "beta", "cookie", "c=1")
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	in, _ := ast.JSON(inputs[0])
	mu.Unlock()
	doc := in.(map[string]any)
	md := doc["metadata"].(map[string]any)
	if md["x-tenant"] != "acme, beta" || md["authorization"] != nil || md["cookie"] != nil {
		t.Fatalf("metadata %v", md)
	}
	if doc["method"] != "/test.Docs/Owned" || doc["service"] != "test.Docs" || doc["stream"] != false {
		t.Fatalf("input %v", doc)
	}
	if msg, _ := doc["message"].(map[string]any); msg["owner"] != "alice" {
		t.Fatalf("message %v", doc["message"])
	}
	if peer, _ := doc["peer"].(map[string]any); peer["address"] == nil {
		t.Fatalf("peer %v", doc["peer"])
	}
	if got := counter(t, reg, "allow"); got != 1 {
		t.Fatalf("allow count %v", got)
	}
}

type decisionLoggerFunc func(context.Context, policy.DecisionEvent) error

func (f decisionLoggerFunc) LogDecision(ctx context.Context, ev policy.DecisionEvent) error {
	return f(ctx, ev)
}

func counter(t *testing.T, reg *prometheus.Registry, outcome string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "regoguard_grpc_calls_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == outcome {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// TestPruning: with the in-process engine, fields the policy never reads are
// not built; Input builds them all.
func TestPruning(t *testing.T) {
	ic, err := grpcauthz.New(grpcauthz.Config{AllowAnonymous: true, Evaluator: engine(t, docsPolicy), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	// docsPolicy reads method and user only: a request that is not a
	// protocol buffer would be refused if the message were built.
	call := grpcauthz.Call{FullMethod: "/test.Docs/Public", Request: "not a proto", Metadata: metadata.Pairs("x-a", "1")}
	if _, err := ic.Authorize(context.Background(), call, nil); err != nil {
		t.Fatalf("the unread message was built: %v", err)
	}
	in, err := ic.Input(call, nil)
	if err == nil || status.Code(err) != codes.Unimplemented {
		t.Fatalf("Input built a message from a non-proto request: %v %v", in, err)
	}
}

// TestExemptHealth: the health service answers without credentials when
// exempt, and the exemption is by whole name.
func TestExemptHealth(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ic, err := grpcauthz.New(grpcauthz.Config{APIKeys: apiKeys(t), Evaluator: engine(t, docsPolicy), Exempt: grpcauthz.HealthMethods})
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.ChainUnaryInterceptor(ic.Unary()), grpc.ChainStreamInterceptor(ic.Stream()))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	d := &docs{}
	srv.RegisterService(d.desc(), d)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health over TCP: %v %v", resp, err)
	}
	_, err = call(conn, "/test.Docs/Get", nil)
	wantCode(t, err, codes.Unauthenticated)
	if _, err := call(conn, "/test.Docs/Get", nil, "x-api-key", readerKey); err != nil {
		t.Fatalf("API key over TCP: %v", err)
	}
	if _, err := grpcauthz.New(grpcauthz.Config{AllowAnonymous: true, Evaluator: engine(t, docsPolicy), Exempt: []string{"grpc.health.v1.Health/"}}); err == nil {
		t.Fatal("a partial method name was accepted as an exemption")
	}
}

// TestPruningNeverChangesADecision: the pruned input (only what the policy
// reads) and the whole input get the same decision, call by call.
func TestPruningNeverChangesADecision(t *testing.T) {
	policies := map[string]string{
		"docs":  docsPolicy,
		"owner": ownerPolicy,
		"metadata": `package grpcapi.authz
allow if input.metadata["x-tenant"] == input.user.claims.tenant
allow if input.peer.address == "192.0.2.9:1"
`,
		"computed key": `package grpcapi.authz
allow if { some k; input.metadata[k] == "yes"; startswith(k, "x-") }
`,
		"whole input": `package grpcapi.authz
allow if { walk(input, [_, v]); v == "magic" }
`,
		"service and stream": `package grpcapi.authz
allow if { input.service == "test.Docs"; not input.stream }
`,
	}
	ids := []*authn.Identity{
		nil,
		{Subject: "alice", Method: authn.MethodOIDC, Claims: map[string]any{"roles": []any{"reader"}, "tenant": "acme"}},
		{Subject: "root", Method: authn.MethodAPIKey, Claims: map[string]any{"roles": []any{"admin"}, "tenant": "globex"}},
	}
	msg := func(m map[string]any) *structpb.Struct { s, _ := structpb.NewStruct(m); return s }
	calls := []grpcauthz.Call{
		{FullMethod: "/test.Docs/Get", Request: msg(nil)},
		{FullMethod: "/test.Docs/Owned", Request: msg(map[string]any{"owner": "alice"}), Metadata: metadata.Pairs("x-tenant", "acme")},
		{FullMethod: "/test.Docs/Owned", Request: msg(map[string]any{"owner": "root", "note": "magic"}), Metadata: metadata.Pairs("x-flag", "yes")},
		{FullMethod: "/test.Docs/Watch", Stream: true, Metadata: metadata.Pairs("x-tenant", "globex", "y-flag", "yes")},
		{FullMethod: "/other.Svc/Public", Request: msg(nil), Metadata: metadata.Pairs("x-tenant", "magic"),
			Peer: &peer.Peer{Addr: &net.TCPAddr{IP: net.IPv4(192, 0, 2, 9), Port: 1}}},
	}
	for name, rego := range policies {
		e := engine(t, rego)
		ic, err := grpcauthz.New(grpcauthz.Config{AllowAnonymous: true, Evaluator: e, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		allowed := 0
		for _, c := range calls {
			for _, id := range ids {
				_, err := ic.Authorize(context.Background(), c, id)
				whole, ierr := ic.Input(c, id)
				if ierr != nil {
					t.Fatal(ierr)
				}
				d, eerr := e.Eval(context.Background(), whole)
				if eerr != nil {
					t.Fatal(eerr)
				}
				pruned := err == nil
				if pruned != d.Allow {
					t.Errorf("%s: %s as %v: pruned input allow=%v (%v), whole input allow=%v", name, c.FullMethod, id, pruned, err, d.Allow)
				}
				if d.Allow {
					allowed++
				}
			}
		}
		if allowed == 0 {
			t.Errorf("%s: no call allowed: the comparison shows nothing", name)
		}
	}
}

// TestIdentityProviderDown: a token that cannot be checked because the
// provider is down is Unavailable, not Unauthenticated and never allowed.
func TestIdentityProviderDown(t *testing.T) {
	op := startOP(t)
	tok := op.token(t, "alice", "admin")
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + lis.Addr().String()
	lis.Close()
	b, err := authn.NewBearer(authn.BearerConfig{Issuer: down, ClientID: op.ClientID})
	if err != nil {
		t.Fatal(err)
	}
	conn, d := serve(t, grpcauthz.Config{Tokens: b, Evaluator: engine(t, docsPolicy)})
	_, err = call(conn, "/test.Docs/Owned", nil, "authorization", "Bearer "+tok)
	wantCode(t, err, codes.Unavailable)
	if d.ran.Load() != 0 {
		t.Fatal("handler ran")
	}
}

// TestAnonymous: with AllowAnonymous the policy judges callers without
// credentials; one it denies is asked to authenticate.
func TestAnonymous(t *testing.T) {
	conn, _ := serve(t, grpcauthz.Config{AllowAnonymous: true, Evaluator: engine(t, docsPolicy)})
	out, err := call(conn, "/test.Docs/Public", nil)
	if err != nil || out.Fields["sub"].GetStringValue() != "anonymous" {
		t.Fatalf("anonymous Public: %v %v", out, err)
	}
	_, err = call(conn, "/test.Docs/Get", nil)
	wantCode(t, err, codes.Unauthenticated)
	// No API key store: a key is a credential that cannot be checked.
	_, err = call(conn, "/test.Docs/Public", nil, "x-api-key", readerKey)
	wantCode(t, err, codes.Unauthenticated)
}

// TestDecisionIDInRefusal: a refusal made by the policy names its decision,
// as the HTTP middleware's decision_id does.
func TestDecisionIDInRefusal(t *testing.T) {
	op := startOP(t)
	var mu sync.Mutex
	var ids []string
	logger := decisionLoggerFunc(func(_ context.Context, ev policy.DecisionEvent) error {
		mu.Lock()
		defer mu.Unlock()
		ids = append(ids, ev.ID)
		return nil
	})
	conn, _ := serve(t, grpcauthz.Config{Tokens: op.bearer(t), Evaluator: engine(t, docsPolicy), DecisionLogger: logger})
	_, err := call(conn, "/test.Docs/Owned", nil, "authorization", "Bearer "+op.token(t, "bob", "reader"))
	wantCode(t, err, codes.PermissionDenied)
	var info *errdetails.ErrorInfo
	for _, d := range status.Convert(err).Details() {
		if ei, ok := d.(*errdetails.ErrorInfo); ok {
			info = ei
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if info == nil || info.GetDomain() != grpcauthz.ErrorDomain || info.GetReason() != "PERMISSION_DENIED" ||
		len(ids) != 1 || info.GetMetadata()["decision_id"] != ids[0] {
		t.Fatalf("error info %v, logged decisions %v", info, ids)
	}
}

// TestIdentityProviderHangs: a provider that accepts and never answers
// costs at most Timeout (a fault no real OP produces on demand).
func TestIdentityProviderHangs(t *testing.T) {
	op := startOP(t)
	tok := op.token(t, "alice", "admin")
	hang := make(chan struct{})
	stuck := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	defer stuck.Close()
	defer close(hang)
	b, err := authn.NewBearer(authn.BearerConfig{Issuer: stuck.URL, ClientID: op.ClientID})
	if err != nil {
		t.Fatal(err)
	}
	conn, d := serve(t, grpcauthz.Config{Tokens: b, Evaluator: engine(t, docsPolicy), Timeout: 300 * time.Millisecond})
	start := time.Now()
	_, err = call(conn, "/test.Docs/Owned", nil, "authorization", "Bearer "+tok)
	wantCode(t, err, codes.Unavailable)
	if el := time.Since(start); el > 3*time.Second {
		t.Fatalf("refusal took %v with a 300ms timeout", el)
	}
	if d.ran.Load() != 0 {
		t.Fatal("handler ran")
	}
}

// TestMetadataKeptFromInputAndHandler: identity claims never reach the input
// or the handler, in any spelling; secret-looking keys stay out of the
// input; the consumed credentials reach the handler only when forwarded.
func TestMetadataKeptFromInputAndHandler(t *testing.T) {
	var mu sync.Mutex
	var last ast.Value
	logger := decisionLoggerFunc(func(_ context.Context, ev policy.DecisionEvent) error {
		mu.Lock()
		last = ev.Input
		mu.Unlock()
		return nil
	})
	md := []string{"x-api-key", readerKey, "x-tenant", "acme", "x-forwarded-user", "root", "x_forwarded_user", "root",
		"x-auth-request-groups", "admin", "x-auth-token", "t", "x-session-id", "s", "x-client-secret", "c",
		"cf-access-jwt-assertion", "j", "x-goog-iap-jwt-assertion", "j", "ocp-apim-subscription-key", "k", "x-auth-key", "k",
		"x-hub-signature-256", "s", "x-amzn-oidc-data", "d"}
	secret := map[string]bool{"x-api-key": true, "x-forwarded-user": true, "x_forwarded_user": true, "x-auth-request-groups": true}
	for i := 6; i < len(md); i += 2 {
		secret[md[i]] = true
	}
	for _, forward := range []bool{false, true} {
		conn, _ := serve(t, grpcauthz.Config{APIKeys: apiKeys(t), Evaluator: engine(t, docsPolicy), DecisionLogger: logger, ForwardCredentials: forward})
		out, err := call(conn, "/test.Docs/Get", nil, md...)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, k := range out.Fields["metadata"].GetListValue().GetValues() {
			seen[k.GetStringValue()] = true
		}
		if seen["x-forwarded-user"] || seen["x_forwarded_user"] || seen["x-auth-request-groups"] || !seen["x-tenant"] || seen["x-api-key"] != forward {
			t.Errorf("forward %v: the handler saw metadata %v", forward, seen)
		}
		mu.Lock()
		in, _ := ast.JSON(last)
		mu.Unlock()
		inMD := in.(map[string]any)["metadata"].(map[string]any)
		if len(inMD) == 0 || inMD["x-tenant"] != "acme" {
			t.Fatalf("input metadata %v", inMD)
		}
		for k := range inMD {
			if secret[k] {
				t.Errorf("%q in the input", k)
			}
		}
	}
}

// TestEvaluators: the interceptors ask any authz.Evaluator: a cache in front
// of the engine, and a fallback from a remote OPA that is down to the engine.
func TestEvaluators(t *testing.T) {
	e := engine(t, docsPolicy)
	cache, err := authz.NewCache(e, authz.CacheConfig{})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + lis.Addr().String()
	lis.Close()
	down, err := authz.NewRemote(authz.RemoteConfig{URL: closed, Decision: "grpcapi/authz"})
	if err != nil {
		t.Fatal(err)
	}
	for name, eval := range map[string]authz.Evaluator{"cache": cache, "fallback": &authz.Fallback{Primary: down, Secondary: e}} {
		t.Run(name, func(t *testing.T) {
			conn, _ := serve(t, grpcauthz.Config{APIKeys: apiKeys(t), Evaluator: eval})
			for range 2 {
				if _, err := call(conn, "/test.Docs/Get", nil, "x-api-key", readerKey); err != nil {
					t.Fatalf("reader Get: %v", err)
				}
				_, err := call(conn, "/test.Docs/Owned", nil, "x-api-key", readerKey)
				wantCode(t, err, codes.PermissionDenied)
			}
		})
	}
	if cache.Len() == 0 {
		t.Fatal("the cache kept no decision")
	}
}
