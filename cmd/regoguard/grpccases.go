package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/authz"
	"github.com/regoguard/regoguard/grpcauthz"
)

// caseGRPC describes a gRPC call in a cases file, judged by the gRPC
// interceptors' own Authorize with the case's identity:
//
//   - name: readers may list orders
//     grpc: {method: /shop.Orders/List, metadata: {x-tenant: acme}, message: {page_size: 10}}
//     identity: {sub: alice, claims: {roles: [reader]}}
//     expect: {allow: true, code: OK}
type caseGRPC struct {
	// Method is the full method name, /package.Service/Method.
	Method string `yaml:"method"`
	// Metadata are the call's metadata; credentials are left out of the
	// input as in a live call (the case's identity stands for them).
	Metadata map[string]string `yaml:"metadata"`
	// Message is the request message as its JSON form (protojson with the
	// .proto field names); default an empty message.
	Message map[string]any `yaml:"message"`
	// Stream marks a streaming call, judged without a message.
	Stream bool `yaml:"stream"`
	// Peer is the client's address; default 192.0.2.1:1234.
	Peer string `yaml:"peer"`
}

func (g *caseGRPC) validate(c *testCase) error {
	if c.Request.Method != "" || c.Request.Path != "" || c.Request.Body != nil || len(c.Request.Headers) > 0 || len(c.Request.Query) > 0 {
		return fmt.Errorf("a case has either request or grpc, not both")
	}
	if _, err := g.call(); err != nil {
		return err
	}
	if c.Name == "" {
		c.Name = "grpc " + g.Method
	}
	if c.Expect != nil && c.Expect.Code != "" {
		if _, ok := grpcCode(c.Expect.Code); !ok {
			return fmt.Errorf("expect.code %q is not a gRPC status code name such as PermissionDenied", c.Expect.Code)
		}
	}
	return nil
}

// call is the gRPC call the interceptors will see.
func (g *caseGRPC) call() (grpcauthz.Call, error) {
	c := grpcauthz.Call{FullMethod: g.Method, Stream: g.Stream, Metadata: metadata.MD{}}
	if !strings.HasPrefix(g.Method, "/") || strings.Count(g.Method, "/") != 2 {
		return c, fmt.Errorf("grpc.method %q must be a full method name such as /pkg.Service/Method", g.Method)
	}
	for k, v := range g.Metadata {
		c.Metadata.Append(k, v)
	}
	addr := g.Peer
	if addr == "" {
		addr = "192.0.2.1:1234"
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return c, fmt.Errorf("grpc.peer: %w", err)
	}
	c.Peer = &peer.Peer{Addr: net.TCPAddrFromAddrPort(ap)}
	if !g.Stream {
		msg, err := structpb.NewStruct(g.Message)
		if err != nil {
			return c, fmt.Errorf("grpc.message: %w", err)
		}
		c.Request = msg
	} else if g.Message != nil {
		return c, fmt.Errorf("grpc.message: a stream is judged before its first message")
	}
	return c, nil
}

// grpcCode parses a status code name (PermissionDenied, permission_denied,
// PERMISSION_DENIED).
func grpcCode(name string) (codes.Code, bool) {
	want := strings.ToLower(strings.ReplaceAll(name, "_", ""))
	for c := codes.OK; c <= codes.Unauthenticated; c++ {
		if strings.ToLower(c.String()) == want {
			return c, true
		}
	}
	return 0, false
}

// httpStatus is the HTTP status of a gRPC code (as grpc-gateway maps them),
// so that expect.status reads the same for both kinds of case.
func httpStatus(c codes.Code) int {
	switch c {
	case codes.OK:
		return http.StatusOK
	case codes.InvalidArgument:
		return http.StatusBadRequest
	case codes.Unauthenticated:
		return http.StatusUnauthorized
	case codes.PermissionDenied:
		return http.StatusForbidden
	case codes.ResourceExhausted:
		return http.StatusTooManyRequests
	case codes.Unimplemented:
		return http.StatusNotImplemented
	case codes.Unavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// newGRPCJudge makes the interceptors a live server would run with cfg's
// evaluator and anonymous rule. Cases give identities, not credentials, so
// they are judged with Authorize and never authenticated.
func newGRPCJudge(cfg authz.Config) (*grpcauthz.Interceptor, error) {
	return grpcauthz.New(grpcauthz.Config{
		Tokens:    noTokens{},
		Evaluator: cfg.Evaluator, AllowAnonymous: cfg.AllowAnonymous, Logger: cfg.Logger,
		MaxMessageBytes: int(cfg.MaxBodyBytes), PreserveTokens: cfg.PreserveTokens,
	})
}

// judgeGRPC judges a gRPC case made by id.
func (j *judge) judgeGRPC(ctx context.Context, g *caseGRPC, id *authn.Identity) (outcome, error) {
	call, err := g.call()
	if err != nil {
		return outcome{}, err
	}
	res, err := j.grpc.Authorize(ctx, call, id)
	st := status.Convert(err)
	o := outcome{Status: httpStatus(st.Code()), Code: st.Code().String(), Allow: err == nil, Reason: res.Decision.Reason, DecisionID: res.Decision.ID}
	if err != nil {
		o.Reason = st.Message()
	}
	return o, nil
}

// noTokens refuses every token: a case's identity stands for its credentials.
type noTokens struct{}

func (noTokens) Verify(context.Context, string) (*authn.Identity, error) {
	return nil, errors.New("check cases give an identity, not a token")
}
