package main

import (
	"context"
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/structpb"
)

// The example runs for real on a loopback TCP port and answers allowed and
// refused calls as its policy says.
func TestGRPCExample(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, ln) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	invoke := func(method string, msg map[string]any, md ...string) (*structpb.Struct, error) {
		ctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(context.Background(), md...), 10*time.Second)
		defer cancel()
		in, _ := structpb.NewStruct(msg)
		out := new(structpb.Struct)
		return out, conn.Invoke(ctx, method, in, out)
	}
	reader := []string{"x-api-key", "reader-key-0123456789", "x-tenant", "acme"}
	clerk := []string{"x-api-key", "clerk-key-0123456789", "x-tenant", "acme"}

	out, err := invoke("/shop.Orders/List", nil, reader...)
	if err != nil || out.GetFields()["for"].GetStringValue() != "rita" {
		t.Fatalf("reader List: %v %v", out, err)
	}
	cases := []struct {
		name   string
		method string
		msg    map[string]any
		md     []string
		want   codes.Code
	}{
		{"no key", "/shop.Orders/List", nil, nil, codes.Unauthenticated},
		{"unknown key", "/shop.Orders/List", nil, []string{"x-api-key", "nobody-0123456789"}, codes.Unauthenticated},
		{"other tenant", "/shop.Orders/List", nil, []string{"x-api-key", "reader-key-0123456789", "x-tenant", "globex"}, codes.PermissionDenied},
		{"reader cancels", "/shop.Orders/Cancel", map[string]any{"id": "A-1", "tenant": "acme"}, reader, codes.PermissionDenied},
		{"clerk cancels", "/shop.Orders/Cancel", map[string]any{"id": "A-1", "tenant": "acme"}, clerk, codes.OK},
		{"clerk cancels elsewhere", "/shop.Orders/Cancel", map[string]any{"id": "G-1", "tenant": "globex"}, clerk, codes.PermissionDenied},
	}
	for _, c := range cases {
		if _, err := invoke(c.method, c.msg, c.md...); status.Code(err) != c.want {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}

	// The health service is exempt.
	hctx, hcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer hcancel()
	if resp, err := healthpb.NewHealthClient(conn).Check(hctx, &healthpb.HealthCheckRequest{}); err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v %v", resp, err)
	}

	// A stream: allowed for the caller's own tenant, refused otherwise
	// before its first message.
	watch := func(md ...string) (int, error) {
		sctx, scancel := context.WithTimeout(metadata.AppendToOutgoingContext(context.Background(), md...), 10*time.Second)
		defer scancel()
		s, err := conn.NewStream(sctx, &grpc.StreamDesc{ServerStreams: true}, "/shop.Orders/Watch")
		if err != nil {
			return 0, err
		}
		if err := s.SendMsg(&structpb.Struct{}); err != nil && err != io.EOF {
			return 0, err
		}
		if err := s.CloseSend(); err != nil {
			return 0, err
		}
		n := 0
		for {
			if err := s.RecvMsg(new(structpb.Struct)); err == io.EOF {
				return n, nil
			} else if err != nil {
				return n, err
			}
			n++
		}
	}
	if n, err := watch(clerk...); err != nil || n != 2 {
		t.Fatalf("watch: %d events, %v", n, err)
	}
	if n, err := watch("x-api-key", "clerk-key-0123456789", "x-tenant", "globex"); status.Code(err) != codes.PermissionDenied || n != 0 {
		t.Fatalf("watch elsewhere: %d events, %v", n, err)
	}

	// Server reflection, as grpcurl uses it (no key needed to read the
	// API's description): the service is listed and described, with its
	// three methods on google.protobuf.Struct.
	rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer rcancel()
	rs, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(rctx)
	if err != nil {
		t.Fatal(err)
	}
	ask := func(req *reflectionpb.ServerReflectionRequest) *reflectionpb.ServerReflectionResponse {
		t.Helper()
		if err := rs.Send(req); err != nil {
			t.Fatal(err)
		}
		resp, err := rs.Recv()
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	var services []string
	for _, s := range ask(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}).GetListServicesResponse().GetService() {
		services = append(services, s.GetName())
	}
	if !slices.Contains(services, "shop.Orders") {
		t.Fatalf("reflection lists %v, want shop.Orders", services)
	}
	files := ask(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: "shop.Orders"}}).
		GetFileDescriptorResponse().GetFileDescriptorProto()
	var methods []string
	for _, raw := range files {
		fd := new(descriptorpb.FileDescriptorProto)
		if err := proto.Unmarshal(raw, fd); err != nil {
			t.Fatal(err)
		}
		for _, svc := range fd.GetService() {
			for _, m := range svc.GetMethod() {
				methods = append(methods, fd.GetPackage()+"."+svc.GetName()+"/"+m.GetName()+"("+m.GetInputType()+")")
			}
		}
	}
	want := []string{"shop.Orders/List(.google.protobuf.Struct)", "shop.Orders/Cancel(.google.protobuf.Struct)", "shop.Orders/Watch(.google.protobuf.Struct)"}
	if !slices.Equal(methods, want) {
		t.Errorf("reflection describes %v, want %v", methods, want)
	}
}
