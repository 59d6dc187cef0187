package saml_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/authn/saml"
	"github.com/regoguard/regoguard/internal/testkit/testsaml"
)

// samlApp is an application behind a SAML service provider, on loopback,
// registered at a real IdP (crewjam/saml's samlidp). Its page answers with
// the caller's identity and the cookies it received, as JSON.
type samlApp struct {
	URL string
	SP  *saml.ServiceProvider
	IdP *testsaml.IdP
}

// startSAMLApp starts the app with an RSA key: the IdP then encrypts its
// assertions to it.
func startSAMLApp(t *testing.T) *samlApp {
	t.Helper()
	key, cert := testsaml.KeyPair(t, "regoguard test SP")
	return startSAMLAppWith(t, key, cert, nil)
}

// startSAMLAppWith starts the app with this key pair and, when mutate is not
// nil, the configuration it changes.
func startSAMLAppWith(t *testing.T, key crypto.Signer, cert *x509.Certificate, mutate func(*saml.Config)) *samlApp {
	t.Helper()
	idp := testsaml.StartIdP(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	app := &samlApp{URL: "http://" + ln.Addr().String(), IdP: idp}
	cfg := saml.Config{
		IDPMetadata:   idp.Metadata,
		Key:           key,
		Certificate:   cert,
		SessionConfig: authn.SessionConfig{AppURI: app.URL, CookieKeys: [][]byte{bytes.Repeat([]byte("k"), 32)}, InsecureCookies: true},
	}
	if mutate != nil {
		mutate(&cfg)
	}
	app.SP, err = saml.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	md, err := app.SP.Metadata()
	if err != nil {
		t.Fatal(err)
	}
	idp.Register(t, "app", md)
	page := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := app.SP.Authenticate(r)
		switch {
		case errors.Is(err, authn.ErrNoCredential):
			if !app.SP.Challenge(w, r) {
				http.Error(w, "login required", http.StatusUnauthorized)
			}
		case err != nil:
			http.Error(w, err.Error(), http.StatusUnauthorized)
		default:
			_ = json.NewEncoder(w).Encode(map[string]any{"sub": id.Subject, "method": id.Method, "claims": id.Claims,
				"cookie": r.Header.Get("Cookie")})
		}
	})
	srv := &http.Server{Handler: app.SP.Middleware(page), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return app
}

func newClient(t *testing.T) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar}
}

// idpAnswer asks for page as a browser would, is sent to the IdP, logs in
// there as user and returns the form the IdP asks the browser to post to
// the ACS, without posting it.
func idpAnswer(t *testing.T, c *http.Client, app *samlApp, page, user string) (string, url.Values) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, app.URL+page, nil)
	req.Header.Set("Accept", "text/html")
	resp, err := c.Do(req)
	loginPage := testsaml.Body(t, resp, err)
	if !strings.HasPrefix(resp.Request.URL.String(), app.IdP.URL+"/sso") {
		t.Fatalf("not sent to the IdP: at %s", resp.Request.URL)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("IdP login page: %s %s\n%s", resp.Status, loginPage, app.IdP.Log())
	}
	action, v := testsaml.Form(t, loginPage)
	if v.Get("SAMLResponse") != "" { // still signed in at the IdP
		return action, v
	}
	v.Set("user", user)
	v.Set("password", testsaml.Password)
	target, _ := resp.Request.URL.Parse(action)
	resp, err = c.PostForm(target.String(), v)
	answer := testsaml.Body(t, resp, err)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("IdP login: %s %s (form %s at %s)\n%s", resp.Status, answer, loginPage, target, app.IdP.Log())
	}
	acs, fields := testsaml.Form(t, answer)
	if acs != app.URL+saml.DefaultACSPath || fields.Get("SAMLResponse") == "" {
		t.Fatalf("the IdP did not answer with a response for the ACS: %s\n%s", answer, app.IdP.Log())
	}
	return acs, fields
}

// identity is what the test page answers.
type identity struct {
	Sub, Method, Cookie string
	Claims              map[string]any
}

func whoAmI(t *testing.T, c *http.Client, u string) (int, identity) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("Accept", "application/json")
	resp, err := c.Do(req)
	body := testsaml.Body(t, resp, err)
	var id identity
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, &id); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
	}
	return resp.StatusCode, id
}

// A login through the real IdP: the browser comes back to the page it asked
// for, signed in, with the assertion's NameID and attributes; the session
// cookie never reaches the application; logout ends the session, even for a
// copy of the cookie.
func TestSAMLLogin(t *testing.T) {
	app := startSAMLApp(t)
	c := newClient(t)
	acs, fields := idpAnswer(t, c, app, "/reports/q3?x=1", testsaml.User)
	resp, err := c.PostForm(acs, fields)
	testsaml.Body(t, resp, err)
	if resp.Request.URL.String() != app.URL+"/reports/q3?x=1" {
		t.Fatalf("after login at %s, want the page first asked for", resp.Request.URL)
	}
	status, id := whoAmI(t, c, app.URL+"/reports/q3")
	if status != http.StatusOK || id.Sub != "alice@example.com" || id.Method != authn.MethodSAML {
		t.Fatalf("signed in as %d %+v", status, id)
	}
	groups, _ := id.Claims["eduPersonAffiliation"].([]any)
	if len(groups) != 2 || groups[0] != "staff" || id.Claims["iss"] != app.IdP.URL+"/metadata" {
		t.Errorf("claims %v, want the assertion's attributes", id.Claims)
	}
	if strings.Contains(id.Cookie, "regoguard-saml") {
		t.Errorf("the session cookie reached the application: %q", id.Cookie)
	}

	u, _ := url.Parse(app.URL)
	stolen := c.Jar.Cookies(u)
	resp, err = c.PostForm(app.URL+saml.DefaultLogoutPath, nil)
	testsaml.Body(t, resp, err)
	if status, _ := whoAmI(t, c, app.URL+"/"); status != http.StatusUnauthorized {
		t.Errorf("after logout: %d, want 401", status)
	}
	replay := newClient(t)
	replay.Jar.SetCookies(u, stolen)
	if status, _ := whoAmI(t, replay, app.URL+"/"); status != http.StatusUnauthorized {
		t.Errorf("a copy of the logged-out session cookie: %d, want 401", status)
	}
}

// With FastAPIOPAClaims the identity carries fastapi-opa's SAML claims, so
// that its policies run unchanged under the fastapi-opa input layout.
func TestSAMLFastAPIOPAClaims(t *testing.T) {
	key, cert := testsaml.KeyPair(t, "regoguard test SP")
	app := startSAMLAppWith(t, key, cert, func(c *saml.Config) { c.FastAPIOPAClaims = true })
	c := newClient(t)
	acs, fields := idpAnswer(t, c, app, "/", testsaml.User)
	resp, err := c.PostForm(acs, fields)
	testsaml.Body(t, resp, err)
	status, id := whoAmI(t, c, app.URL+"/")
	userdata, _ := id.Claims["samlUserdata"].(map[string]any)
	groups, _ := userdata["urn:oid:1.3.6.1.4.1.5923.1.1.1.1"].([]any) // eduPersonAffiliation, by Name as python3-saml keys it
	if status != http.StatusOK || id.Claims["samlNameId"] != "alice@example.com" || len(groups) != 2 ||
		id.Claims["samlSessionIndex"] == "" || id.Claims["samlNameIdFormat"] == nil {
		t.Fatalf("claims %v", id.Claims)
	}
}

// Every response that is not the IdP's signed answer to a login this browser
// started is refused, and no session results.
func TestSAMLRefusesForgedAndReplayedResponses(t *testing.T) {
	app := startSAMLApp(t)
	cases := map[string]func(t *testing.T, c *http.Client) (string, url.Values){
		"attribute changed after signing": func(t *testing.T, c *http.Client) (string, url.Values) {
			key, cert := testsaml.ECKeyPair(t, "regoguard test SP") // no encryption: the attributes are in the clear
			app := startSAMLAppWith(t, key, cert, nil)
			acs, f := idpAnswer(t, c, app, "/", testsaml.User2)
			xml, _ := base64.StdEncoding.DecodeString(f.Get("SAMLResponse"))
			if !bytes.Contains(xml, []byte(">contractors<")) {
				t.Fatalf("the attribute is not in the clear:\n%s", xml)
			}
			f.Set("SAMLResponse", base64.StdEncoding.EncodeToString(bytes.ReplaceAll(xml, []byte("contractors"), []byte("finance"))))
			return acs, f
		},
		"replayed in another login": func(t *testing.T, c *http.Client) (string, url.Values) {
			acs, old := idpAnswer(t, c, app, "/", testsaml.User)
			first, err := c.PostForm(acs, old)
			testsaml.Body(t, first, err)
			logout, err := c.PostForm(app.URL+saml.DefaultLogoutPath, nil)
			testsaml.Body(t, logout, err)
			_, fresh := idpAnswer(t, c, app, "/", testsaml.User)
			old.Set("RelayState", fresh.Get("RelayState"))
			return acs, old
		},
		"posted by another site (no login cookie)": func(t *testing.T, _ *http.Client) (string, url.Values) {
			return idpAnswer(t, newClient(t), app, "/", testsaml.User)
		},
		"IdP-initiated (no RelayState)": func(t *testing.T, c *http.Client) (string, url.Values) {
			acs, f := idpAnswer(t, c, app, "/", testsaml.User)
			f.Del("RelayState")
			return acs, f
		},
		"signed by an impostor of the IdP": func(t *testing.T, c *http.Client) (string, url.Values) {
			impostor, addr := testsaml.StartImpostor(t, app.IdP.URL)
			md, _ := app.SP.Metadata()
			impostor.Register(t, "app", md)
			idpHost := strings.TrimPrefix(app.IdP.URL, "http://")
			c.Transport = &http.Transport{DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
				if a == idpHost {
					a = addr
				}
				return (&net.Dialer{}).DialContext(ctx, network, a)
			}}
			return idpAnswer(t, c, &samlApp{URL: app.URL, SP: app.SP, IdP: impostor}, "/", testsaml.User)
		},
	}
	cases["signed Response around an unsigned assertion"] = func(t *testing.T, c *http.Client) (string, url.Values) {
		key, cert := testsaml.ECKeyPair(t, "regoguard test SP") // no encryption: the assertion is in the clear
		app := startSAMLAppWith(t, key, cert, nil)
		acs, f := idpAnswer(t, c, app, "/", testsaml.User)
		f.Set("SAMLResponse", resignWithoutAssertionSignature(t, app.IdP, f.Get("SAMLResponse")))
		return acs, f
	}
	for name, answer := range cases {
		t.Run(name, func(t *testing.T) {
			c := newClient(t)
			acs, f := answer(t, c)
			c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
			resp, err := c.PostForm(acs, f)
			body := testsaml.Body(t, resp, err)
			if resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusForbidden {
				t.Errorf("ACS answered %d, want 400 or 403: %s", resp.StatusCode, body)
			}
			if status, id := whoAmI(t, c, app.URL+"/"); status != http.StatusUnauthorized {
				t.Errorf("signed in anyway: %d %+v", status, id)
			}
		})
	}
}

// resignWithoutAssertionSignature removes the assertion's signature from
// the IdP's response and signs the whole Response again with the IdP's key,
// as an IdP that signs only responses would: crewjam/saml accepts that, and
// the service provider must not.
func resignWithoutAssertionSignature(t *testing.T, idp *testsaml.IdP, encoded string) string {
	t.Helper()
	raw, _ := base64.StdEncoding.DecodeString(encoded)
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(raw); err != nil {
		t.Fatal(err)
	}
	resp := doc.Root()
	assertion := resp.FindElement("./Assertion")
	if assertion == nil {
		t.Fatalf("no clear assertion in %s", raw)
	}
	for _, el := range []*etree.Element{resp, assertion} {
		for _, child := range el.ChildElements() {
			if child.Tag == "Signature" {
				el.RemoveChild(child)
			}
		}
	}
	ctx := dsig.NewDefaultSigningContext(dsig.TLSCertKeyStore(tls.Certificate{
		Certificate: [][]byte{idp.Certificate.Raw}, PrivateKey: idp.Key}))
	ctx.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	if err := ctx.SetSignatureMethod(dsig.RSASHA256SignatureMethod); err != nil {
		t.Fatal(err)
	}
	sig, err := ctx.ConstructSignature(resp, true)
	if err != nil {
		t.Fatal(err)
	}
	// The signature goes right after the Issuer, as the schema wants.
	resp.InsertChildAt(resp.FindElement("./Issuer").Index()+1, sig)
	out, err := doc.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(out)
}

// The service provider's metadata names its ACS and signing certificate.
func TestSAMLMetadata(t *testing.T) {
	app := startSAMLApp(t)
	resp, err := http.Get(app.URL + saml.DefaultMetadataPath)
	body := testsaml.Body(t, resp, err)
	for _, want := range []string{`Location="` + app.URL + `/saml/acs"`, `entityID="` + app.URL + `/saml/metadata"`, "X509Certificate"} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("metadata lacks %s:\n%s", want, body)
		}
	}
}

func TestNewRefusesUnsafeConfigurations(t *testing.T) {
	key, cert := testsaml.KeyPair(t, "sp")
	_, idpCert := testsaml.ECKeyPair(t, "idp")
	md := []byte(`<EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://idp.example/metadata">
  <IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <KeyDescriptor use="signing"><KeyInfo xmlns="http://www.w3.org/2000/09/xmldsig#"><X509Data><X509Certificate>` +
		base64.StdEncoding.EncodeToString(idpCert.Raw) + `</X509Certificate></X509Data></KeyInfo></KeyDescriptor>
    <SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.example/sso"/>
  </IDPSSODescriptor>
</EntityDescriptor>`)
	ok := saml.Config{
		IDPMetadata:   md,
		Key:           key,
		Certificate:   cert,
		SessionConfig: authn.SessionConfig{AppURI: "https://app.example.com", CookieKeys: [][]byte{bytes.Repeat([]byte("k"), 32)}},
	}
	if _, err := saml.New(ok); err != nil {
		t.Fatalf("the base configuration is refused, so the cases below prove nothing: %v", err)
	}
	cases := map[string]func(c *saml.Config){
		"plain http on a public host":       func(c *saml.Config) { c.AppURI = "http://app.example.com"; c.InsecureCookies = true },
		"insecure cookies with https":       func(c *saml.Config) { c.InsecureCookies = true },
		"no key":                            func(c *saml.Config) { c.Key = nil },
		"short cookie key":                  func(c *saml.Config) { c.CookieKeys = [][]byte{[]byte("short")} },
		"IdP metadata that is not metadata": func(c *saml.Config) { c.IDPMetadata = []byte("<x/>") },
		"no IdP metadata":                   func(c *saml.Config) { c.IDPMetadata = nil },
		"a route that is not a path":        func(c *saml.Config) { c.ACSPath = "//evil/acs" },
		"one route twice":                   func(c *saml.Config) { c.LogoutPath = saml.DefaultACSPath },
	}
	for name, mutate := range cases {
		c := ok
		mutate(&c)
		if _, err := saml.New(c); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
