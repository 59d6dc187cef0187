package benchmarks

import (
	"context"
	"log/slog"
	"net"
	"path/filepath"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/authz"
	"github.com/regoguard/regoguard/grpcauthz"
	"github.com/regoguard/regoguard/internal/testopa"
	"github.com/regoguard/regoguard/policy"
)

// BenchmarkGRPCCall measures one unary gRPC call, client to handler and
// back over an in-memory connection (bufconn: no TCP noise), side by side:
// no interceptor, the interceptors with the in-process engine, and the
// interceptors asking a remote OPA server (a separate process on loopback).
// Every guarded call is authenticated by API key and allowed after the
// policy's full work.
func BenchmarkGRPCCall(b *testing.B) {
	ctx := context.Background()
	dir := filepath.Join("testdata", "grpc")
	p, err := policy.LoadFiles(dir)
	if err != nil {
		b.Fatal(err)
	}
	engine, err := policy.New(ctx, policy.Config{Decision: "grpcapi/authz"}, p)
	if err != nil {
		b.Fatal(err)
	}
	keys, err := authn.NewAPIKeys(authn.APIKeyConfig{Keys: []authn.APIKey{{Key: "bench-key-0123456789", Subject: "bench",
		Claims: map[string]any{"roles": []any{"reader"}, "tenant": "acme"}}}})
	if err != nil {
		b.Fatal(err)
	}
	modes := []struct {
		name string
		eval func(b *testing.B) authz.Evaluator // nil: no interceptor
	}{
		{"none", nil},
		{"in-process", func(*testing.B) authz.Evaluator { return engine }},
		{"remote", func(b *testing.B) authz.Evaluator {
			srv := testopa.Start(b, dir)
			r, err := authz.NewRemote(authz.RemoteConfig{URL: srv.URL, Decision: "grpcapi/authz"})
			if err != nil {
				b.Fatal(err)
			}
			return r
		}},
	}
	for _, m := range modes {
		b.Run(m.name, func(b *testing.B) {
			var opts []grpc.ServerOption
			if m.eval != nil {
				guard, err := grpcauthz.New(grpcauthz.Config{APIKeys: keys, Evaluator: m.eval(b), Logger: slog.New(slog.DiscardHandler)})
				if err != nil {
					b.Fatal(err)
				}
				opts = append(opts, grpc.ChainUnaryInterceptor(guard.Unary()))
			}
			conn := benchServer(b, opts...)
			callCtx := metadata.AppendToOutgoingContext(ctx, "x-api-key", "bench-key-0123456789", "x-tenant", "acme")
			in, out := &structpb.Struct{}, new(structpb.Struct)
			if err := conn.Invoke(callCtx, "/bench.Docs/Get", in, out); err != nil {
				b.Fatalf("the reference call was refused: %v", err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := conn.Invoke(callCtx, "/bench.Docs/Get", in, out); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// benchServer serves a one-method service (the empty reply of
// /bench.Docs/Get) on bufconn and returns a client connection.
func benchServer(b *testing.B, opts ...grpc.ServerOption) *grpc.ClientConn {
	b.Helper()
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer(opts...)
	reply := &structpb.Struct{}
	srv.RegisterService(&grpc.ServiceDesc{
		ServiceName: "bench.Docs",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{MethodName: "Get", Handler: func(_ any, ctx context.Context, dec func(any) error, icpt grpc.UnaryServerInterceptor) (any, error) {
			in := new(structpb.Struct)
			if err := dec(in); err != nil {
				return nil, err
			}
			h := func(context.Context, any) (any, error) { return reply, nil }
			if icpt == nil {
				return h(ctx, in)
			}
			return icpt(ctx, in, &grpc.UnaryServerInfo{FullMethod: "/bench.Docs/Get"}, h)
		}}},
	}, struct{}{})
	go func() { _ = srv.Serve(lis) }()
	b.Cleanup(srv.Stop)
	conn, err := grpc.NewClient("passthrough:///bench",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	return conn
}
