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
	"unicode/utf8"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/extauthz"
	"github.com/regoguard/regoguard/internal/headers"
	"github.com/regoguard/regoguard/internal/jsonkeys"
	"github.com/regoguard/regoguard/internal/pipeline"
	"github.com/regoguard/regoguard/policy"
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
	// LayoutEnvoy is opa-envoy-plugin's input (see package extauthz): the
	// request as Envoy's ext_authz sends it, headers included (credentials
	// too: such policies verify tokens themselves; decision logs leave them
	// out), with parsed_path, parsed_query, parsed_body and truncated_body,
	// and input.user from the authenticator. Use it with an engine whose
	// ResultParser is extauthz.ParseResult. Refusals by the policy are
	// answered as opa-envoy-plugin answers them: its http_status (default
	// 403), headers and body.
	LayoutEnvoy Layout = "envoy"
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
	dropHeaders   headers.Set
	keepHeaders   headers.Set // the credential headers Config.InputHeaders lets in
	withBody      bool
	enrichers     []Enricher
	preserveToken bool
	// dropCookies and dropQuery are the cookies and query parameters the
	// authenticator reads credentials from: never in the input.
	dropCookies []string
	dropQuery   map[string]bool
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
	keyBody          = ast.StringTerm("body")
	keyRequestMethod = ast.StringTerm("request_method")
	keyRequestPath   = ast.StringTerm("request_path")
)

// build returns the input document for r, made by the identity id (nil when
// the caller is anonymous). body is the request body when it was read.
// Only what fields reads is built (everything when nil).
func (b *inputBuilder) build(r *http.Request, id *authn.Identity, body []byte, fields *policy.InputFields) (ast.Value, error) {
	if b.layout == LayoutEnvoy {
		return b.envoyInput(r, id, body)
	}
	var parsedBody ast.Value
	if b.withBody && body != nil && fields.Reads("body") {
		v, err := parseBody(r.Header, body)
		if err != nil {
			return nil, err
		}
		parsedBody = v
	}
	var in ast.Object
	var err error
	if b.layout == LayoutFastAPIOPA {
		in, err = b.fastAPIInput(r, id, fields)
	} else {
		in, err = b.regoguardInput(r, id, fields)
	}
	if err != nil {
		return nil, err
	}
	if parsedBody != nil {
		in.Insert(keyBody, ast.NewTerm(parsedBody))
	}
	for _, e := range b.enrichers {
		if e.skips(r.URL.Path) || !fields.Reads(e.Key) {
			continue
		}
		v, err := e.Func(r, body)
		if err != nil {
			return nil, fmt.Errorf("input enricher %q: %w", e.Key, err)
		}
		val, err := pipeline.ToValue(v)
		if err != nil {
			return nil, fmt.Errorf("input enricher %q: %w", e.Key, err)
		}
		in.Insert(ast.StringTerm(e.Key), ast.NewTerm(val))
	}
	return in, nil
}

func (b *inputBuilder) regoguardInput(r *http.Request, id *authn.Identity, fields *policy.InputFields) (ast.Object, error) {
	// One block for the value terms, and ast.NewObject's single block for
	// the entries: a decision on a small policy costs about as much as
	// building its input, so the input is built with as few allocations
	// as OPA's API allows, and without the fields the policy never reads.
	v := make([]ast.Term, 8)
	items := make([][2]*ast.Term, 0, 9)
	if fields.Reads("method") {
		items = append(items, [2]*ast.Term{keyMethod, methodTerm(r.Method, &v[0])})
	}
	if fields.Reads("path") {
		v[1].Value = ast.String(r.URL.Path)
		items = append(items, [2]*ast.Term{keyPath, &v[1]})
	}
	if fields.Reads("path_segments") {
		v[2].Value = pathSegments(r.URL.Path)
		items = append(items, [2]*ast.Term{keyPathSegments, &v[2]})
	}
	if fields.Reads("query") {
		v[3].Value = queryObject(r, b.dropQuery)
		items = append(items, [2]*ast.Term{keyQuery, &v[3]})
	}
	if fields.Reads("headers") {
		v[4].Value = b.headersObject(r.Header)
		items = append(items, [2]*ast.Term{keyHeaders, &v[4]})
	}
	if fields.Reads("host") {
		v[5].Value = ast.String(r.Host)
		items = append(items, [2]*ast.Term{keyHost, &v[5]})
	}
	if fields.Reads("scheme") {
		items = append(items, [2]*ast.Term{keyScheme, schemeTerm(r)})
	}
	if fields.Reads("remote_addr") {
		v[6].Value = ast.String(r.RemoteAddr)
		items = append(items, [2]*ast.Term{keyRemoteAddr, &v[6]})
	}
	if fields.Reads("user") {
		user, err := pipeline.UserObject(id, fields.Under("user"), b.preserveToken)
		if err != nil {
			return nil, err
		}
		v[7].Value = user
		items = append(items, [2]*ast.Term{keyUser, &v[7]})
	}
	return ast.NewObject(items...), nil
}

// Terms that recur on every request, built once. Terms are never modified
// once in an input, so sharing them is safe.
var (
	methodTerms = func() map[string]*ast.Term {
		m := map[string]*ast.Term{}
		for _, meth := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"} {
			m[meth] = ast.StringTerm(meth)
		}
		return m
	}()
	httpTerm, httpsTerm = ast.StringTerm("http"), ast.StringTerm("https")
)

// methodTerm returns the shared term of a standard HTTP method, or spare
// holding any other.
func methodTerm(method string, spare *ast.Term) *ast.Term {
	return pipeline.SharedTerm(methodTerms, method, spare)
}

func schemeTerm(r *http.Request) *ast.Term {
	if r.TLS != nil {
		return httpsTerm
	}
	return httpTerm
}

// envoyInput is opa-envoy-plugin's input: of the CheckRequest the context
// carries (a gRPC Check), else of r as Envoy's HTTP ext_authz sends it.
func (b *inputBuilder) envoyInput(r *http.Request, id *authn.Identity, body []byte) (ast.Value, error) {
	user, err := pipeline.UserObject(id, nil, b.preserveToken)
	if err != nil {
		return nil, err
	}
	req := extauthz.FromContext(r.Context())
	if req == nil {
		req = extauthz.FromHTTP(r, body)
	}
	in, err := extauthz.Input(req, user)
	if errors.Is(err, extauthz.ErrBadRequest) {
		return nil, fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	return in, err
}

// fastAPIInput is the input fastapi-opa sends: claims at the top level, then
// request_method and request_path, which win over claims of the same name.
func (b *inputBuilder) fastAPIInput(r *http.Request, id *authn.Identity, fields *policy.InputFields) (ast.Object, error) {
	in := ast.NewObject()
	if id != nil {
		claims, err := pipeline.ClaimsObject(id.Claims, fields)
		if err != nil {
			return nil, err
		}
		in = claims
		if b.preserveToken && id.Token != "" && fields.Reads("token") {
			in.Insert(pipeline.KeyToken, ast.StringTerm(id.Token))
		}
	}
	if fields.Reads("request_method") {
		in.Insert(keyRequestMethod, ast.StringTerm(r.Method))
	}
	if fields.Reads("request_path") {
		in.Insert(keyRequestPath, ast.NewTerm(fastAPIPath(r.URL.Path)))
	}
	return in, nil
}

// pathSegments splits /a/b/ into ["a", "b", ""]: the leading slash gives no
// segment, a trailing one an empty last segment, so /a and /a/ differ.
func pathSegments(path string) *ast.Array {
	path = strings.TrimPrefix(path, "/")
	if path == "" {
		return ast.NewArray()
	}
	return stringArray(path, strings.Count(path, "/")+1)
}

// stringArray makes an array of the n "/"-separated parts of s, with one
// allocation for all the terms.
func stringArray(s string, n int) *ast.Array {
	terms := make([]ast.Term, n)
	ptrs := make([]*ast.Term, n)
	i := 0
	for part := range strings.SplitSeq(s, "/") {
		terms[i].Value = ast.String(part)
		ptrs[i] = &terms[i]
		i++
	}
	return ast.NewArray(ptrs...)
}

// fastAPIPath is Python's path.split("/")[1:]: "/" gives [""].
func fastAPIPath(path string) *ast.Array {
	if rest, ok := strings.CutPrefix(path, "/"); ok {
		path = rest
	}
	return stringArray(path, strings.Count(path, "/")+1)
}

// queryObject is input.query: every parameter but those in drop.
func queryObject(r *http.Request, drop map[string]bool) ast.Object {
	if r.URL.RawQuery == "" {
		return ast.NewObject()
	}
	q := r.URL.Query()
	items := make([][2]*ast.Term, 0, len(q))
	for k, vs := range q {
		if len(drop) > 0 && drop[queryName(k)] {
			continue
		}
		terms := make([]*ast.Term, len(vs))
		for i, v := range vs {
			terms[i] = ast.StringTerm(v)
		}
		items = append(items, [2]*ast.Term{ast.StringTerm(k), ast.ArrayTerm(terms...)})
	}
	return ast.NewObject(items...)
}

// headerNames maps the canonical names of common headers to their
// lower-case terms, so that most requests lower-case nothing.
var headerNames = func() map[string]*ast.Term {
	m := map[string]*ast.Term{}
	for _, h := range []string{"Accept", "Accept-Encoding", "Accept-Language", "Cache-Control", "Connection",
		"Content-Length", "Content-Type", "Origin", "Referer", "User-Agent", "X-Forwarded-For",
		"X-Forwarded-Host", "X-Forwarded-Proto", "X-Real-Ip", "X-Request-Id", "Traceparent", "Tracestate",
		"Sec-Fetch-Mode", "Sec-Fetch-Site", "Sec-Fetch-Dest", "Upgrade-Insecure-Requests", "If-None-Match",
		"If-Modified-Since", "Pragma", "Dnt", "Priority", "Sec-Ch-Ua", "Sec-Ch-Ua-Mobile", "Sec-Ch-Ua-Platform"} {
		m[h] = ast.StringTerm(strings.ToLower(h))
	}
	return m
}()

// dropHeader reports whether the header name stays out of the input: a
// credential (Authorization, Cookie, the API-key header, a proxy's access
// token, any name that looks like one: [authn.LooksLikeCredential]), or an
// identity header, in any spelling, unless Config.InputHeaders names it.
// The sets compare every spelling without making a string.
func (b *inputBuilder) dropHeader(name string) bool {
	if b.keepHeaders.Has(name) {
		return false
	}
	return b.dropHeaders.Has(name) || identityHeaders.Has(name) || authn.LooksLikeCredential(name)
}

// headersObject lower-cases names and joins repeated values with ", " (RFC
// 9110's list form), leaving out headers that carry credentials.
func (b *inputBuilder) headersObject(h http.Header) ast.Object {
	items := make([][2]*ast.Term, 0, len(h))
	terms := make([]ast.Term, 2*len(h))
	for name, vs := range h {
		key, known := headerNames[name]
		if !known {
			if b.dropHeader(name) {
				continue
			}
			lower := strings.ToLower(name)
			i := 2 * len(items)
			terms[i].Value = ast.String(lower)
			key = &terms[i]
		}
		val := &terms[2*len(items)+1]
		if len(vs) == 1 {
			val.Value = ast.String(vs[0])
		} else {
			val.Value = ast.String(strings.Join(vs, ", "))
		}
		if len(b.dropCookies) > 0 && name == "Cookie" {
			// Only when Config.InputHeaders lets Cookie in: the
			// authenticator's own cookies stay out all the same.
			c, _ := withoutCookies(string(val.Value.(ast.String)), b.dropCookies)
			val.Value = ast.String(c)
		}
		items = append(items, [2]*ast.Term{key, val})
	}
	return ast.NewObject(items...)
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

// parseBody turns a JSON body into an OPA value, and an empty body into
// null. The policy reads what the handler will read, or the request is
// refused: a non-empty body that is not unambiguous JSON would be judged as
// absent while many upstreams decode JSON whatever the type says. So a
// body whose Content-Type is missing, malformed ("application/json;;"),
// repeated, not JSON ("text/plain", "text/json"), with a charset other than
// UTF-8, or whose Content-Encoding is not identity, is ErrUnsupportedMedia
// (415); a body that is not valid UTF-8 JSON, holds a repeated object key
// (parsers disagree on which one wins) or has data after its value is
// ErrBadRequest (400).
func parseBody(h http.Header, body []byte) (ast.Value, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return ast.Null{}, nil
	}
	if err := jsonMediaType(h); err != nil {
		return nil, err
	}
	if !utf8.Valid(body) {
		return nil, fmt.Errorf("%w: body is not valid UTF-8", ErrBadRequest)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := jsonkeys.Unique(dec); err != nil {
		return nil, fmt.Errorf("%w: body is not valid JSON: %v", ErrBadRequest, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: body is not valid JSON: data after the first value", ErrBadRequest)
	}
	dec = json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("%w: body is not valid JSON: %v", ErrBadRequest, err)
	}
	return ast.InterfaceToValue(v)
}

// ErrUnsupportedMedia marks a request body the policy reads but that is
// not JSON in a form every reader agrees on. The middleware answers it with
// 415 Unsupported Media Type.
var ErrUnsupportedMedia = errors.New("unsupported media type")

// jsonMediaType checks that h declares one JSON body, in UTF-8, not encoded.
func jsonMediaType(h http.Header) error {
	cts := h.Values("Content-Type")
	if len(cts) != 1 {
		return fmt.Errorf("%w: the policy reads the body: send it as application/json (with one Content-Type header)", ErrUnsupportedMedia)
	}
	mt, params, err := mime.ParseMediaType(cts[0])
	if err != nil || !(mt == "application/json" || strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")) {
		return fmt.Errorf("%w: the policy reads the body: send it as application/json", ErrUnsupportedMedia)
	}
	for k, v := range params {
		if k != "charset" || !strings.EqualFold(v, "utf-8") {
			return fmt.Errorf("%w: the policy reads the body: application/json takes no parameter but charset=utf-8", ErrUnsupportedMedia)
		}
	}
	for _, ce := range h.Values("Content-Encoding") {
		if !strings.EqualFold(strings.TrimSpace(ce), "identity") {
			return fmt.Errorf("%w: the policy reads the body: send it without Content-Encoding", ErrUnsupportedMedia)
		}
	}
	return nil
}
