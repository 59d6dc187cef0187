package grpcauthz_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"

	"github.com/regoguard/regoguard/grpcauthz"
	"github.com/regoguard/regoguard/policy"
)

// testCA issues certificates for the mTLS tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

func (ca *testCA) issue(t *testing.T, tmpl *x509.Certificate) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestMTLSIdentity runs over TCP with TLS: a client certificate whose chain
// the handshake verified identifies the caller (its URI SAN) and reaches the
// input as peer.certificate; one the server only requested, without
// verifying it, refuses the call.
func TestMTLSIdentity(t *testing.T) {
	ca := newCA(t, "test CA")
	serverCert := ca.issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "server"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	spiffe, _ := url.Parse("spiffe://example.org/billing")
	clientCert := ca.issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "billing"}, URIs: []*url.URL{spiffe},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	rogueCert := newCA(t, "rogue CA").issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "admin"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})

	var mu sync.Mutex
	var last ast.Value
	logger := decisionLoggerFunc(func(_ context.Context, ev policy.DecisionEvent) error {
		mu.Lock()
		last = ev.Input
		mu.Unlock()
		return nil
	})
	listen := func(auth tls.ClientAuthType) string {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		creds := credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{serverCert}, ClientCAs: ca.pool, ClientAuth: auth, MinVersion: tls.VersionTLS13})
		start(t, lis, grpcauthz.Config{ClientCertificates: true, Evaluator: engine(t, docsPolicy), DecisionLogger: logger}, grpc.Creds(creds))
		return lis.Addr().String()
	}
	dial := func(addr string, cert *tls.Certificate) *grpc.ClientConn {
		cfg := &tls.Config{RootCAs: ca.pool, MinVersion: tls.VersionTLS13}
		if cert != nil {
			cfg.Certificates = []tls.Certificate{*cert}
		}
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}

	verified := listen(tls.VerifyClientCertIfGiven)
	out, err := call(dial(verified, &clientCert), "/test.Docs/Owned", nil)
	if err != nil {
		t.Fatalf("verified client certificate: %v", err)
	}
	if sub := out.Fields["sub"].GetStringValue(); sub != "spiffe://example.org/billing" {
		t.Fatalf("handler saw %q", sub)
	}
	mu.Lock()
	in, _ := ast.JSON(last)
	mu.Unlock()
	peer := in.(map[string]any)["peer"].(map[string]any)
	if cert, _ := peer["certificate"].(map[string]any); cert["common_name"] != "billing" {
		t.Fatalf("peer %v", peer)
	}
	_, err = call(dial(verified, nil), "/test.Docs/Owned", nil)
	wantCode(t, err, codes.Unauthenticated)

	// A server that requests certificates without verifying them: the
	// rogue certificate reaches the interceptor and is refused there.
	unverified := listen(tls.RequestClientCert)
	_, err = call(dial(unverified, &rogueCert), "/test.Docs/Owned", nil)
	wantCode(t, err, codes.Unauthenticated)
	_, err = call(dial(unverified, &clientCert), "/test.Docs/Owned", nil)
	wantCode(t, err, codes.Unauthenticated)
}
