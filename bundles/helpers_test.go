package bundles_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"

	"github.com/regoguard/regoguard/bundles"
	"github.com/regoguard/regoguard/policy"
)

var quiet = slog.New(slog.DiscardHandler)

// authzV1 allows GET; authzV2 allows GET and POST. Both say which revision
// of the rules they are, so a test can tell them apart from their answers.
const authzV1 = `package httpapi.authz

default allow := false

allow if input.method == "GET"

allow if input.user in data.httpapi.admins

rules := "v1"
`

const authzV2 = `package httpapi.authz

default allow := false

allow if input.method in {"GET", "POST"}

allow if input.user in data.httpapi.admins

rules := "v2"
`

// maskRules erase the password from decision logs, as an OPA deployment
// would with system.log.mask.
const maskRules = `package system.log

mask contains "/input/password"
`

// signer is a key pair for signing bundles in tests.
type signer struct {
	private, public string // PEM
}

func newSigner(t testing.TB) signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return signer{
		private: string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})),
		public:  string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})),
	}
}

// spec describes a bundle to build.
type spec struct {
	revision string
	roots    []string
	modules  map[string]string
	data     map[string]any
	sign     *signer // nil: unsigned
}

// build writes a bundle with OPA's own bundle writer (and signer), as
// `opa build [--signing-key]` would, and returns the .tar.gz bytes.
func build(t testing.TB, s spec) []byte {
	t.Helper()
	roots := s.roots
	if roots == nil {
		roots = []string{"httpapi", "system"}
	}
	b := bundle.Bundle{
		Manifest: bundle.Manifest{Revision: s.revision, Roots: &roots},
		Data:     s.data,
	}
	if b.Data == nil {
		b.Data = map[string]any{}
	}
	for name, src := range s.modules {
		// A module that does not parse is written as it is: the writer
		// only needs its source, and the reader must reject it.
		m, _ := ast.ParseModuleWithOpts(name, src, ast.ParserOptions{RegoVersion: ast.RegoV1})
		b.Modules = append(b.Modules, bundle.ModuleFile{URL: "/" + name, Path: "/" + name, Raw: []byte(src), Parsed: m})
	}
	if s.sign != nil {
		if err := b.GenerateSignature(bundle.NewSigningConfig(s.sign.private, "ES256", ""), "test-key", false); err != nil {
			t.Fatalf("sign: %v", err)
		}
	}
	var buf bytes.Buffer
	if err := bundle.NewWriter(&buf).Write(b); err != nil {
		t.Fatalf("write bundle: %v", err)
	}
	return buf.Bytes()
}

func authzBundle(t testing.TB, revision, rules string, sign *signer) []byte {
	return build(t, spec{
		revision: revision,
		modules:  map[string]string{"authz.rego": rules, "mask.rego": maskRules},
		data:     map[string]any{"httpapi": map[string]any{"admins": []any{"alice"}}},
		sign:     sign,
	})
}

// request is what the bundle server saw.
type request struct {
	ifNoneMatch, authorization, prefer string
	status                             int
}

// bundleServer is an OPA bundle server on loopback: it answers with the
// current bundle and its ETag, or 304 when If-None-Match names that ETag.
type bundleServer struct {
	*httptest.Server
	token string // required bearer token, when set

	mu       sync.Mutex
	body     []byte
	etag     string
	longPoll bool
	requests []request
}

func newBundleServer(t testing.TB, body []byte, etag string) *bundleServer {
	s := &bundleServer{body: body, etag: etag}
	s.Server = httptest.NewServer(s)
	t.Cleanup(s.Close)
	return s
}

func (s *bundleServer) set(body []byte, etag string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.body, s.etag = body, etag
}

func (s *bundleServer) seen() []request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]request(nil), s.requests...)
}

func (s *bundleServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	req := request{
		ifNoneMatch:   r.Header.Get("If-None-Match"),
		authorization: r.Header.Get("Authorization"),
		prefer:        r.Header.Get("Prefer"),
	}
	switch {
	case s.token != "" && req.authorization != "Bearer "+s.token:
		req.status = http.StatusUnauthorized
	case r.URL.Path != "/bundles/authz.tar.gz":
		req.status = http.StatusNotFound
	case req.ifNoneMatch != "" && strings.Contains(req.ifNoneMatch, s.etag):
		req.status = http.StatusNotModified
	default:
		req.status = http.StatusOK
	}
	s.requests = append(s.requests, req)
	if s.longPoll {
		w.Header().Set("Content-Type", "application/vnd.openpolicyagent.bundles")
	} else {
		w.Header().Set("Content-Type", "application/gzip")
	}
	if req.status != http.StatusOK {
		w.WriteHeader(req.status)
		return
	}
	w.Header().Set("ETag", s.etag)
	_, _ = io.Copy(w, bytes.NewReader(s.body))
}

// newEngine evaluates the whole decision document, so that tests can read
// the rules rule of allowed decisions.
func newEngine(t testing.TB) *policy.Engine {
	t.Helper()
	e, err := policy.New(context.Background(), policy.Config{Logger: quiet, WholeDocument: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func input(method, user string) ast.Value {
	return ast.NewObject(
		ast.Item(ast.StringTerm("method"), ast.StringTerm(method)),
		ast.Item(ast.StringTerm("user"), ast.StringTerm(user)),
	)
}

// rules returns which rules answered, from the decision document.
func rules(t testing.TB, d policy.Decision) string {
	t.Helper()
	obj, ok := d.Result.(map[string]any)
	if !ok {
		t.Fatalf("decision result %T, want an object", d.Result)
	}
	s, _ := obj["rules"].(string)
	return s
}

func mustEval(t testing.TB, e *policy.Engine, method, user string) policy.Decision {
	t.Helper()
	d, err := e.Eval(context.Background(), input(method, user))
	if err != nil {
		t.Fatalf("Eval(%s, %s): %v", method, user, err)
	}
	return d
}

// remote returns a manager configuration for the authz bundle on srv,
// polled manually so tests decide when each download happens.
func remote(t testing.TB, e *policy.Engine, srv *bundleServer, persistDir string, signing *bundles.Signing, keys map[string]bundles.Key) bundles.Config {
	return bundles.Config{
		Engine: e,
		Bundles: []bundles.Source{{
			Name:    "authz",
			Service: "acme",
			URL:     "bundles/authz.tar.gz",
			Polling: bundles.Polling{Manual: true},
			Signing: signing,
		}},
		Services:   map[string]bundles.Service{"acme": {URL: srv.URL, BearerToken: srv.token}},
		Keys:       keys,
		PersistDir: persistDir,
		Logger:     quiet,
	}
}
