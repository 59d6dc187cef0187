package saml_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"fmt"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/authn/saml"
	"github.com/regoguard/regoguard/authz"
	"github.com/regoguard/regoguard/policy"
)

// selfSigned makes a key pair, as openssl req -x509 would.
func selfSigned(cn string) (*ecdsa.PrivateKey, *x509.Certificate) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	cert, _ := x509.ParseCertificate(der)
	return key, cert
}

// A SAML service provider in front of an application, behind an authz
// guard: the guard serves the provider's routes itself (metadata, assertion
// consumer service, logout), sends browsers to the IdP and authorizes the
// assertion's attributes with the policy. In production read the IdP's
// metadata with saml.ReadMetadata and the key pair with saml.LoadKeyPair.
func Example() {
	_, idpCert := selfSigned("idp.example")
	idpMetadata := []byte(`<EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://idp.example/metadata">
  <IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <KeyDescriptor use="signing"><KeyInfo xmlns="http://www.w3.org/2000/09/xmldsig#"><X509Data><X509Certificate>` +
		base64.StdEncoding.EncodeToString(idpCert.Raw) + `</X509Certificate></X509Data></KeyInfo></KeyDescriptor>
    <SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.example/sso"/>
  </IDPSSODescriptor>
</EntityDescriptor>`)
	spKey, spCert := selfSigned("app.example")

	sp, err := saml.New(saml.Config{
		IDPMetadata:   idpMetadata,
		Key:           spKey,
		Certificate:   spCert,
		SessionConfig: authn.SessionConfig{AppURI: "https://app.example", CookieKeys: [][]byte{[]byte("an example key of 32 bytes or more, from a secret store")}},
	})
	if err != nil {
		log.Fatal(err)
	}
	engine, err := policy.New(context.Background(), policy.Config{}, policy.MustParse(map[string]string{"authz.rego": `
package httpapi.authz

default allow := false

allow if "finance" in input.user.claims.groups
`}, nil))
	if err != nil {
		log.Fatal(err)
	}
	guard, err := authz.New(authz.Config{Authenticator: authn.Chain{sp}, Evaluator: engine})
	if err != nil {
		log.Fatal(err)
	}
	handler := guard.Handler(http.NotFoundHandler()) // http.ListenAndServe(addr, handler)

	for _, c := range []struct{ path, accept string }{
		{"/saml/metadata", ""},
		{"/reports/q3", "text/html"},
		{"/reports/q3", "application/json"},
	} {
		r := httptest.NewRequest(http.MethodGet, "https://app.example"+c.path, nil)
		r.Header.Set("Accept", c.accept)
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, r)
		loc, _, _ := strings.Cut(w.Header().Get("Location"), "?")
		ct, _, _ := strings.Cut(w.Header().Get("Content-Type"), ";")
		if loc != "" {
			ct = "to " + loc
		}
		fmt.Printf("GET %s (Accept %q): %d %s\n", c.path, c.accept, w.Code, ct)
	}
	// Output:
	// GET /saml/metadata (Accept ""): 200 application/samlmetadata+xml
	// GET /reports/q3 (Accept "text/html"): 302 to https://idp.example/sso
	// GET /reports/q3 (Accept "application/json"): 401 application/json
}
