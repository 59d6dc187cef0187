package grpcauthz_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/grpcauthz"
	"github.com/regoguard/regoguard/policy"
)

// Guard a gRPC server with API keys and an in-process policy. Here the
// guarded service is the standard health service, so that the example
// needs no generated code; a real server would rather exempt it
// (Config.Exempt: grpcauthz.HealthMethods).
func Example() {
	ctx := context.Background()
	quiet := slog.New(slog.DiscardHandler)
	engine, err := policy.New(ctx, policy.Config{Decision: "grpcapi/authz", Logger: quiet}, policy.MustParse(map[string]string{"authz.rego": `
package grpcapi.authz

default allow := false

allow if {
	input.service == "grpc.health.v1.Health"
	"ops" in input.user.claims.roles
}

reason := "ops only" if not allow
`}, nil))
	if err != nil {
		log.Fatal(err)
	}
	keys, err := authn.NewAPIKeys(authn.APIKeyConfig{Keys: []authn.APIKey{
		{Key: "ops-key-0123456789", Subject: "prober", Claims: map[string]any{"roles": []any{"ops"}}},
		{Key: "app-key-0123456789", Subject: "app", Claims: map[string]any{"roles": []any{"app"}}},
	}})
	if err != nil {
		log.Fatal(err)
	}
	guard, err := grpcauthz.New(grpcauthz.Config{APIKeys: keys, Evaluator: engine, Logger: quiet})
	if err != nil {
		log.Fatal(err)
	}
	srv := grpc.NewServer(grpc.ChainUnaryInterceptor(guard.Unary()), grpc.ChainStreamInterceptor(guard.Stream()))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	lis := bufconn.Listen(1 << 16) // net.Listen("tcp", ...) in a real server
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()

	conn, err := grpc.NewClient("passthrough:///example",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)
	for _, key := range []string{"", "app-key-0123456789", "ops-key-0123456789"} {
		callCtx := ctx
		if key != "" {
			callCtx = metadata.AppendToOutgoingContext(ctx, "x-api-key", key)
		}
		resp, err := client.Check(callCtx, &healthpb.HealthCheckRequest{})
		if err != nil {
			st := status.Convert(err)
			fmt.Println(st.Code(), st.Message())
			continue
		}
		fmt.Println(resp.GetStatus())
	}
	// Output:
	// Unauthenticated authentication required
	// PermissionDenied ops only
	// SERVING
}

// Authorize judges a call for an identity established elsewhere: what
// `regoguard check` does with the gRPC cases of a cases file.
func ExampleInterceptor_Authorize() {
	engine, err := policy.New(context.Background(), policy.Config{Decision: "grpcapi/authz", Logger: slog.New(slog.DiscardHandler)},
		policy.MustParse(map[string]string{"authz.rego": `
package grpcapi.authz

allow if input.metadata["x-tenant"] == input.user.claims.tenant
`}, nil))
	if err != nil {
		log.Fatal(err)
	}
	guard, err := grpcauthz.New(grpcauthz.Config{AllowAnonymous: true, Evaluator: engine, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		log.Fatal(err)
	}
	alice := &authn.Identity{Subject: "alice", Method: authn.MethodOIDC, Claims: map[string]any{"tenant": "acme"}}
	for _, tenant := range []string{"acme", "globex"} {
		call := grpcauthz.Call{FullMethod: "/shop.Orders/List", Metadata: metadata.Pairs("x-tenant", tenant)}
		res, err := guard.Authorize(context.Background(), call, alice)
		fmt.Println(tenant, res.Decision.Allow, status.Code(err))
	}
	// Output:
	// acme true OK
	// globex false PermissionDenied
}
