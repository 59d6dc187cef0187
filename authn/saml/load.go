package saml

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// MaxMetadataBytes bounds an IdP metadata document read by [ReadMetadata].
const MaxMetadataBytes = 1 << 20

// ReadMetadata reads an IdP's metadata document from location: an http(s)
// URL, fetched with client (nil: a client with a 10 s timeout) and ctx, or
// else a file. What it returns is what [Config].IDPMetadata takes.
func ReadMetadata(ctx context.Context, client *http.Client, location string) ([]byte, error) {
	if !strings.HasPrefix(location, "http://") && !strings.HasPrefix(location, "https://") {
		b, err := os.ReadFile(location)
		if err != nil {
			return nil, fmt.Errorf("saml: IdP metadata: %w", err)
		}
		return b, nil
	}
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, location, nil)
	if err != nil {
		return nil, fmt.Errorf("saml: IdP metadata: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("saml: IdP metadata: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("saml: IdP metadata: %s answered %s", location, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxMetadataBytes+1))
	if err != nil {
		return nil, fmt.Errorf("saml: IdP metadata: %w", err)
	}
	if len(b) > MaxMetadataBytes {
		return nil, fmt.Errorf("saml: IdP metadata: larger than %d bytes", MaxMetadataBytes)
	}
	return b, nil
}

// LoadKeyPair reads this service provider's private key (PEM: PKCS#8,
// PKCS#1 or SEC 1) and certificate (PEM) from files, and checks that they
// belong together. Errors name the file, never the key.
func LoadKeyPair(keyFile, certFile string) (crypto.Signer, *x509.Certificate, error) {
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("saml: key: %w", err)
	}
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, nil, fmt.Errorf("saml: certificate: %w", err)
	}
	return ParseKeyPair(keyPEM, certPEM)
}

// ParseKeyPair is [LoadKeyPair] on PEM bytes.
func ParseKeyPair(keyPEM, certPEM []byte) (crypto.Signer, *x509.Certificate, error) {
	kb, _ := pem.Decode(keyPEM)
	if kb == nil {
		return nil, nil, errors.New("saml: key: not PEM")
	}
	cb, _ := pem.Decode(certPEM)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return nil, nil, errors.New("saml: certificate: not a PEM certificate")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("saml: certificate: %w", err)
	}
	var key any
	if key, err = x509.ParsePKCS8PrivateKey(kb.Bytes); err != nil {
		if key, err = x509.ParsePKCS1PrivateKey(kb.Bytes); err != nil {
			key, err = x509.ParseECPrivateKey(kb.Bytes)
		}
	}
	signer, ok := key.(crypto.Signer)
	if err != nil || !ok {
		return nil, nil, errors.New("saml: key: not a PKCS#8, PKCS#1 or SEC 1 private key")
	}
	pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, nil, errors.New("saml: the key is not the certificate's")
	}
	return signer, cert, nil
}
