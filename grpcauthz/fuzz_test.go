package grpcauthz_test

import (
	"context"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/regoguard/regoguard/grpcauthz"
)

// FuzzMetadata: any metadata gets an answer, never a panic; a call with
// credential metadata in any spelling is never let through anonymously; and
// no such key reaches the input.
func FuzzMetadata(f *testing.F) {
	for _, s := range [][2]string{{"authorization", "Bearer x"}, {"authorization-bin", "x"}, {"x_api_key", "k"},
		{"X-API-KEY", "k"}, {"cookie", "a=b"}, {"x-tenant", "acme"}, {"", ""}, {"proxy_authorization", "Basic x"}} {
		f.Add(s[0], s[1], "/test.Docs/Public")
	}
	e := engine(f, `package grpcapi.authz
allow if input.method == "/test.Docs/Public"
`)
	ic, err := grpcauthz.New(grpcauthz.Config{AllowAnonymous: true, APIKeys: apiKeys(f), Evaluator: e, Logger: quiet})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, key, value, method string) {
		md := metadata.MD{strings.ToLower(key): []string{value}}
		ran := false
		_, err := ic.Unary()(metadata.NewIncomingContext(context.Background(), md), &structpb.Struct{},
			&grpc.UnaryServerInfo{FullMethod: method}, func(context.Context, any) (any, error) { ran = true; return nil, nil })
		if ran != (err == nil) {
			t.Fatalf("handler ran %v with error %v", ran, err)
		}
		if _, ok := status.FromError(err); !ok {
			t.Fatalf("not a status error: %v", err)
		}
		norm := strings.ReplaceAll(strings.TrimSuffix(strings.ToLower(key), "-bin"), "_", "-")
		if ran && (norm == "authorization" || norm == "x-api-key") {
			t.Fatalf("credential metadata %q=%q let through", key, value)
		}
		if status.Code(err) == codes.InvalidArgument {
			return
		}
		in, err := ic.Input(grpcauthz.Call{FullMethod: method, Metadata: md, Request: &structpb.Struct{}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		j, _ := ast.JSON(in)
		for k := range j.(map[string]any)["metadata"].(map[string]any) {
			n := strings.ReplaceAll(strings.TrimSuffix(k, "-bin"), "_", "-")
			if n == "authorization" || n == "x-api-key" || n == "cookie" || n == "proxy-authorization" {
				t.Fatalf("credential key %q in the input", k)
			}
		}
	})
}
