package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/authz"
	"github.com/regoguard/regoguard/grpcauthz"
)

// casesFile is the YAML file of expected decisions that check and bench read.
//
//	cases:
//	  - name: readers may read
//	    request: {method: GET, path: "/docs/1?page=2", headers: {Accept: application/json}}
//	    identity: {sub: alice, method: oidc, claims: {groups: [reader]}}
//	    expect: {allow: true}
//	  - name: anonymous callers are asked to log in
//	    request: {method: GET, path: /docs/1}
//	    expect: {allow: false, status: 401}
//	  - name: gRPC calls too (see caseGRPC)
//	    grpc: {method: /shop.Orders/List, metadata: {x-tenant: acme}}
//	    identity: {sub: alice, claims: {tenant: acme}}
//	    expect: {code: OK}
type casesFile struct {
	Cases []testCase `yaml:"cases"`
}

type testCase struct {
	Name     string        `yaml:"name"`
	Request  caseRequest   `yaml:"request"`
	GRPC     *caseGRPC     `yaml:"grpc"` // a gRPC call instead of a request
	Identity *caseIdentity `yaml:"identity"`
	Expect   *caseExpect   `yaml:"expect"`
	Filter   *caseFilter   `yaml:"filter"` // a list filter instead of a request
	line     int           // where the case starts in its file
	source   string        // the file the case comes from
}

type caseRequest struct {
	Method  string              `yaml:"method"`
	Path    string              `yaml:"path"`
	Query   map[string][]string `yaml:"query"`
	Headers map[string]string   `yaml:"headers"`
	Body    any                 `yaml:"body"`
	// RemoteAddr is the peer address; default 192.0.2.1:1234.
	RemoteAddr string `yaml:"remote_addr"`
}

type caseIdentity struct {
	Sub    string         `yaml:"sub"`
	Method string         `yaml:"method"`
	Claims map[string]any `yaml:"claims"`
}

type caseExpect struct {
	Allow  *bool  `yaml:"allow"`
	Status int    `yaml:"status"`
	Reason string `yaml:"reason"`
	// Code is the gRPC status code name of a gRPC case (OK,
	// PermissionDenied, ...).
	Code string `yaml:"code"`
}

// readCases parses a cases file strictly: an unknown field is an error with
// its line, so a typo cannot silently drop an expectation.
func readCases(path string) ([]testCase, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseCases(path, data)
}

// parseCases reads the cases of data, which came from path (a file name,
// or a name for embedded cases).
func parseCases(path string, data []byte) ([]testCase, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f casesFile
	if err := dec.Decode(&f); err != nil {
		if err == io.EOF {
			return nil, fmt.Errorf("%s: no cases", path)
		}
		return nil, explainYAML(path, &root, err)
	}
	lines := caseLines(&root)
	for i := range f.Cases {
		c := &f.Cases[i]
		c.source = path
		if i < len(lines) {
			c.line = lines[i]
		}
		if err := c.validate(); err != nil {
			return nil, fmt.Errorf("%s:%d: case %q: %w", path, c.line, c.Name, err)
		}
	}
	if len(f.Cases) == 0 {
		return nil, fmt.Errorf("%s: no cases", path)
	}
	return f.Cases, nil
}

// caseLines finds the line of each item of the cases list.
func caseLines(root *yaml.Node) []int {
	if len(root.Content) == 0 {
		return nil
	}
	doc := root.Content[0]
	for i := 0; i+1 < len(doc.Content); i += 2 {
		if doc.Content[i].Value == "cases" {
			var lines []int
			for _, item := range doc.Content[i+1].Content {
				lines = append(lines, item.Line)
			}
			return lines
		}
	}
	return nil
}

func (c *testCase) validate() error {
	if c.Filter != nil {
		return c.Filter.validate(c)
	}
	if c.Expect != nil && c.Expect.Allow == nil && c.Expect.Status == 0 && c.Expect.Code == "" {
		return fmt.Errorf("expect needs allow, status or code")
	}
	if c.GRPC != nil {
		return c.GRPC.validate(c)
	}
	if c.Expect != nil && c.Expect.Code != "" {
		return fmt.Errorf("expect.code is for grpc cases")
	}
	if c.Request.Method == "" {
		c.Request.Method = http.MethodGet
	}
	c.Request.Method = strings.ToUpper(c.Request.Method)
	if !strings.HasPrefix(c.Request.Path, "/") {
		return fmt.Errorf("request.path %q must start with /", c.Request.Path)
	}
	if c.Name == "" {
		c.Name = c.Request.Method + " " + c.Request.Path
	}
	_, err := c.httpRequest()
	return err
}

// httpRequest builds the request the middleware will see.
func (c *testCase) httpRequest() (*http.Request, error) {
	target := c.Request.Path
	if len(c.Request.Query) > 0 {
		u, err := url.Parse(target)
		if err != nil {
			return nil, fmt.Errorf("request.path: %w", err)
		}
		q := u.Query()
		keys := make([]string, 0, len(c.Request.Query))
		for k := range c.Request.Query {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			for _, v := range c.Request.Query[k] {
				q.Add(k, v)
			}
		}
		u.RawQuery = q.Encode()
		target = u.RequestURI()
	}
	var body io.Reader
	contentType := ""
	switch b := c.Request.Body.(type) {
	case nil:
	case string:
		body = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			return nil, fmt.Errorf("request.body: %w", err)
		}
		body, contentType = bytes.NewReader(data), "application/json"
	}
	// http.NewRequest checks the method and target (httptest.NewRequest
	// would panic on a bad one); the request is then shaped as a server
	// would receive it.
	r, err := http.NewRequest(c.Request.Method, "http://example.com"+target, body)
	if err != nil {
		return nil, fmt.Errorf("request: %w", err)
	}
	r.RequestURI, r.Proto, r.ProtoMajor, r.ProtoMinor = target, "HTTP/1.1", 1, 1
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	for k, v := range c.Request.Headers {
		r.Header.Set(k, v)
	}
	r.RemoteAddr = c.Request.RemoteAddr
	if r.RemoteAddr == "" {
		r.RemoteAddr = "192.0.2.1:1234"
	}
	return r, nil
}

func (c *testCase) identity() *authn.Identity {
	if c.Identity == nil {
		return nil
	}
	method := c.Identity.Method
	if method == "" {
		method = authn.MethodOIDC
	}
	return &authn.Identity{Subject: c.Identity.Sub, Method: method, Claims: c.Identity.Claims}
}

// outcome is what the middleware did with one request.
type outcome struct {
	Status     int    `json:"status"`
	Allow      bool   `json:"allow"`
	Reason     string `json:"reason,omitempty"`
	DecisionID string `json:"decision_id,omitempty"`
	// Code is the gRPC status code of a gRPC case.
	Code string `json:"code,omitempty"`
}

// judge runs requests through a real authz.Middleware whose authenticator
// returns the identity given with each request: the same input, the same
// decision and the same status as serve.
type judge struct {
	handler http.Handler
	grpc    *grpcauthz.Interceptor // the same policy's gRPC interceptors
}

type identityKey struct{}

func newJudge(cfg authz.Config) (*judge, error) {
	cfg.Authenticator = authn.AuthenticatorFunc(func(r *http.Request) (*authn.Identity, error) {
		if id, ok := r.Context().Value(identityKey{}).(*authn.Identity); ok && id != nil {
			return id, nil
		}
		return nil, authn.ErrNoCredential
	})
	refusals := func(w http.ResponseWriter, _ *http.Request, ref authz.Refusal) {
		o := outcome{Status: ref.Status, Reason: ref.Message}
		if ref.Decision != nil {
			o.DecisionID = ref.Decision.ID
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(ref.Status)
		_ = json.NewEncoder(w).Encode(o)
	}
	cfg.OnRefuse = refusals
	m, err := authz.New(cfg)
	if err != nil {
		return nil, err
	}
	allowed := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, _ := authz.FromContext(r.Context())
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(outcome{Status: http.StatusOK, Allow: true, Reason: res.Decision.Reason, DecisionID: res.Decision.ID})
	})
	g, err := newGRPCJudge(cfg)
	if err != nil {
		return nil, err
	}
	return &judge{handler: m.Handler(allowed), grpc: g}, nil
}

func (j *judge) judge(ctx context.Context, r *http.Request, id *authn.Identity) outcome {
	r = r.WithContext(context.WithValue(ctx, identityKey{}, id))
	w := httptest.NewRecorder()
	j.handler.ServeHTTP(w, r)
	var o outcome
	if err := json.Unmarshal(w.Body.Bytes(), &o); err != nil {
		// A redirect or a refusal written by something else.
		o = outcome{Status: w.Code}
	}
	o.Status = w.Code
	return o
}

// mismatch says how got differs from the expectation, or "".
func (e *caseExpect) mismatch(got outcome) string {
	if e == nil {
		return ""
	}
	var diffs []string
	if e.Allow != nil && *e.Allow != got.Allow {
		diffs = append(diffs, fmt.Sprintf("allow %v, want %v", got.Allow, *e.Allow))
	}
	if e.Status != 0 && e.Status != got.Status {
		diffs = append(diffs, fmt.Sprintf("status %d, want %d", got.Status, e.Status))
	}
	if want, ok := grpcCode(e.Code); ok && e.Code != "" && want.String() != got.Code {
		diffs = append(diffs, fmt.Sprintf("code %s, want %s", got.Code, want))
	}
	if e.Reason != "" && e.Reason != got.Reason {
		d := fmt.Sprintf("reason %q, want %q", got.Reason, e.Reason)
		if got.Allow && got.Reason == "" {
			d += " (an allowed decision has a reason only with --whole-decision)"
		}
		diffs = append(diffs, d)
	}
	return strings.Join(diffs, "; ")
}
