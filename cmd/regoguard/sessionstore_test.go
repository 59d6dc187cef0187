package main_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestServeSessionStoreBadConfig(t *testing.T) {
	browser := []string{"--upstream", "http://127.0.0.1:1", "--policy", "testdata/policy",
		"--oidc-well-known", "http://127.0.0.1:1", "--oidc-client-id", "app", "--app-uri", "http://127.0.0.1:8080",
		"--insecure-cookie", "--session-key", strings.Repeat("ab", 32)}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--upstream", "http://127.0.0.1:1", "--no-authn", "--policy", "testdata/policy", "--session-store", "redis://127.0.0.1:1"},
			"--session-store keeps the state of the browser logins: it needs --app-uri"},
		{append(browser, "--session-store", "redis"), "--session-store"},
		{append(browser, "--session-store", "memcached://127.0.0.1:1"), "--session-store"},
		{append(browser, "--session-store", "redis+sentinel://127.0.0.1:26379"), "must name the master"},
		{append(browser, "--session-store", "redis://127.0.0.1:1", "--session-store-timeout", "0s"), "--session-store-timeout"},
		{append(browser, "--session-store", "redis://user:hunter2@127.0.0.1:port"), "--session-store"},
		{append(browser, "--server-side-sessions"), "--server-side-sessions keeps sessions in the --session-store"},
	} {
		res := run(t, nil, append([]string{"serve", "--listen", "127.0.0.1:0"}, c.args...)...)
		if res.code != 2 || !strings.Contains(res.stderr, c.want) {
			t.Errorf("serve %v: exit %d, stderr %q; want 2 naming %s", c.args, res.code, res.stderr, c.want)
		}
		if strings.Contains(res.stderr, "hunter2") {
			t.Errorf("serve %v: the Redis password is in the error: %q", c.args, res.stderr)
		}
	}
}

// A replica whose Redis is down at start starts anyway (it says so), and
// requests that do not carry a browser session never wait on Redis.
func TestServeStartsWithRedisDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close() // nothing listens there now
	up := newUpstream(t)
	keys := writeFile(t, "keys.yaml", keysFile)
	s := startServe(t, []string{"REGOGUARD_SESSION_STORE=redis://:hunter2@" + dead},
		"--listen", "127.0.0.1:0", "--upstream", up.URL, "--policy", "testdata/policy", "--api-keys", keys,
		"--oidc-well-known", "http://127.0.0.1:1", "--oidc-client-id", "app", "--app-uri", "http://127.0.0.1:8080",
		"--insecure-cookie", "--session-key", strings.Repeat("ab", 32), "--session-store-timeout", "300ms")
	s.logs.wait(t, regexp.MustCompile(`(Redis does not answer yet)`), nil)
	start := time.Now()
	status, _, body := s.get(t, "GET", "/docs/1", map[string]string{"X-API-Key": "alice-key-0123456789"})
	if status != 200 || body != "upstream says hi to alice" {
		t.Errorf("API key with Redis down: %d %q, want 200", status, body)
	}
	if took := time.Since(start); took > 250*time.Millisecond {
		t.Errorf("the API key request took %v: it waited on Redis", took)
	}
	if strings.Contains(s.logs.String(), "hunter2") {
		t.Error("the Redis password is in the log")
	}
}

// serve reaches a TLS-only redis-server whose certificate comes from a
// private CA named by SSL_CERT_FILE, as the README says.
func TestServeSessionStoreOverTLSWithSSLCertFile(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("redis-server is not installed (apt-get install -y redis-server)")
		}
		t.Skip("redis-server is not installed (apt-get install -y redis-server)")
	}
	dir := t.TempDir()
	ca, cert, key := tlsFiles(t, dir)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	redis := exec.Command("redis-server", "--port", "0", "--tls-port", port, "--bind", "127.0.0.1", "--save", "",
		"--appendonly", "no", "--dir", dir, "--tls-cert-file", cert, "--tls-key-file", key, "--tls-ca-cert-file", ca,
		"--tls-auth-clients", "no")
	if err := redis.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = redis.Process.Kill(); _ = redis.Wait() })
	for i := 0; i < 500; i++ {
		if c, err := net.Dial("tcp", "127.0.0.1:"+port); err == nil {
			c.Close()
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	up := newUpstream(t)
	s := startServe(t, []string{"SSL_CERT_FILE=" + ca, "REGOGUARD_SESSION_STORE=rediss://127.0.0.1:" + port},
		"--listen", "127.0.0.1:0", "--upstream", up.URL, "--policy", "testdata/policy",
		"--oidc-well-known", "http://127.0.0.1:1", "--oidc-client-id", "app", "--app-uri", "http://127.0.0.1:8080",
		"--insecure-cookie", "--session-key", strings.Repeat("ab", 32))
	if got := s.logs.wait(t, regexp.MustCompile(`msg="session store: (Redis|Redis does not answer yet)[";]`), nil); got != "Redis" {
		t.Errorf("serve could not reach the TLS Redis with SSL_CERT_FILE: %s", got)
	}
}

// tlsFiles writes a CA and a certificate for 127.0.0.1 signed by it.
func tlsFiles(t *testing.T, dir string) (ca, cert, key string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "redis"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &k.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(k)
	write := func(name, typ string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("cert.pem", "CERTIFICATE", der), write("key.pem", "EC PRIVATE KEY", keyDER)
}
