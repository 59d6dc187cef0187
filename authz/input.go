package authz

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/regoguard/regoguard/authn"
)

// Layout chooses the shape of the policy input document.
type Layout string

const (
	// LayoutRegoguard is the default input layout, documented field by field
	// in the README:
	//
	//	{"method", "path", "path_segments", "query", "headers", "host",
	//	 "scheme", "remote_addr", "user": {"authenticated", "method", "sub",
	//	 "claims"}, "body"?}
	LayoutRegoguard Layout = "regoguard"
	// LayoutFastAPIOPA reproduces the input of the Python fastapi-opa
	// middleware, so policies written for it run unchanged: the user's
	// claims at the top level, "request_method", and "request_path" as the
	// path split on "/" without the leading empty segment.
	LayoutFastAPIOPA Layout = "fastapi-opa"
)

// Headers that carry credentials. They never reach the policy input unless
// Config.InputHeaders names them.
var credentialHeaders = []string{"authorization", "cookie", "proxy-authorization"}

// DefaultMaxBodyBytes bounds the request body read into the input when
// Config.Body is on and sets no limit.
const DefaultMaxBodyBytes = 64 << 10

// ErrBadRequest marks an error caused by the request itself, such as a body
// that is not valid JSON. The middleware answers it with 400 and the error's
// message; an enricher returns it (wrapped) to do the same.
var ErrBadRequest = errors.New("bad request")

// errBodyTooLarge is answered with 413.
var errBodyTooLarge = errors.New("request body too large for policy input")

// inputBuilder builds the policy input document straight into OPA values,
// so no request pays for a JSON round trip.
type inputBuilder struct {
	layout        Layout
	dropHeaders   map[string]bool
	withBody      bool
	maxBody       int64
	enrichers     []Enricher
	preserveToken bool
}

// Pre-built keys: the same *ast.Term for every request.
var (
	keyMethod        = ast.StringTerm("method")
	keyPath          = ast.StringTerm("path")
	keyPathSegments  = ast.StringTerm("path_segments")
	keyQuery         = ast.StringTerm("query")
	keyHeaders       = ast.StringTerm("headers")
	keyHost          = ast.StringTerm("host")
	keyScheme        = ast.StringTerm("scheme")
	keyRemoteAddr    = ast.StringTerm("remote_addr")
	keyUser          = ast.StringTerm("user")
	keyAuthenticated = ast.StringTerm("authenticated")
	keySub           = ast.StringTerm("sub")
	keyClaims        = ast.StringTerm("claims")
	keyBody          = ast.StringTerm("body")
	keyToken         = ast.StringTerm("token")
	keyRequestMethod = ast.StringTerm("request_method")
	keyRequestPath   = ast.StringTerm("request_path")
)

// build returns the input document for r, made by the identity id (nil when
// the caller is anonymous). body is the request body when it was read.
func (b *inputBuilder) build(r *http.Request, id *authn.Identity, body []byte) (ast.Value, error) {
	var parsedBody ast.Value
	if b.withBody && body != nil {
		v, err := parseBody(r.Header.Get("Content-Type"), body)
		if err != nil {
			return nil, err
		}
		parsedBody = v
	}
	var in ast.Object
	var err error
	if b.layout == LayoutFastAPIOPA {
		in, err = b.fastAPIInput(r, id)
	} else {
		in, err = b.regoguardInput(r, id)
	}
	if err != nil {
		return nil, err
	}
	if parsedBody != nil {
		in.Insert(keyBody, ast.NewTerm(parsedBody))
	}
	for _, e := range b.enrichers {
		if e.skips(r.URL.Path) {
			continue
		}
		v, err := e.Func(r, body)
		if err != nil {
			return nil, fmt.Errorf("input enricher %q: %w", e.Key, err)
		}
		val, err := toValue(v)
		if err != nil {
			return nil, fmt.Errorf("input enricher %q: %w", e.Key, err)
		}
		in.Insert(ast.StringTerm(e.Key), ast.NewTerm(val))
	}
	return in, nil
}

func (b *inputBuilder) regoguardInput(r *http.Request, id *authn.Identity) (ast.Object, error) {
	user, err := b.userObject(id)
	if err != nil {
		return nil, err
	}
	in := ast.NewObjectWithCapacity(10)
	in.Insert(keyMethod, ast.StringTerm(r.Method))
	in.Insert(keyPath, ast.StringTerm(r.URL.Path))
	in.Insert(keyPathSegments, ast.NewTerm(pathSegments(r.URL.Path)))
	in.Insert(keyQuery, ast.NewTerm(queryObject(r)))
	in.Insert(keyHeaders, ast.NewTerm(b.headersObject(r.Header)))
	in.Insert(keyHost, ast.StringTerm(r.Host))
	in.Insert(keyScheme, ast.StringTerm(scheme(r)))
	in.Insert(keyRemoteAddr, ast.StringTerm(r.RemoteAddr))
	in.Insert(keyUser, ast.NewTerm(user))
	return in, nil
}

func (b *inputBuilder) userObject(id *authn.Identity) (ast.Object, error) {
	user := ast.NewObjectWithCapacity(5)
	if id == nil {
		user.Insert(keyAuthenticated, ast.InternedTerm(false))
		user.Insert(keyMethod, ast.StringTerm(authn.MethodNone))
		user.Insert(keyClaims, ast.NewTerm(ast.NewObject()))
		return user, nil
	}
	claims, err := claimsObject(id.Claims)
	if err != nil {
		return nil, err
	}
	user.Insert(keyAuthenticated, ast.InternedTerm(id.Method != authn.MethodNone))
	user.Insert(keyMethod, ast.StringTerm(id.Method))
	user.Insert(keySub, ast.StringTerm(id.Subject))
	user.Insert(keyClaims, ast.NewTerm(claims))
	if b.preserveToken && id.Token != "" {
		user.Insert(keyToken, ast.StringTerm(id.Token))
	}
	return user, nil
}

// fastAPIInput is the input fastapi-opa sends: claims at the top level, then
// request_method and request_path, which win over claims of the same name.
func (b *inputBuilder) fastAPIInput(r *http.Request, id *authn.Identity) (ast.Object, error) {
	in := ast.NewObject()
	if id != nil {
		claims, err := claimsObject(id.Claims)
		if err != nil {
			return nil, err
		}
		in = claims
		if b.preserveToken && id.Token != "" {
			in.Insert(keyToken, ast.StringTerm(id.Token))
		}
	}
	in.Insert(keyRequestMethod, ast.StringTerm(r.Method))
	in.Insert(keyRequestPath, ast.NewTerm(fastAPIPath(r.URL.Path)))
	return in, nil
}

func claimsObject(claims map[string]any) (ast.Object, error) {
	if len(claims) == 0 {
		return ast.NewObject(), nil
	}
	v, err := ast.InterfaceToValue(claims)
	if err != nil {
		return nil, fmt.Errorf("identity claims: %w", err)
	}
	obj, ok := v.(ast.Object)
	if !ok {
		return nil, fmt.Errorf("identity claims are %T, not an object", v)
	}
	return obj, nil
}

// pathSegments splits /a/b/ into ["a", "b", ""]: the leading slash gives no
// segment, a trailing one an empty last segment, so /a and /a/ differ.
func pathSegments(path string) *ast.Array {
	path = strings.TrimPrefix(path, "/")
	if path == "" {
		return ast.NewArray()
	}
	parts := strings.Split(path, "/")
	terms := make([]*ast.Term, len(parts))
	for i, p := range parts {
		terms[i] = ast.StringTerm(p)
	}
	return ast.NewArray(terms...)
}

// fastAPIPath is Python's path.split("/")[1:]: "/" gives [""].
func fastAPIPath(path string) *ast.Array {
	parts := strings.Split(path, "/")
	if len(parts) > 1 {
		parts = parts[1:]
	}
	terms := make([]*ast.Term, len(parts))
	for i, p := range parts {
		terms[i] = ast.StringTerm(p)
	}
	return ast.NewArray(terms...)
}

func queryObject(r *http.Request) ast.Object {
	if r.URL.RawQuery == "" {
		return ast.NewObject()
	}
	q := r.URL.Query()
	obj := ast.NewObjectWithCapacity(len(q))
	for k, vs := range q {
		terms := make([]*ast.Term, len(vs))
		for i, v := range vs {
			terms[i] = ast.StringTerm(v)
		}
		obj.Insert(ast.StringTerm(k), ast.ArrayTerm(terms...))
	}
	return obj
}

// headersObject lower-cases names and joins repeated values with ", " (RFC
// 9110's list form), leaving out headers that carry credentials.
func (b *inputBuilder) headersObject(h http.Header) ast.Object {
	obj := ast.NewObjectWithCapacity(len(h))
	for name, vs := range h {
		lower := strings.ToLower(name)
		if b.dropHeaders[lower] {
			continue
		}
		obj.Insert(ast.StringTerm(lower), ast.StringTerm(strings.Join(vs, ", ")))
	}
	return obj
}

func scheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

// readBody reads at most max bytes of the body and puts everything back, so
// the handler still reads the whole body. A longer body is errBodyTooLarge.
func readBody(r *http.Request, max int64) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return []byte{}, nil
	}
	buf, err := io.ReadAll(io.LimitReader(r.Body, max+1))
	if err != nil {
		return nil, fmt.Errorf("%w: reading body: %v", ErrBadRequest, err)
	}
	if int64(len(buf)) > max {
		return nil, errBodyTooLarge
	}
	r.Body = io.NopCloser(bytes.NewReader(buf))
	return buf, nil
}

// parseBody turns a JSON body into an OPA value; other media types are not
// parsed (nil), and an empty body is null.
func parseBody(contentType string, body []byte) (ast.Value, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return ast.Null{}, nil
	}
	if !isJSON(contentType) {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("%w: body is not valid JSON: %v", ErrBadRequest, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: body is not valid JSON: data after the first value", ErrBadRequest)
	}
	return ast.InterfaceToValue(v)
}

func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

func toValue(v any) (ast.Value, error) {
	if val, ok := v.(ast.Value); ok {
		return val, nil
	}
	return ast.InterfaceToValue(v)
}
