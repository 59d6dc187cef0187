// Package testsaml starts a real SAML identity provider for tests:
// github.com/crewjam/saml's own IdP (samlidp), in-process on a loopback port,
// with a login form, users and signed assertions.
package testsaml

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"html"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/crewjam/saml/samlidp"
)

// The IdP's users and their password. Their NameID is their email.
const (
	User     = "alice" // alice@example.com, groups staff and finance
	User2    = "bob"   // bob@example.com, group contractors
	Password = "correct-horse-battery"
)

// IdP is a running identity provider.
type IdP struct {
	// URL is the IdP's base URL; its metadata is at URL + "/metadata".
	URL string
	// Metadata is the IdP's metadata document.
	Metadata []byte
	// Key and Certificate are what the IdP signs with, for tests that forge
	// what only the IdP could sign.
	Key         *rsa.PrivateKey
	Certificate *x509.Certificate
	log         *syncBuffer
	addr        string // where it listens
}

// StartIdP starts the identity provider on 127.0.0.1:0 with the users User
// and User2, and stops it when the test ends.
func StartIdP(tb testing.TB) *IdP {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	return start(tb, ln, "http://"+ln.Addr().String())
}

// StartImpostor starts another IdP that claims to be the one at publicURL
// (same URLs, same users) but signs with a key of its own, as an attacker
// who can redirect traffic for that host would. It listens on a loopback
// port of its own, returned as addr: route connections for publicURL's host
// there.
func StartImpostor(tb testing.TB, publicURL string) (idp *IdP, addr string) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	return start(tb, ln, publicURL), ln.Addr().String()
}

func start(tb testing.TB, ln net.Listener, publicURL string) *IdP {
	tb.Helper()
	key, cert := KeyPair(tb, "regoguard test IdP")
	idp := &IdP{URL: publicURL, Key: key, Certificate: cert, log: &syncBuffer{}, addr: ln.Addr().String()}
	u, _ := url.Parse(idp.URL)
	srv, err := samlidp.New(samlidp.Options{URL: *u, Key: key, Certificate: cert,
		Store: &samlidp.MemoryStore{}, Logger: log.New(idp.log, "samlidp: ", 0)})
	if err != nil {
		tb.Fatal(err)
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	tb.Cleanup(func() { _ = hs.Close() })
	idp.put(tb, "/users/"+User, map[string]any{"password": Password, "email": "alice@example.com",
		"groups": []string{"staff", "finance"}, "common_name": "Alice Example", "given_name": "Alice"})
	idp.put(tb, "/users/"+User2, map[string]any{"password": Password, "email": "bob@example.com",
		"groups": []string{"contractors"}, "common_name": "Bob Example", "given_name": "Bob"})
	idp.Metadata = idp.get(tb, "/metadata")
	return idp
}

// Register makes the service provider whose metadata is given known to the
// IdP under name.
func (i *IdP) Register(tb testing.TB, name string, spMetadata []byte) {
	tb.Helper()
	i.do(tb, http.MethodPut, "/services/"+name, bytes.NewReader(spMetadata))
}

// Log returns what the IdP logged, for failure messages.
func (i *IdP) Log() string { return i.log.String() }

func (i *IdP) put(tb testing.TB, path string, v any) {
	tb.Helper()
	body, _ := json.Marshal(v)
	i.do(tb, http.MethodPut, path, bytes.NewReader(body))
}

func (i *IdP) get(tb testing.TB, path string) []byte {
	tb.Helper()
	return i.do(tb, http.MethodGet, path, nil)
}

func (i *IdP) do(tb testing.TB, method, path string, body io.Reader) []byte {
	tb.Helper()
	req, _ := http.NewRequest(method, "http://"+i.addr+path, body)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		tb.Fatalf("%s %s: %s %s\n%s", method, path, resp.Status, data, i.Log())
	}
	return data
}

// ECKeyPair returns a new ECDSA P-256 key and a self-signed certificate for
// it. A service provider with such a key publishes no encryption key, so the
// IdP sends its assertions in the clear (signed).
func ECKeyPair(tb testing.TB, cn string) (*ecdsa.PrivateKey, *x509.Certificate) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return key, selfSigned(tb, cn, key, &key.PublicKey)
}

// KeyPair returns a new RSA key and a self-signed certificate for it, as an
// IdP or a service provider uses to sign.
func KeyPair(tb testing.TB, cn string) (*rsa.PrivateKey, *x509.Certificate) {
	tb.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	return key, selfSigned(tb, cn, key, &key.PublicKey)
}

func selfSigned(tb testing.TB, cn string, key crypto.Signer, pub any) *x509.Certificate {
	tb.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return cert
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var (
	formInputRE  = regexp.MustCompile(`<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"`)
	formActionRE = regexp.MustCompile(`<form[^>]*action="([^"]+)"`)
)

// Form returns the action and the named inputs of the first form in page:
// the IdP's login form, or the auto-submitting form that posts its answer
// to the service provider, as a browser would read them.
func Form(t testing.TB, page []byte) (string, url.Values) {
	t.Helper()
	m := formActionRE.FindSubmatch(page)
	if m == nil {
		t.Fatalf("no form in %s", page)
	}
	v := url.Values{}
	for _, in := range formInputRE.FindAllSubmatch(page, -1) {
		v.Set(string(in[1]), html.UnescapeString(string(in[2])))
	}
	return html.UnescapeString(string(m[1])), v
}

// Body reads a response's body, failing the test on a request error.
func Body(t testing.TB, resp *http.Response, err error) []byte {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return b
}
