// Command grpc is a gRPC service protected by regoguard's interceptors
// (package grpcauthz): API keys from metadata, a policy embedded in the
// binary and evaluated in-process, the health service exempt.
//
// The service is written by hand on google.protobuf.Struct messages, so the
// example needs no generated code; a real service registers its generated
// server the same way.
//
// From the repository's root:
//
//	go run ./examples/grpc
//	grpcurl -plaintext -H 'x-api-key: reader-key-0123456789' -H 'x-tenant: acme' 127.0.0.1:50051 shop.Orders/List
//	grpcurl -plaintext 127.0.0.1:50051 describe shop.Orders
//
// The server registers gRPC server reflection (exempt from authorization,
// as the health service is: it describes the API, never its data), so
// grpcurl needs no .proto file. main_test.go is a client too: it calls with
// the example's API keys (metadata x-api-key, and x-tenant for the policy)
// and reads the service's description through reflection.
package main

import (
	"context"
	"embed"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"slices"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/authz"
	"github.com/regoguard/regoguard/grpcauthz"
	"github.com/regoguard/regoguard/policy"
)

//go:embed policy
var policyFiles embed.FS

func main() {
	addr := flag.String("listen", "127.0.0.1:50051", "address to listen on")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("listening on %s", ln.Addr())
	if err := run(ctx, ln); err != nil {
		log.Fatal(err)
	}
}

// run serves the protected service on ln until ctx is done.
func run(ctx context.Context, ln net.Listener) error {
	srv, err := newServer(ctx)
	if err != nil {
		return err
	}
	go func() {
		<-ctx.Done()
		srv.GracefulStop()
	}()
	return srv.Serve(ln)
}

func newServer(ctx context.Context) (*grpc.Server, error) {
	p, err := policy.LoadFS(policyFiles, "policy")
	if err != nil {
		return nil, err
	}
	engine, err := policy.New(ctx, policy.Config{Decision: "grpcapi/authz"}, p)
	if err != nil {
		return nil, err
	}
	// Keys would come from a file (authn.LoadAPIKeys) or the environment
	// (authn.APIKeysFromEnv); they are written here to keep the example whole.
	keys, err := authn.NewAPIKeys(authn.APIKeyConfig{Keys: []authn.APIKey{
		{Key: "reader-key-0123456789", Subject: "rita", Claims: map[string]any{"roles": []any{"reader"}, "tenant": "acme"}},
		{Key: authn.HashAPIKey("clerk-key-0123456789"), Subject: "carl", Claims: map[string]any{"roles": []any{"clerk"}, "tenant": "acme"}},
	}})
	if err != nil {
		return nil, err
	}
	guard, err := grpcauthz.New(grpcauthz.Config{
		APIKeys:   keys,
		Evaluator: engine,
		Exempt:    slices.Concat(grpcauthz.HealthMethods, grpcauthz.ReflectionMethods),
		Logger:    slog.Default(),
	})
	if err != nil {
		return nil, err
	}
	if err := registerOrdersFile(); err != nil {
		return nil, err
	}
	srv := grpc.NewServer(grpc.ChainUnaryInterceptor(guard.Unary()), grpc.ChainStreamInterceptor(guard.Stream()))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	srv.RegisterService(&ordersDesc, orders{})
	reflection.Register(srv)
	return srv, nil
}

// ordersFile is shop/orders.proto, the file protoc would have compiled:
// server reflection serves it to clients such as grpcurl. A real service
// gets it registered by its generated code.
const ordersFile = "shop/orders.proto"

var registerOnce = sync.OnceValue(func() error {
	structType := ".google.protobuf.Struct"
	method := func(name string, stream bool) *descriptorpb.MethodDescriptorProto {
		return &descriptorpb.MethodDescriptorProto{Name: proto.String(name), InputType: &structType, OutputType: &structType,
			ServerStreaming: proto.Bool(stream)}
	}
	fd, err := protodesc.NewFile(&descriptorpb.FileDescriptorProto{
		Name:       proto.String(ordersFile),
		Package:    proto.String("shop"),
		Dependency: []string{"google/protobuf/struct.proto"},
		Syntax:     proto.String("proto3"),
		Service: []*descriptorpb.ServiceDescriptorProto{{
			Name:   proto.String("Orders"),
			Method: []*descriptorpb.MethodDescriptorProto{method("List", false), method("Cancel", false), method("Watch", true)},
		}},
	}, protoregistry.GlobalFiles)
	if err != nil {
		return err
	}
	return protoregistry.GlobalFiles.RegisterFile(fd)
})

func registerOrdersFile() error { return registerOnce() }

// orders is the service's implementation; each call knows its caller
// through authz.FromContext, as an HTTP handler does.
type orders struct{}

func (orders) list(ctx context.Context, _ *structpb.Struct) (*structpb.Struct, error) {
	res, _ := authz.FromContext(ctx)
	return structpb.NewStruct(map[string]any{"orders": []any{"A-1", "A-2"}, "for": res.Identity.Subject})
}

func (orders) cancel(_ context.Context, in *structpb.Struct) (*structpb.Struct, error) {
	return structpb.NewStruct(map[string]any{"canceled": in.GetFields()["id"].GetStringValue()})
}

func (orders) watch(_ *structpb.Struct, ss grpc.ServerStream) error {
	for _, ev := range []string{"A-1 shipped", "A-2 paid"} {
		msg, err := structpb.NewStruct(map[string]any{"event": ev})
		if err != nil {
			return err
		}
		if err := ss.SendMsg(msg); err != nil {
			return err
		}
	}
	return nil
}

// ordersDesc is what protoc-gen-go-grpc would generate for
//
//	service Orders {
//	  rpc List(google.protobuf.Struct) returns (google.protobuf.Struct);
//	  rpc Cancel(google.protobuf.Struct) returns (google.protobuf.Struct);
//	  rpc Watch(google.protobuf.Struct) returns (stream google.protobuf.Struct);
//	}
//
// in package shop.
var ordersDesc = grpc.ServiceDesc{
	ServiceName: "shop.Orders",
	HandlerType: (*any)(nil),
	Metadata:    ordersFile,
	Methods: []grpc.MethodDesc{
		unary("List", orders.list),
		unary("Cancel", orders.cancel),
	},
	Streams: []grpc.StreamDesc{{
		StreamName:    "Watch",
		ServerStreams: true,
		Handler: func(srv any, ss grpc.ServerStream) error {
			in := new(structpb.Struct)
			if err := ss.RecvMsg(in); err != nil {
				return err
			}
			return srv.(orders).watch(in, ss)
		},
	}},
}

func unary(name string, h func(orders, context.Context, *structpb.Struct) (*structpb.Struct, error)) grpc.MethodDesc {
	full := fmt.Sprintf("/%s/%s", "shop.Orders", name)
	return grpc.MethodDesc{MethodName: name, Handler: func(srv any, ctx context.Context, dec func(any) error, icpt grpc.UnaryServerInterceptor) (any, error) {
		in := new(structpb.Struct)
		if err := dec(in); err != nil {
			return nil, err
		}
		call := func(ctx context.Context, req any) (any, error) { return h(srv.(orders), ctx, req.(*structpb.Struct)) }
		if icpt == nil {
			return call(ctx, in)
		}
		return icpt(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: full}, call)
	}}
}
