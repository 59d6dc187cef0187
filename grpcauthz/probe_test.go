package grpcauthz_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/regoguard/regoguard/grpcauthz"
)

// TestProbeCredentialSpellings is the adversarial probe of the credential
// class: every credential present is verified or the call is refused, in
// whatever spelling or number it comes. The interceptors let anonymous
// callers reach the policy, which allows anyone /test.Docs/Public: a
// credential trick that fell through to an anonymous call would get in.
func TestProbeCredentialSpellings(t *testing.T) {
	op := startOP(t)
	conn, d := serve(t, grpcauthz.Config{Tokens: op.bearer(t), APIKeys: apiKeys(t), AllowAnonymous: true, Evaluator: engine(t, docsPolicy)})
	reader := "Bearer " + op.token(t, "alice", "reader")
	admin := "Bearer " + op.token(t, "root", "admin")
	b64 := base64.RawURLEncoding.EncodeToString
	body, _ := json.Marshal(op.claims("mallory", func(c map[string]any) { c["roles"] = []string{"admin"} }))
	none := "Bearer " + b64([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + b64(body) + "."

	// Controls: the probe's calls can succeed.
	for _, c := range []struct {
		method string
		md     []string
	}{
		{"/test.Docs/Public", nil},
		{"/test.Docs/Get", []string{"authorization", reader}},
		{"/test.Docs/Get", []string{"authorization", "bearer " + op.token(t, "alice", "reader")}},
		{"/test.Docs/Owned", []string{"authorization", admin}},
		{"/test.Docs/Owned", []string{"x-api-key", adminKey}},
		{"/test.Docs/Get", []string{"authorization", reader, "x-api-key", readerKey}},
	} {
		if _, err := call(conn, c.method, nil, c.md...); err != nil {
			t.Fatalf("control %s %v: %v", c.method, c.md, err)
		}
	}

	probes := []struct {
		name, method string
		md           []string
		want         codes.Code
	}{
		{"two authorization, second garbage", "/test.Docs/Get", []string{"authorization", reader, "authorization", "Bearer x"}, codes.Unauthenticated},
		{"two authorization, both valid", "/test.Docs/Owned", []string{"authorization", reader, "authorization", admin}, codes.Unauthenticated},
		{"two authorization, admin second", "/test.Docs/Owned", []string{"authorization", none, "authorization", admin}, codes.Unauthenticated},
		{"authorization-bin", "/test.Docs/Public", []string{"authorization-bin", admin}, codes.Unauthenticated},
		{"authorization_", "/test.Docs/Public", []string{"authorization_", admin}, codes.OK}, // not a spelling of authorization: ordinary metadata
		{"x_api_key", "/test.Docs/Public", []string{"x_api_key", adminKey}, codes.Unauthenticated},
		{"x-api-key-bin", "/test.Docs/Public", []string{"x-api-key-bin", adminKey}, codes.Unauthenticated},
		{"x_api_key-bin", "/test.Docs/Public", []string{"x_api_key-bin", adminKey}, codes.Unauthenticated},
		{"Basic scheme", "/test.Docs/Public", []string{"authorization", "Basic YWRtaW46YWRtaW4="}, codes.Unauthenticated},
		{"Token scheme", "/test.Docs/Public", []string{"authorization", "Token " + adminKey}, codes.Unauthenticated},
		{"scheme only", "/test.Docs/Public", []string{"authorization", "Bearer"}, codes.Unauthenticated},
		{"empty bearer", "/test.Docs/Public", []string{"authorization", "Bearer    "}, codes.Unauthenticated},
		{"empty authorization", "/test.Docs/Public", []string{"authorization", ""}, codes.Unauthenticated},
		{"alg none", "/test.Docs/Owned", []string{"authorization", none}, codes.Unauthenticated},
		{"alg none on a public method", "/test.Docs/Public", []string{"authorization", none}, codes.Unauthenticated},
		{"empty API key", "/test.Docs/Public", []string{"x-api-key", ""}, codes.Unauthenticated},
		{"blank API key", "/test.Docs/Public", []string{"x-api-key", "   "}, codes.Unauthenticated},
		{"two API keys", "/test.Docs/Owned", []string{"x-api-key", readerKey, "x-api-key", adminKey}, codes.Unauthenticated},
		{"API key with the admin key's digest", "/test.Docs/Owned", []string{"x-api-key", "sha256:" + adminKey}, codes.Unauthenticated},
		{"valid key, bad token", "/test.Docs/Get", []string{"x-api-key", readerKey, "authorization", "Bearer x.y.z"}, codes.Unauthenticated},
		{"valid token, bad key", "/test.Docs/Get", []string{"authorization", reader, "x-api-key", "unknown-key-0123456789"}, codes.Unauthenticated},
		{"reader token, admin alg none", "/test.Docs/Owned", []string{"authorization", reader, "authorization", none}, codes.Unauthenticated},
		{"reader token for a write", "/test.Docs/Owned", []string{"authorization", reader}, codes.PermissionDenied},
	}
	letThrough := 0
	for _, p := range probes {
		t.Run(p.name, func(t *testing.T) {
			before := d.ran.Load()
			_, err := call(conn, p.method, nil, p.md...)
			got := status.Code(err)
			if got == codes.OK && p.want != codes.OK {
				letThrough++
			}
			if got != codes.OK && d.ran.Load() != before {
				t.Errorf("the handler ran for a refused call")
			}
			if got != p.want {
				t.Errorf("%s %v: %v (%v), want %v", p.method, p.md, got, err, p.want)
			}
		})
	}
	if letThrough != 0 {
		t.Fatalf("%d of %d credential tricks let through", letThrough, len(probes))
	}
}

// TestProbeExemptMethodNames is the adversarial probe of exemptions: only
// the exact full method name is exempt. The server forwards unknown
// methods to a handler, as a gRPC proxy does, so every name reaches the
// interceptors; a name that is exempt without being exactly the exempt
// method would reach the handler without credentials.
func TestProbeExemptMethodNames(t *testing.T) {
	var ran atomic.Int64
	ic, err := grpcauthz.New(grpcauthz.Config{APIKeys: apiKeys(t), Evaluator: engine(t, docsPolicy), Logger: quiet,
		Exempt: append(append([]string{}, grpcauthz.HealthMethods...), grpcauthz.ReflectionMethods...)})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.ChainStreamInterceptor(ic.Stream()),
		grpc.UnknownServiceHandler(func(_ any, ss grpc.ServerStream) error {
			ran.Add(1)
			if err := ss.RecvMsg(new(structpb.Struct)); err != nil {
				return err
			}
			return ss.SendMsg(&structpb.Struct{})
		}))
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	invoke := func(method string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return conn.Invoke(ctx, method, &structpb.Struct{}, new(structpb.Struct))
	}
	for _, m := range append(append([]string{}, grpcauthz.HealthMethods...), grpcauthz.ReflectionMethods...) {
		if err := invoke(m); err != nil {
			t.Fatalf("control: exempt %s: %v", m, err)
		}
	}
	ran.Store(0)

	tricks := []string{
		"/grpc.health.v1.Health/Check/",
		"/grpc.health.v1.Health/CheckX",
		"/grpc.health.v1.Health/Check2",
		"/grpc.health.v1.Health/check",
		"/grpc.health.v1.health/Check",
		"/GRPC.HEALTH.V1.HEALTH/CHECK",
		"/grpc.health.v1.Health/",
		"/grpc.health.v1.Health",
		"/grpc.health.v1.Health.Check",
		"/grpc.health.v1.HealthX/Check",
		"/xgrpc.health.v1.Health/Check",
		"/grpc.health.v1.Health//Check",
		"//grpc.health.v1.Health/Check",
		"/grpc.health.v1.Health/Check/../../test.Docs/Owned",
		"/test.Docs/Owned/../../grpc.health.v1.Health/Check",
		"/test.Docs/Owned?/grpc.health.v1.Health/Check",
		"/test.Docs/Owned#/grpc.health.v1.Health/Check",
		"/grpc.health.v1.Health/Check%2F..%2F..%2Ftest.Docs%2FOwned",
		"/grpc.health.v1.Health%2FCheck",
		"/grpc.health.v1.Health/Check;x",
		"/grpc.health.v1.Health/Check ",
		"/ grpc.health.v1.Health/Check",
		"/grpc.health.v1.Health\\Check",
		"/grpc.health.v1.Health／Check",
		"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo/x",
		"/grpc.reflection.v1.ServerReflection/",
		"/grpc.reflection.v1beta.ServerReflection/ServerReflectionInfo",
		"/test.Docs/Owned",
	}
	letThrough := 0
	for _, m := range tricks {
		err := invoke(m)
		t.Logf("%q: %v", m, status.Code(err))
		if status.Code(err) == codes.OK {
			letThrough++
			t.Errorf("%q let through without credentials", m)
		}
	}
	if n := ran.Load(); n != 0 || letThrough != 0 {
		t.Fatalf("%d of %d method-name tricks let through (handler ran %d times)", letThrough, len(tricks), n)
	}

	// Names a client library will not send reach the interceptor directly.
	unary := ic.Unary()
	for _, m := range []string{"grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Check\x00", "\x00/grpc.health.v1.Health/Check", ""} {
		_, err := unary(context.Background(), &structpb.Struct{}, &grpc.UnaryServerInfo{FullMethod: m}, func(context.Context, any) (any, error) {
			ran.Add(1)
			return nil, nil
		})
		if err == nil || ran.Load() != 0 {
			t.Fatalf("%q let through: %v", m, err)
		}
	}
}
