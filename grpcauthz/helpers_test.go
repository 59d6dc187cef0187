package grpcauthz_test

import (
	"context"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/authz"
	"github.com/regoguard/regoguard/grpcauthz"
	"github.com/regoguard/regoguard/internal/testissuer"
	"github.com/regoguard/regoguard/policy"
)

// testOP is internal/testissuer's loopback OpenID Provider with the
// tests' shorthands: go-oidc verifies the tokens it signs as a real
// provider's. Full OPs are exercised by authn's tests and the e2e module;
// here the point is what the interceptors do with a verifier's answer, and
// forging tokens needs the provider's key in hand.
type testOP struct{ *testissuer.Issuer }

func startOP(t *testing.T) testOP { return testOP{testissuer.Start(t)} }

// claims are valid claims for sub, changed by mod.
func (op testOP) claims(sub string, mod func(map[string]any)) map[string]any {
	c := op.Claims(sub)
	if mod != nil {
		mod(c)
	}
	return c
}

// token signs a valid token for sub with the given roles.
func (op testOP) token(t *testing.T, sub string, roles ...string) string {
	return op.Token(t, sub, map[string]any{"roles": roles})
}

func (op testOP) bearer(t *testing.T) *authn.Bearer {
	t.Helper()
	b, err := authn.NewBearer(authn.BearerConfig{Issuer: op.URL, ClientID: op.ClientID})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var quiet = slog.New(slog.DiscardHandler)

// The API keys of the tests.
const (
	readerKey = "reader-key-0123456789"
	adminKey  = "admin-key-0123456789"
)

func apiKeys(t testing.TB) *authn.APIKeys {
	t.Helper()
	k, err := authn.NewAPIKeys(authn.APIKeyConfig{Keys: []authn.APIKey{
		{Key: readerKey, Subject: "reader-svc", Claims: map[string]any{"roles": []any{"reader"}}},
		{Key: authn.HashAPIKey(adminKey), Subject: "admin-svc", Claims: map[string]any{"roles": []any{"admin"}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// docsPolicy judges the test service: readers may Get and Watch, admins
// anything, anyone Public; Owned only for the owner named in the message.
const docsPolicy = `package grpcapi.authz

default allow := false

allow if input.method == "/test.Docs/Public"

allow if {
	input.method in {"/test.Docs/Get", "/test.Docs/Watch"}
	"reader" in input.user.claims.roles
}

allow if "admin" in input.user.claims.roles

allow if input.user.method == "mtls"

reason := "readers may only read" if not allow
`

// ownerPolicy reads the request message.
const ownerPolicy = `package grpcapi.authz

default allow := false

allow if input.message.owner == input.user.sub

reason := "only the owner" if not allow
`

func engine(t testing.TB, rego string) *policy.Engine {
	t.Helper()
	e, err := policy.New(context.Background(), policy.Config{Decision: "grpcapi/authz", Logger: quiet},
		policy.MustParse(map[string]string{"authz.rego": rego}, nil))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// docs is a tiny hand-written service (no generated code): unary Get,
// Public and Owned, server-streaming Watch. Requests and answers are
// google.protobuf.Struct. Each handler counts its runs and answers with the
// caller's subject as authz.FromContext gives it.
type docs struct {
	ran atomic.Int64
}

func (d *docs) reply(ctx context.Context) *structpb.Struct {
	d.ran.Add(1)
	sub := "anonymous"
	if res, ok := authz.FromContext(ctx); ok && res.Identity != nil {
		sub = res.Identity.Subject
	}
	md, _ := metadata.FromIncomingContext(ctx)
	keys := []any{}
	for k := range md {
		keys = append(keys, k)
	}
	s, _ := structpb.NewStruct(map[string]any{"sub": sub, "metadata": keys})
	return s
}

func unaryMethod(name string, d *docs) grpc.MethodDesc {
	return grpc.MethodDesc{MethodName: name, Handler: func(_ any, ctx context.Context, dec func(any) error, icpt grpc.UnaryServerInterceptor) (any, error) {
		in := new(structpb.Struct)
		if err := dec(in); err != nil {
			return nil, err
		}
		h := func(ctx context.Context, _ any) (any, error) { return d.reply(ctx), nil }
		if icpt == nil {
			return h(ctx, in)
		}
		return icpt(ctx, in, &grpc.UnaryServerInfo{FullMethod: "/test.Docs/" + name}, h)
	}}
}

func (d *docs) desc() *grpc.ServiceDesc {
	return &grpc.ServiceDesc{
		ServiceName: "test.Docs",
		HandlerType: (*any)(nil),
		Methods:     []grpc.MethodDesc{unaryMethod("Get", d), unaryMethod("Public", d), unaryMethod("Owned", d)},
		Streams: []grpc.StreamDesc{{StreamName: "Watch", ServerStreams: true, ClientStreams: true,
			Handler: func(_ any, ss grpc.ServerStream) error {
				out := d.reply(ss.Context())
				in := new(structpb.Struct)
				if err := ss.RecvMsg(in); err != nil {
					return err
				}
				return ss.SendMsg(out)
			}}},
	}
}

// serve starts a gRPC server with the interceptors of cfg and the docs
// service on an in-memory listener, and returns a client connection.
func serve(t *testing.T, cfg grpcauthz.Config, opts ...grpc.ServerOption) (*grpc.ClientConn, *docs) {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	d := start(t, lis, cfg, opts...)
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn, d
}

func start(t *testing.T, lis net.Listener, cfg grpcauthz.Config, opts ...grpc.ServerOption) *docs {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	ic, err := grpcauthz.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(append(opts, grpc.ChainUnaryInterceptor(ic.Unary()), grpc.ChainStreamInterceptor(ic.Stream()))...)
	d := &docs{}
	srv.RegisterService(d.desc(), d)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return d
}

// call makes a unary call with the given metadata pairs and message.
func call(conn *grpc.ClientConn, method string, msg map[string]any, md ...string) (*structpb.Struct, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if len(md) > 0 {
		ctx = metadataContext(ctx, md...)
	}
	in, err := structpb.NewStruct(msg)
	if err != nil {
		return nil, err
	}
	out := new(structpb.Struct)
	return out, conn.Invoke(ctx, method, in, out)
}
