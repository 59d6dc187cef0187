package extauthz

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
)

// FromHTTP is the Request Envoy would send for r, whose body (as far as it
// was read) is body: the shape of Envoy's HTTP ext_authz mode, where the
// authorization service gets the original method, path and headers.
// Header names are lower-cased and repeated values joined with ",", with
// the pseudo-headers :authority, :method, :path and :scheme, as Envoy sends
// them over gRPC.
func FromHTTP(r *http.Request, body []byte) *Request {
	path := r.RequestURI
	if !strings.HasPrefix(path, "/") {
		path = r.URL.RequestURI()
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	h := make(map[string]string, len(r.Header)+4)
	for k, vs := range r.Header {
		h[strings.ToLower(k)] = strings.Join(vs, ",")
	}
	h[":authority"], h[":method"], h[":path"], h[":scheme"] = r.Host, r.Method, path, scheme
	if _, ok := h["content-length"]; !ok && r.ContentLength > 0 {
		h["content-length"] = strconv.FormatInt(r.ContentLength, 10)
	}
	req := &Request{
		ID: r.Header.Get("X-Request-Id"), Method: r.Method, Path: path, Host: r.Host, Scheme: scheme,
		Protocol: r.Proto, Headers: h, Body: string(body),
	}
	if r.ContentLength > 0 {
		req.Size = r.ContentLength
	} else if len(body) > 0 {
		req.Size = int64(len(body))
	}
	if host, port, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		p, _ := strconv.ParseUint(port, 10, 32)
		req.Source = Peer{Address: host, Port: uint32(p)}
	}
	return req
}

type requestKey struct{}

// NewContext returns a copy of ctx that carries req: the whole CheckRequest
// of a gRPC Check, which the envoy layout of package authz then uses
// instead of reading the HTTP request made from it.
func NewContext(ctx context.Context, req *Request) context.Context {
	return context.WithValue(ctx, requestKey{}, req)
}

// FromContext returns the Request ctx carries, or nil.
func FromContext(ctx context.Context) *Request {
	req, _ := ctx.Value(requestKey{}).(*Request)
	return req
}
