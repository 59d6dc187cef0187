// Package extauthz builds the policy input of Envoy's external authorization
// (ext_authz) exactly as opa-envoy-plugin does, and reads its decisions, so
// that a policy written for opa-envoy-plugin runs unchanged in regoguard.
//
// It holds no Envoy or gRPC types: the gRPC Authorization service lives in
// package extauthzgrpc, and Envoy's HTTP ext_authz mode is served by the
// forward-auth handler (package forwardauth) with [FromHTTP].
//
// # Input
//
// The input is the protojson form of envoy.service.auth.v3.CheckRequest
// (lower camel case keys, zero values left out, 64-bit integers as strings)
// with opa-envoy-plugin's additions:
//
//	{"attributes": {"source": {"address": {"socketAddress": {"address", "portValue"}}, "principal"},
//	                "destination": {...},
//	                "request": {"time", "http": {"id", "method", "headers", "path", "host",
//	                            "scheme", "query", "fragment", "size", "protocol", "body", "rawBody"}},
//	                "contextExtensions": {...}, "metadataContext": {...}},
//	 "parsed_path": ["people"], "parsed_query": {"lang": ["en"]},
//	 "parsed_body": {...} or null, "truncated_body": false,
//	 "version": {"ext_authz": "v3", "encoding": "protojson"}}
//
// The headers are the request's as Envoy sent them, Authorization included:
// opa-envoy-plugin policies verify tokens themselves (io.jwt.decode_verify).
// Identity headers (X-Forwarded-User, X-Auth-Request-*, in any spelling) are
// left out: only regoguard states an identity, in input.user when an
// authenticator identified the caller. Decision logs mask the credential
// headers ([LogMask]).
//
// # Decision
//
// The decision (default data.envoy.authz.allow) is a boolean, or
// opa-envoy-plugin's object: allowed (required), headers,
// response_headers_to_add, request_headers_to_remove, body, http_status and
// dynamic_metadata. [ParseResult] reads it for the engine; [ReadResult]
// gives the whole answer to a front end.
package extauthz

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/internal/headers"
	"github.com/regoguard/regoguard/internal/jsonkeys"
)

// DefaultDecision is opa-envoy-plugin's default decision path.
const DefaultDecision = "envoy/authz/allow"

// ErrBadRequest marks a request whose input cannot be built as the policy
// would read it: a path that is not a URL, or a JSON body that is not valid
// JSON (opa-envoy-plugin fails such a check too). It is refused, never
// judged as if the body were absent.
var ErrBadRequest = errors.New("extauthz: bad request")

// Request is the part of a CheckRequest that the input holds, without
// Envoy's types.
type Request struct {
	// ID is Envoy's request ID (x-request-id or a stream ID).
	ID string
	// Method, Path (with the query), Host, Scheme, Query, Fragment and
	// Protocol are as Envoy sends them in attributes.request.http.
	Method, Path, Host, Scheme, Query, Fragment, Protocol string
	// Headers are the request's headers, names in lower case, repeated
	// values joined with ",", as Envoy sends them.
	Headers map[string]string
	// Body is the request body Envoy buffered (with_request_body), and
	// RawBody the same as bytes (pack_as_bytes). Size is the body's full
	// size (-1 or 0: unknown).
	Body    string
	RawBody []byte
	Size    int64
	// Time is attributes.request.time, in RFC 3339 (protojson's form).
	Time string
	// Source and Destination are the peers of the original connection.
	Source, Destination Peer
	// ContextExtensions are the route's context_extensions.
	ContextExtensions map[string]string
	// Extra holds other attributes in their protojson form, by their
	// protojson name (metadataContext, routeMetadataContext, tlsSession).
	Extra map[string]any
}

// Peer is a source or destination of attributes.
type Peer struct {
	Address     string
	Port        uint32
	Principal   string
	Certificate string
	Service     string
	Labels      map[string]string
}

// Input returns the policy input of r in opa-envoy-plugin's layout, without
// the identity headers (see the package documentation). user, when not
// nil, is added as input.user.
func Input(r *Request, user ast.Value) (ast.Value, error) {
	attrs := ast.NewObject()
	if p := peerObject(r.Source); p != nil {
		attrs.Insert(ast.StringTerm("source"), ast.NewTerm(p))
	}
	if p := peerObject(r.Destination); p != nil {
		attrs.Insert(ast.StringTerm("destination"), ast.NewTerm(p))
	}
	req := ast.NewObject()
	if r.Time != "" {
		req.Insert(ast.StringTerm("time"), ast.StringTerm(r.Time))
	}
	h := ast.NewObject()
	put := func(k, v string) {
		if v != "" {
			h.Insert(ast.StringTerm(k), ast.StringTerm(v))
		}
	}
	put("id", r.ID)
	put("method", r.Method)
	if len(r.Headers) > 0 {
		hdrs := ast.NewObject()
		for k, v := range r.Headers {
			if identityHeader(k) {
				continue
			}
			hdrs.Insert(ast.StringTerm(k), ast.StringTerm(v))
		}
		h.Insert(ast.StringTerm("headers"), ast.NewTerm(hdrs))
	}
	put("path", r.Path)
	put("host", r.Host)
	put("scheme", r.Scheme)
	put("query", r.Query)
	put("fragment", r.Fragment)
	if r.Size != 0 {
		// protojson writes int64 as a string.
		h.Insert(ast.StringTerm("size"), ast.StringTerm(strconv.FormatInt(r.Size, 10)))
	}
	put("protocol", r.Protocol)
	put("body", r.Body)
	if len(r.RawBody) > 0 {
		h.Insert(ast.StringTerm("rawBody"), ast.StringTerm(base64.StdEncoding.EncodeToString(r.RawBody)))
	}
	if h.Len() > 0 {
		req.Insert(ast.StringTerm("http"), ast.NewTerm(h))
	}
	if req.Len() > 0 {
		attrs.Insert(ast.StringTerm("request"), ast.NewTerm(req))
	}
	if len(r.ContextExtensions) > 0 {
		attrs.Insert(ast.StringTerm("contextExtensions"), ast.NewTerm(stringMap(r.ContextExtensions)))
	}
	for k, v := range r.Extra {
		val, err := ast.InterfaceToValue(v)
		if err != nil {
			return nil, fmt.Errorf("extauthz: attribute %s: %w", k, err)
		}
		attrs.Insert(ast.StringTerm(k), ast.NewTerm(val))
	}

	in := ast.NewObject(
		[2]*ast.Term{ast.StringTerm("attributes"), ast.NewTerm(attrs)},
		[2]*ast.Term{ast.StringTerm("version"), ast.ObjectTerm(
			[2]*ast.Term{ast.StringTerm("ext_authz"), ast.StringTerm("v3")},
			[2]*ast.Term{ast.StringTerm("encoding"), ast.StringTerm("protojson")})},
	)
	parsedPath, parsedQuery, err := parsePath(r.Path)
	if err != nil {
		return nil, err
	}
	in.Insert(ast.StringTerm("parsed_path"), ast.NewTerm(parsedPath))
	in.Insert(ast.StringTerm("parsed_query"), ast.NewTerm(parsedQuery))
	body, truncated, err := parseBody(r.Headers, r.Body)
	if err != nil {
		return nil, err
	}
	in.Insert(ast.StringTerm("parsed_body"), ast.NewTerm(body))
	in.Insert(ast.StringTerm("truncated_body"), ast.BooleanTerm(truncated))
	if user != nil {
		in.Insert(ast.StringTerm("user"), ast.NewTerm(user))
	}
	return in, nil
}

// identityHeader reports whether name is an identity header in any
// spelling (authn's list: X-Forwarded-User, X-Auth-Request-*, ...).
func identityHeader(name string) bool { return authn.IsIdentityHeader(name) }

func peerObject(p Peer) ast.Value {
	o := ast.NewObject()
	if p.Address != "" || p.Port != 0 {
		sa := ast.NewObject()
		if p.Address != "" {
			sa.Insert(ast.StringTerm("address"), ast.StringTerm(p.Address))
		}
		if p.Port != 0 {
			sa.Insert(ast.StringTerm("portValue"), ast.IntNumberTerm(int(p.Port)))
		}
		o.Insert(ast.StringTerm("address"), ast.ObjectTerm([2]*ast.Term{ast.StringTerm("socketAddress"), ast.NewTerm(sa)}))
	}
	if p.Service != "" {
		o.Insert(ast.StringTerm("service"), ast.StringTerm(p.Service))
	}
	if len(p.Labels) > 0 {
		o.Insert(ast.StringTerm("labels"), ast.NewTerm(stringMap(p.Labels)))
	}
	if p.Principal != "" {
		o.Insert(ast.StringTerm("principal"), ast.StringTerm(p.Principal))
	}
	if p.Certificate != "" {
		o.Insert(ast.StringTerm("certificate"), ast.StringTerm(p.Certificate))
	}
	if o.Len() == 0 {
		return nil
	}
	return o
}

func stringMap(m map[string]string) ast.Object {
	o := ast.NewObject()
	for k, v := range m {
		o.Insert(ast.StringTerm(k), ast.StringTerm(v))
	}
	return o
}

// parsePath is opa-envoy-plugin's parsed_path and parsed_query: the path
// split on "/" without its leading slashes ("/" gives [""]), and the query
// as arrays of values.
func parsePath(path string) (*ast.Array, ast.Object, error) {
	u, err := url.Parse(path)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: path %q: %v", ErrBadRequest, path, err)
	}
	parts := strings.Split(strings.TrimLeft(u.Path, "/"), "/")
	terms := make([]*ast.Term, len(parts))
	for i, p := range parts {
		terms[i] = ast.StringTerm(p)
	}
	q := ast.NewObject()
	for k, vs := range u.Query() {
		vals := make([]*ast.Term, len(vs))
		for i, v := range vs {
			vals[i] = ast.StringTerm(v)
		}
		q.Insert(ast.StringTerm(k), ast.ArrayTerm(vals...))
	}
	return ast.NewArray(terms...), q, nil
}

// parseBody is opa-envoy-plugin's parsed_body and truncated_body: a body
// whose content-type holds application/json is parsed, unless Envoy cut it
// (content-length larger than the body: truncated, parsed_body null). Any
// other body gives null. A JSON body that does not parse, or that names a
// key twice in one object (parsers disagree on which one wins), is
// ErrBadRequest.
func parseBody(headers map[string]string, body string) (ast.Value, bool, error) {
	ct, ok := headers["content-type"]
	if !ok || !strings.Contains(ct, "application/json") || body == "" {
		return ast.Null{}, false, nil
	}
	if cl, ok := headers["content-length"]; ok {
		n, err := strconv.ParseInt(cl, 10, 64)
		if err != nil {
			return nil, false, fmt.Errorf("%w: content-length %q", ErrBadRequest, cl)
		}
		if n != -1 && n > int64(len(body)) {
			return ast.Null{}, true, nil
		}
	}
	if err := jsonkeys.Unique(json.NewDecoder(strings.NewReader(body))); err != nil {
		return nil, false, fmt.Errorf("%w: body is not valid JSON: %v", ErrBadRequest, err)
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(body)))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, false, fmt.Errorf("%w: body is not valid JSON: %v", ErrBadRequest, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, false, fmt.Errorf("%w: body is not valid JSON: data after the first value", ErrBadRequest)
	}
	val, err := ast.InterfaceToValue(v)
	if err != nil {
		return nil, false, fmt.Errorf("%w: body: %v", ErrBadRequest, err)
	}
	return val, false, nil
}

// LogMask lists the input fields that [Masker] leaves out, as
// slash-separated paths for authz.Config.LogInputMask (the per-decision log
// line): the usual credential headers, and the headers named.
func LogMask(credentialHeaders ...string) []string {
	names := []string{"authorization", "proxy-authorization", "cookie", "x-api-key"}
	for _, h := range credentialHeaders {
		names = append(names, strings.ToLower(h))
	}
	out := make([]string, 0, len(names))
	for _, n := range names {
		out = append(out, "/attributes/request/http/headers/"+n)
	}
	return out
}

// Masker returns what decision events keep of an input of this layout: a
// copy without the credential headers (the headers named, in any spelling,
// and every header that looks like a credential: authn.LooksLikeCredential),
// so that what the policy read stays in the event and the secrets do not.
// The input itself is not modified.
func Masker(credentialHeaders ...string) func(ast.Value) ast.Value {
	drop := headers.NewSet(append([]string{"x-api-key"}, credentialHeaders...)...)
	return func(in ast.Value) ast.Value { return masked(in, drop) }
}

func masked(in ast.Value, drop headers.Set) ast.Value {
	obj, ok := in.(ast.Object)
	if !ok {
		return in
	}
	hdrs, err := obj.Find(ast.Ref{ast.StringTerm("attributes"), ast.StringTerm("request"), ast.StringTerm("http"), ast.StringTerm("headers")})
	if err != nil {
		return in
	}
	headers, ok := hdrs.(ast.Object)
	if !ok {
		return in
	}
	kept := ast.NewObject()
	dropped := false
	headers.Foreach(func(k, v *ast.Term) {
		name, _ := k.Value.(ast.String)
		if authn.LooksLikeCredential(string(name)) || drop.Has(string(name)) {
			dropped = true
			return
		}
		kept.Insert(k, v)
	})
	if !dropped {
		return in
	}
	return replaceAt(obj, []string{"attributes", "request", "http", "headers"}, kept)
}

// replaceAt returns a copy of obj with the value at path replaced, copying
// only the objects on the path.
func replaceAt(obj ast.Object, path []string, v ast.Value) ast.Object {
	out := ast.NewObject()
	obj.Foreach(func(k, t *ast.Term) {
		if s, ok := k.Value.(ast.String); ok && string(s) == path[0] {
			if len(path) == 1 {
				out.Insert(k, ast.NewTerm(v))
				return
			}
			if inner, ok := t.Value.(ast.Object); ok {
				out.Insert(k, ast.NewTerm(replaceAt(inner, path[1:], v)))
				return
			}
		}
		out.Insert(k, t)
	})
	return out
}
