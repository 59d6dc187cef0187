package grpcauthz

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/authz"
)

// Refusals of authentication. Their messages never hold a credential.
var (
	errNoCredential = status.Error(codes.Unauthenticated, "authentication required")
	errInvalid      = status.Error(codes.Unauthenticated, "invalid credentials")
	errIdPDown      = status.Error(codes.Unavailable, "the identity provider cannot be reached")
)

// normKey is how a server other than grpc-go may read a metadata key (as
// CGI, WSGI and Rack read header names): lower case, "_" as "-", and
// without the "-bin" suffix of binary keys.
func normKey(k string) string {
	k = strings.TrimSuffix(strings.ToLower(k), "-bin")
	return strings.ReplaceAll(k, "_", "-")
}

// authenticate verifies every credential of call and returns the caller:
// nil with no error for a call without any (AllowAnonymous decides later).
func (i *Interceptor) authenticate(ctx context.Context, call Call) (*authn.Identity, error) {
	var auth, apiKey []string
	for k, vs := range call.Metadata {
		lk := strings.ToLower(k)
		switch {
		case lk == "authorization":
			auth = append(auth, vs...)
		case lk == i.apiKeyMD:
			apiKey = append(apiKey, vs...)
		case normKey(lk) == "authorization" || normKey(lk) == i.apiKeyMD:
			// authorization-bin, x_api_key: a credential regoguard would
			// not check but a server behind it might read as one.
			i.logger.InfoContext(ctx, "credential metadata in another spelling refused", "key", lk, "method", call.FullMethod)
			return nil, i.refuseAuth(errInvalid)
		}
	}
	var ids []*authn.Identity
	if len(auth) > 0 {
		id, err := i.bearer(ctx, auth)
		if err != nil {
			i.logger.InfoContext(ctx, "authentication failed", "error", err, "method", call.FullMethod)
			return nil, i.refuseAuth(err)
		}
		ids = append(ids, id)
	}
	if len(apiKey) > 0 {
		id, err := i.apiKey(ctx, apiKey)
		if err != nil {
			i.logger.InfoContext(ctx, "authentication failed", "error", err, "method", call.FullMethod)
			return nil, i.refuseAuth(err)
		}
		ids = append(ids, id)
	}
	if i.cfg.ClientCertificates && call.Peer != nil {
		id, err := i.certificate(call)
		switch {
		case errors.Is(err, authn.ErrNoCredential):
		case err != nil:
			i.logger.InfoContext(ctx, "authentication failed", "error", err, "method", call.FullMethod)
			return nil, i.refuseAuth(err)
		default:
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	return ids[0], nil
}

// refuseAuth counts a refused credential and turns err into the status to
// answer: Unavailable when the credential could not be checked.
func (i *Interceptor) refuseAuth(err error) error {
	if errors.Is(err, authn.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
		i.pipe.Count(authz.OutcomeError)
		return errIdPDown
	}
	i.pipe.Count(authz.OutcomeUnauthenticated)
	return errInvalid
}

// bearer verifies the one "Bearer" token of the authorization metadata.
// Repeated authorization metadata, another scheme, an empty token or no
// verifier refuse the call: the credential is there and cannot be checked.
func (i *Interceptor) bearer(ctx context.Context, vals []string) (*authn.Identity, error) {
	if len(vals) != 1 {
		return nil, errors.New("repeated authorization metadata")
	}
	scheme, tok, ok := strings.Cut(vals[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return nil, errors.New("authorization metadata is not a Bearer token")
	}
	tok = strings.TrimSpace(tok)
	if tok == "" {
		return nil, errors.New("empty bearer token")
	}
	if i.cfg.Tokens == nil {
		return nil, errors.New("bearer tokens are not accepted (no token verifier)")
	}
	id, err := i.verifyToken(ctx, tok)
	if err != nil {
		return nil, &authn.CredentialError{Method: authn.MethodOIDC, Err: err}
	}
	if id == nil {
		return nil, errors.New("token verifier returned neither identity nor error")
	}
	return id, nil
}

// verifyToken runs the token verifier within ctx's deadline. A verifier
// may not honour its context everywhere: authn.Bearer's discovery fetch
// outlives the call that starts it, bounded only by its HTTP client's
// timeout. The call is then refused at its deadline while the fetch goes
// on in the background.
func (i *Interceptor) verifyToken(ctx context.Context, tok string) (*authn.Identity, error) {
	type result struct {
		id  *authn.Identity
		err error
	}
	done := make(chan result, 1)
	go func() {
		id, err := i.cfg.Tokens.Verify(ctx, tok)
		done <- result{id, err}
	}()
	select {
	case r := <-done:
		return r.id, r.err
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: token verification: %w", authn.ErrUnavailable, ctx.Err())
	}
}

// apiKey checks the API key with the configured authenticator, asked with a
// request that holds only the key: authn.APIKeys reads a header, and gRPC
// metadata is what HTTP/2 carries as headers.
func (i *Interceptor) apiKey(ctx context.Context, vals []string) (*authn.Identity, error) {
	if len(vals) != 1 {
		return nil, errors.New("repeated API key metadata")
	}
	if strings.TrimSpace(vals[0]) == "" {
		return nil, errors.New("empty API key")
	}
	if i.cfg.APIKeys == nil {
		return nil, errors.New("API keys are not accepted (no API key store)")
	}
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, "/", http.NoBody)
	if err != nil {
		return nil, err
	}
	r.Header.Set(i.apiKeyMD, vals[0])
	id, err := i.cfg.APIKeys.Authenticate(r)
	switch {
	case errors.Is(err, authn.ErrNoCredential):
		// The store reads another header than it declares: the key was
		// not checked, so it is refused.
		return nil, errors.New("the API key store did not read the key: it reads another header than it declares")
	case err != nil:
		return nil, err
	case id == nil:
		return nil, errors.New("API key store returned neither identity nor error")
	}
	return id, nil
}

// certificate returns the identity of the peer's client certificate:
// authn.ErrNoCredential when there is none, an error when its chain was not
// verified.
func (i *Interceptor) certificate(call Call) (*authn.Identity, error) {
	cert, verified := clientCertificate(call)
	if cert == nil {
		return nil, authn.ErrNoCredential
	}
	if !verified {
		return nil, errors.New("client certificate presented but its chain was not verified")
	}
	if i.cfg.CertificateIdentity != nil {
		id, err := i.cfg.CertificateIdentity(cert)
		if err == nil && id == nil {
			err = errors.New("CertificateIdentity returned neither identity nor error")
		}
		return id, err
	}
	claims := certificateClaims(cert)
	sub := cert.Subject.CommonName
	if len(cert.URIs) > 0 {
		sub = cert.URIs[0].String()
	}
	if sub == "" {
		return nil, errors.New("client certificate has neither a URI SAN nor a common name")
	}
	return &authn.Identity{Subject: sub, Method: MethodMTLS, Claims: claims}, nil
}

// clientCertificate returns the peer's leaf certificate, and whether the
// TLS handshake verified its chain.
func clientCertificate(call Call) (*x509.Certificate, bool) {
	if call.Peer == nil || call.Peer.AuthInfo == nil {
		return nil, false
	}
	info, ok := call.Peer.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.PeerCertificates) == 0 {
		return nil, false
	}
	return info.State.PeerCertificates[0], len(info.State.VerifiedChains) > 0
}

// certificateClaims are the names of a certificate, as JSON-compatible
// values for the policy.
func certificateClaims(cert *x509.Certificate) map[string]any {
	uris := make([]any, len(cert.URIs))
	for k, u := range cert.URIs {
		uris[k] = u.String()
	}
	return map[string]any{
		"subject":         cert.Subject.String(),
		"common_name":     cert.Subject.CommonName,
		"issuer":          cert.Issuer.String(),
		"serial_number":   cert.SerialNumber.String(),
		"dns_names":       stringsAny(cert.DNSNames),
		"uris":            uris,
		"email_addresses": stringsAny(cert.EmailAddresses),
		"organization":    stringsAny(cert.Subject.Organization),
	}
}

func stringsAny(ss []string) []any {
	out := make([]any, len(ss))
	for k, s := range ss {
		out[k] = s
	}
	return out
}
