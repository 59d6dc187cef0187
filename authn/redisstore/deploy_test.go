package redisstore_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/regoguard/regoguard/internal/testkit/testredis"

	"github.com/regoguard/regoguard/authn/redisstore"
)

// Behind Redis Sentinel (a real sentinel, redis-server --sentinel), in both
// URL forms: the store finds the master through the sentinel and writes
// there; with the master gone it fails closed in bounded time.
func TestStoreThroughSentinel(t *testing.T) {
	master := startRedis(t, testredis.Options{})
	conf := writeFile(t, t.TempDir(), "sentinel.conf",
		"sentinel monitor mymaster 127.0.0.1 "+strings.TrimPrefix(master.Addr(), "127.0.0.1:")+" 1\n"+
			"sentinel down-after-milliseconds mymaster 60000\n")
	sentinel := startRedis(t, testredis.Options{Conf: conf, Args: []string{"--sentinel"}})
	raw := rawClient(t, master.Addr())
	ctx := context.Background()
	for i, url := range []string{
		"redis+sentinel://" + sentinel.Addr() + "/mymaster",
		"redis://" + sentinel.Addr() + "?master_name=mymaster",
	} {
		s := newStore(t, url, time.Second)
		id := "oidc-login:sentinel-" + string(rune('a'+i))
		if first, err := s.UseLogin(ctx, id, time.Minute); err != nil || !first {
			t.Fatalf("%s: UseLogin = %v, %v", url, first, err)
		}
		if n, _ := raw.Exists(ctx, "regoguard:login:"+id).Result(); n != 1 {
			t.Errorf("%s: the login is not recorded on the master", url)
		}
		if again, err := s.UseLogin(ctx, id, time.Minute); err != nil || again {
			t.Errorf("%s: replay = %v, %v", url, again, err)
		}
	}
	s := newStore(t, "redis+sentinel://"+sentinel.Addr()+"/mymaster", 300*time.Millisecond)
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	master.Stop()
	failsClosed(t, s, slack(300*time.Millisecond))
}

// rediss:// to a real redis-server speaking only TLS, with a private CA:
// trusted through Config.TLSConfig, refused without it.
func TestStoreOverTLS(t *testing.T) {
	dir := t.TempDir()
	caPEM, certPEM, keyPEM, pool := testCerts(t)
	ca := writeFile(t, dir, "ca.pem", caPEM)
	cert := writeFile(t, dir, "cert.pem", certPEM)
	key := writeFile(t, dir, "key.pem", keyPEM)
	srv := startRedis(t, testredis.Options{
		Args: []string{"--port", "0", "--tls-port", "{port}", "--tls-cert-file", cert, "--tls-key-file", key,
			"--tls-ca-cert-file", ca, "--tls-auth-clients", "no"},
		TLS: &tls.Config{RootCAs: pool},
	})
	ctx := context.Background()
	s, err := redisstore.New(redisstore.Config{URL: "rediss://" + srv.Addr(), TLSConfig: &tls.Config{RootCAs: pool}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if first, err := s.UseLogin(ctx, "oidc-login:tls", time.Minute); err != nil || !first {
		t.Fatalf("UseLogin over TLS = %v, %v", first, err)
	}

	// Frozen: new connections are accepted by the kernel and the TLS
	// handshake never finishes.
	fresh, err := redisstore.New(redisstore.Config{URL: "rediss://" + srv.Addr(), TLSConfig: &tls.Config{RootCAs: pool},
		Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	srv.Pause()
	failsClosed(t, fresh, slack(300*time.Millisecond))
	srv.Resume()
	if err := fresh.Ping(ctx); err != nil {
		t.Errorf("after the pause: %v", err)
	}

	untrusting := newStore(t, "rediss://"+srv.Addr(), 500*time.Millisecond)
	if err := untrusting.Ping(ctx); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("Ping over TLS without the CA: %v, want a certificate error", err)
	}
	plain := newStore(t, "redis://"+srv.Addr(), 500*time.Millisecond)
	if _, err := plain.Revoked(ctx, "oidc-session:a"); err == nil {
		t.Error("plain redis:// to a TLS port answered")
	}
}

// testCerts makes a CA and a certificate for 127.0.0.1 signed by it.
func testCerts(t *testing.T) (caPEM, certPEM, keyPEM string, pool *x509.CertPool) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "redis"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(caCert)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})),
		string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})), pool
}

// A Redis Cluster (one real node holding every slot): the store finds the
// node through CLUSTER SLOTS and fails closed when it is gone.
func TestStoreOnACluster(t *testing.T) {
	node := startRedis(t, testredis.Options{Args: []string{"--cluster-enabled", "yes", "--cluster-config-file", "nodes-{port}.conf"}})
	raw := rawClient(t, node.Addr())
	ctx := context.Background()
	if err := raw.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", "0", "16383").Err(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, _ := raw.ClusterInfo(ctx).Result()
		if strings.Contains(info, "cluster_state:ok") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cluster is not ready: %s", info)
		}
		time.Sleep(50 * time.Millisecond)
	}
	s := newStore(t, "redis+cluster://"+node.Addr(), time.Second)
	if first, err := s.UseLogin(ctx, "oidc-login:cluster", time.Minute); err != nil || !first {
		t.Fatalf("UseLogin on a cluster = %v, %v", first, err)
	}
	if again, err := s.UseLogin(ctx, "oidc-login:cluster", time.Minute); err != nil || again {
		t.Fatalf("replay on a cluster = %v, %v", again, err)
	}
	if err := s.Revoke(ctx, "oidc-session:cluster", time.Minute); err != nil {
		t.Fatal(err)
	}
	if revoked, err := s.Revoked(ctx, "oidc-session:cluster"); err != nil || !revoked {
		t.Fatalf("Revoked on a cluster = %v, %v", revoked, err)
	}
	bounded := newStore(t, "redis+cluster://"+node.Addr(), 300*time.Millisecond)
	if err := bounded.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	node.Stop()
	failsClosed(t, bounded, slack(300*time.Millisecond))
}
