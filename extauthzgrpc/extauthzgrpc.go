// Package extauthzgrpc serves Envoy's external authorization gRPC API
// (envoy.service.auth.v3.Authorization/Check) with regoguard: every Check
// is judged by an [authz.Middleware] made with the envoy input layout
// (authz.LayoutEnvoy, opa-envoy-plugin's input; see package extauthz), so a
// policy written for opa-envoy-plugin runs unchanged, with regoguard's
// authenticators, decision logs, metrics, traces, dry run and decision
// cache.
//
// It lives apart from the rest so that nobody links gRPC or Envoy's API
// types unasked.
//
// # Answers
//
// A Check is always answered with a CheckResponse, never a gRPC error:
//
//   - allowed: status OK, with an OkHttpResponse that adds the policy's
//     headers and regoguard's identity headers (X-Auth-Request-User, ...)
//     to the upstream request, removes the policy's
//     request_headers_to_remove and whatever the middleware removes
//     (identity headers the client sent, the credentials it verified unless
//     authz.Config.ForwardCredentials), and adds response_headers_to_add to
//     the client's response; the decision's dynamic_metadata goes to Envoy.
//   - refused by the policy: PERMISSION_DENIED, with a DeniedHttpResponse
//     holding the policy's http_status (default 403), headers and body.
//   - no or a bad credential: UNAUTHENTICATED (401, WWW-Authenticate);
//     a request that cannot be judged (a path not in canonical form, a body
//     that is not JSON): INVALID_ARGUMENT (400); no decision could be made:
//     UNAVAILABLE (503). Each denies the request whatever Envoy's
//     failure_mode_allow says.
package extauthzgrpc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/authz"
	"github.com/regoguard/regoguard/extauthz"
)

// Config configures a [Server].
type Config struct {
	// Guard judges each Check: an authz.Middleware with Layout
	// authz.LayoutEnvoy, whose evaluator reads decisions with
	// extauthz.ParseResult.
	Guard *authz.Middleware
	// ForwardOptions configures the identity headers added upstream.
	ForwardOptions authn.ForwardOptions
}

// Server implements envoy.service.auth.v3.Authorization. Make one with [New]
// and register it with [Server.Register].
type Server struct {
	authv3.UnimplementedAuthorizationServer
	guarded http.Handler
	fwd     authn.ForwardOptions
}

// New returns the Check server of cfg.
func New(cfg Config) (*Server, error) {
	if cfg.Guard == nil {
		return nil, errors.New("extauthzgrpc: no Guard: give an authz.Middleware with Layout authz.LayoutEnvoy")
	}
	s := &Server{fwd: cfg.ForwardOptions}
	s.guarded = cfg.Guard.Handler(http.HandlerFunc(allowed))
	return s, nil
}

// Register registers s on g.
func (s *Server) Register(g *grpc.Server) { authv3.RegisterAuthorizationServer(g, s) }

// Check implements envoy.service.auth.v3.AuthorizationServer.
func (s *Server) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	er, err := Request(req)
	if err != nil {
		return denied(http.StatusBadRequest, nil, err.Error()), nil
	}
	rec := &recorder{header: http.Header{}}
	hr, err := httpRequest(context.WithValue(extauthz.NewContext(ctx, er), recorderKey{}, rec), er)
	if err != nil {
		return denied(http.StatusBadRequest, nil, err.Error()), nil
	}
	s.guarded.ServeHTTP(rec, hr)
	if rec.passed == nil {
		return denied(rec.statusCode(), rec.header, rec.body.String()), nil
	}
	return s.ok(hr, rec)
}

// allowed is what an allowed Check reaches: it hands the request the
// middleware passed on (without what it removed) to the recorder.
func allowed(_ http.ResponseWriter, r *http.Request) {
	if rec, ok := r.Context().Value(recorderKey{}).(*recorder); ok {
		rec.passed = r
	}
}

type recorderKey struct{}

// ok builds the answer to an allowed Check.
func (s *Server) ok(orig *http.Request, rec *recorder) (*authv3.CheckResponse, error) {
	res, _ := authz.FromContext(rec.passed.Context())
	result, err := extauthz.ReadResult(res.Decision)
	if err != nil {
		// The engine's parser read it already; a decision a wrapper
		// changed since is refused rather than half applied.
		return denied(http.StatusServiceUnavailable, nil, "the decision cannot be applied"), nil
	}
	okr := &authv3.OkHttpResponse{}
	set := map[string]bool{}
	for k, vs := range result.Headers {
		for _, v := range vs {
			okr.Headers = append(okr.Headers, header(k, v, corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD))
		}
		set[strings.ToLower(k)] = true
	}
	if res.Identity != nil {
		h, err := authn.ForwardedIdentity(res.Identity, s.fwd)
		if err != nil {
			return denied(http.StatusForbidden, nil, "the caller's identity cannot be passed on faithfully"), nil
		}
		for k, vs := range h {
			for _, v := range vs {
				okr.Headers = append(okr.Headers, header(k, v, corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD))
			}
			set[strings.ToLower(k)] = true
		}
	}
	removed := map[string]bool{}
	for _, k := range result.RequestHeadersToRemove {
		removed[strings.ToLower(k)] = true
	}
	// What the middleware removed from the request it passed on (identity
	// headers the client sent, credentials it consumed) is removed
	// upstream too, in the spelling the client used.
	for k := range orig.Header {
		if _, kept := rec.passed.Header[k]; !kept {
			removed[strings.ToLower(k)] = true
		}
	}
	for k := range removed {
		if !set[k] {
			okr.HeadersToRemove = append(okr.HeadersToRemove, k)
		}
	}
	for k, vs := range result.ResponseHeadersToAdd {
		for _, v := range vs {
			okr.ResponseHeadersToAdd = append(okr.ResponseHeadersToAdd, header(k, v, corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD))
		}
	}
	resp := &authv3.CheckResponse{
		Status:       &status.Status{Code: int32(codes.OK)},
		HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: okr},
	}
	if result.DynamicMetadata != nil {
		md, err := structpb.NewStruct(jsonCompatible(result.DynamicMetadata).(map[string]any))
		if err != nil {
			return denied(http.StatusServiceUnavailable, nil, "the decision's dynamic_metadata cannot be sent"), nil
		}
		resp.DynamicMetadata = md
	}
	return resp, nil
}

// jsonCompatible turns json.Number values into float64, which structpb
// takes.
func jsonCompatible(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = jsonCompatible(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonCompatible(e)
		}
		return out
	case interface{ Float64() (float64, error) }:
		f, _ := x.Float64()
		return f
	}
	return v
}

func header(k, v string, action corev3.HeaderValueOption_HeaderAppendAction) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: k, Value: v}, AppendAction: action}
}

// denied is the CheckResponse of a refusal with the given HTTP status.
func denied(httpStatus int, h http.Header, body string) *authv3.CheckResponse {
	code := codes.PermissionDenied
	switch {
	case h.Get("X-Decision-Id") != "":
		// The policy refused, whatever status it chose.
	case httpStatus == http.StatusUnauthorized:
		code = codes.Unauthenticated
	case httpStatus >= 500:
		code = codes.Unavailable
	case httpStatus == http.StatusBadRequest || httpStatus == http.StatusRequestEntityTooLarge || httpStatus == http.StatusUnsupportedMediaType:
		code = codes.InvalidArgument
	}
	d := &authv3.DeniedHttpResponse{Status: &typev3.HttpStatus{Code: typev3.StatusCode(httpStatus)}, Body: body}
	for k, vs := range h {
		if strings.EqualFold(k, "Content-Length") {
			continue
		}
		for _, v := range vs {
			d.Headers = append(d.Headers, header(strings.ToLower(k), v, corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD))
		}
	}
	return &authv3.CheckResponse{
		Status:       &status.Status{Code: int32(code), Message: http.StatusText(httpStatus)},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: d},
	}
}

// Request is the extauthz.Request of a CheckRequest: the fields
// opa-envoy-plugin's input holds, with metadataContext,
// routeMetadataContext and tlsSession in their protojson form.
func Request(req *authv3.CheckRequest) (*extauthz.Request, error) {
	a := req.GetAttributes()
	h := a.GetRequest().GetHttp()
	er := &extauthz.Request{
		ID: h.GetId(), Method: h.GetMethod(), Path: h.GetPath(), Host: h.GetHost(), Scheme: h.GetScheme(),
		Query: h.GetQuery(), Fragment: h.GetFragment(), Protocol: h.GetProtocol(), Headers: h.GetHeaders(),
		Body: h.GetBody(), RawBody: h.GetRawBody(), Size: h.GetSize(),
		Source: peer(a.GetSource()), Destination: peer(a.GetDestination()),
		ContextExtensions: a.GetContextExtensions(),
	}
	if len(h.GetHeaderMap().GetHeaders()) > 0 && len(er.Headers) == 0 {
		// Envoy's encode_raw_headers: the same headers as a list.
		er.Headers = map[string]string{}
		for _, hv := range h.GetHeaderMap().GetHeaders() {
			v := hv.GetValue()
			if v == "" {
				v = string(hv.GetRawValue())
			}
			if prev, ok := er.Headers[hv.GetKey()]; ok {
				v = prev + "," + v
			}
			er.Headers[hv.GetKey()] = v
		}
	}
	if t := a.GetRequest().GetTime(); t != nil {
		b, err := protojson.Marshal(t)
		if err != nil {
			return nil, err
		}
		er.Time = strings.Trim(string(b), `"`)
	}
	extra := map[string]proto.Message{}
	if m := a.GetMetadataContext(); m != nil {
		extra["metadataContext"] = m
	}
	if m := a.GetRouteMetadataContext(); m != nil {
		extra["routeMetadataContext"] = m
	}
	if m := a.GetTlsSession(); m != nil {
		extra["tlsSession"] = m
	}
	for k, m := range extra {
		v, err := protoJSON(m)
		if err != nil {
			return nil, err
		}
		if er.Extra == nil {
			er.Extra = map[string]any{}
		}
		er.Extra[k] = v
	}
	return er, nil
}

func protoJSON(m proto.Message) (any, error) {
	b, err := protojson.Marshal(m)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	return v, dec.Decode(&v)
}

func peer(p *authv3.AttributeContext_Peer) extauthz.Peer {
	sa := p.GetAddress().GetSocketAddress()
	return extauthz.Peer{Address: sa.GetAddress(), Port: sa.GetPortValue(), Principal: p.GetPrincipal(),
		Certificate: p.GetCertificate(), Service: p.GetService(), Labels: p.GetLabels()}
}

// httpRequest is the HTTP request a Check describes, for the middleware:
// its authenticators read the credentials in its headers, its path checks
// read its path.
func httpRequest(ctx context.Context, er *extauthz.Request) (*http.Request, error) {
	path := er.Path
	if path == "" {
		path = er.Headers[":path"]
	}
	if !strings.HasPrefix(path, "/") {
		return nil, errors.New("extauthzgrpc: the request's path is not an absolute path")
	}
	u, err := url.ParseRequestURI(path)
	if err != nil {
		return nil, errors.New("extauthzgrpc: the request's path is not a URL path")
	}
	method := er.Method
	if method == "" {
		method = er.Headers[":method"]
	}
	body := []byte(er.Body)
	if len(er.RawBody) > 0 {
		body = er.RawBody
	}
	r, err := http.NewRequestWithContext(ctx, method, "http://check.invalid/", bytes.NewReader(body))
	if err != nil {
		return nil, errors.New("extauthzgrpc: the request's method is not an HTTP method")
	}
	r.URL, r.RequestURI = u, path
	r.Host = er.Host
	if r.Host == "" {
		r.Host = er.Headers[":authority"]
	}
	r.Proto = er.Protocol
	r.Header = make(http.Header, len(er.Headers))
	for k, v := range er.Headers {
		if strings.HasPrefix(k, ":") {
			continue
		}
		r.Header[http.CanonicalHeaderKey(k)] = []string{v}
	}
	r.ContentLength = int64(len(body))
	if er.Source.Address != "" {
		r.RemoteAddr = net.JoinHostPort(er.Source.Address, strconv.Itoa(int(er.Source.Port)))
	}
	return r, nil
}

// recorder is the ResponseWriter a Check is judged with.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
	passed *http.Request // the request the middleware let through
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	if r.body.Len() < 64<<10 {
		r.body.Write(b)
	}
	return len(b), nil
}

func (r *recorder) statusCode() int {
	if r.status == 0 {
		return http.StatusForbidden
	}
	return r.status
}
