package bundles_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/regoguard/regoguard/bundles"
)

// TestClientTLS downloads a bundle from a server that requires a client
// certificate, with the service's client TLS credentials and CA file handed
// to OPA's REST client.
func TestClientTLS(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()

	// A self-signed client certificate that the server trusts.
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "regoguard"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	clientCert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, caFile := filepath.Join(dir, "client.pem"), filepath.Join(dir, "client.key"), filepath.Join(dir, "ca.pem")
	writePEM := func(file, typ string, b []byte) {
		if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writePEM(certFile, "CERTIFICATE", der)
	writePEM(keyFile, "EC PRIVATE KEY", keyDER)

	srv := &bundleServer{body: authzBundle(t, "rev-tls", authzV1, nil), etag: `"t1"`}
	ts := newTLSServer(t, srv, clientCert)
	srv.Server = ts
	writePEM(caFile, "CERTIFICATE", ts.Certificate().Raw)

	e := newEngine(t)
	cfg := remote(t, e, srv, "", nil, nil)
	cfg.Services["acme"] = bundles.Service{URL: ts.URL, ClientCertFile: certFile, ClientKeyFile: keyFile, CACertFile: caFile}
	m, err := bundles.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Trigger(ctx); err != nil {
		t.Fatalf("download with a client certificate: %v", err)
	}
	if d := mustEval(t, e, "GET", "bob"); !d.Allow || d.Revision != "rev-tls" {
		t.Errorf("GET: %+v", d)
	}

	// Without the client certificate the server refuses the handshake.
	e2 := newEngine(t)
	cfg2 := remote(t, e2, srv, "", nil, nil)
	cfg2.Services["acme"] = bundles.Service{URL: ts.URL, CACertFile: caFile}
	m2, err := bundles.New(cfg2)
	if err != nil {
		t.Fatal(err)
	}
	if err := m2.Trigger(ctx); err == nil || m2.Ready() {
		t.Errorf("download without a client certificate: %v, ready %v", err, m2.Ready())
	}
	if seen := srv.seen(); len(seen) != 1 {
		t.Errorf("server handled %d requests, want only the one with a client certificate", len(seen))
	}
}

func newTLSServer(t *testing.T, h http.Handler, client *x509.Certificate) *httptest.Server {
	pool := x509.NewCertPool()
	pool.AddCert(client)
	ts := httptest.NewUnstartedServer(h)
	ts.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is expected
	ts.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	ts.StartTLS()
	t.Cleanup(ts.Close)
	return ts
}
