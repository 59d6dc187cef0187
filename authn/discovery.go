package authn

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// wellKnownSuffix is the discovery path that OIDC_WELL_KNOWN values end with.
const wellKnownSuffix = "/.well-known/openid-configuration"

// IssuerURL turns an issuer URL or the full URL of its discovery document
// (".../.well-known/openid-configuration", as in OIDC_WELL_KNOWN) into the
// issuer URL that discovery and token validation expect.
func IssuerURL(s string) string {
	return strings.TrimSuffix(strings.TrimSpace(s), wellKnownSuffix)
}

// retryDiscoveryAfter bounds how often a failed discovery is retried, so that a
// provider that is down is not hammered by every request.
const retryDiscoveryAfter = 2 * time.Second

// discovery fetches the provider's discovery document on first use and keeps
// it once it succeeded, so that an authenticator can be built while the
// provider is still starting. One fetch runs at a time, without the lock: a
// slow provider delays only the callers that need it, each no longer than
// its own context allows.
type discovery struct {
	issuer   string
	client   *http.Client
	throttle *jwksThrottle
	now      func() time.Time

	mu       sync.Mutex
	provider *oidc.Provider
	meta     providerMeta
	lastErr  error
	lastTry  time.Time
	inflight chan struct{} // closed when the fetch in progress ends; nil when none
}

// providerMeta holds discovery fields go-oidc does not expose directly.
type providerMeta struct {
	EndSessionEndpoint string `json:"end_session_endpoint"`
	JWKSURI            string `json:"jwks_uri"`
}

func newDiscovery(issuer string, client *http.Client, now func() time.Time) (*discovery, error) {
	issuer = IssuerURL(issuer)
	if issuer == "" {
		return nil, errors.New("authn: OIDC issuer is required")
	}
	if !strings.HasPrefix(issuer, "https://") && !strings.HasPrefix(issuer, "http://") {
		return nil, fmt.Errorf("authn: OIDC issuer %q is not an http(s) URL", issuer)
	}
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	d := &discovery{issuer: issuer, now: now}
	c := *client
	d.throttle = &jwksThrottle{next: c.Transport, now: now}
	if d.throttle.next == nil {
		d.throttle.next = http.DefaultTransport
	}
	c.Transport = d.throttle
	d.client = &c
	return d, nil
}

// jwksMinInterval is the shortest time between two fetches of the provider's
// key set.
const jwksMinInterval = 5 * time.Second

// errJWKSThrottled is what a key set fetch gets when the previous one was
// less than jwksMinInterval ago.
var errJWKSThrottled = errors.New("key set fetched too recently")

// jwksThrottle limits fetches of the JWKS URL. go-oidc's RemoteKeySet
// refetches the key set whenever a token names a key ID it does not have, so
// without a limit every request with a made-up "kid" would cost a request to
// the provider. Tokens signed by known keys are verified from the cache and
// never reach the transport; a genuinely new key is picked up by the first
// fetch allowed after it appeared.
type jwksThrottle struct {
	next http.RoundTripper
	now  func() time.Time

	mu   sync.Mutex
	url  string // set once discovery succeeded
	last time.Time
}

func (j *jwksThrottle) setURL(u string) {
	j.mu.Lock()
	j.url = u
	j.mu.Unlock()
}

// RoundTrip implements http.RoundTripper.
func (j *jwksThrottle) RoundTrip(req *http.Request) (*http.Response, error) {
	j.mu.Lock()
	if j.url != "" && req.URL.String() == j.url {
		now := j.now()
		if !j.last.IsZero() && now.Sub(j.last) < jwksMinInterval {
			j.mu.Unlock()
			return nil, errJWKSThrottled
		}
		j.last = now
	}
	j.mu.Unlock()
	return j.next.RoundTrip(req)
}

// ctx returns a context carrying the HTTP client for go-oidc and oauth2. Key
// set fetches outlive requests, so it is not derived from a request context.
func (d *discovery) clientContext(parent context.Context) context.Context {
	return oidc.ClientContext(parent, d.client)
}

// get returns the provider, fetching its discovery document if needed. It
// waits for a fetch in progress no longer than ctx allows.
func (d *discovery) get(ctx context.Context) (*oidc.Provider, error) {
	for {
		d.mu.Lock()
		if d.provider != nil {
			p := d.provider
			d.mu.Unlock()
			return p, nil
		}
		wait := d.inflight
		if wait == nil {
			if d.lastErr != nil && d.now().Sub(d.lastTry) < retryDiscoveryAfter {
				err := d.lastErr
				d.mu.Unlock()
				return nil, err
			}
			d.lastTry = d.now()
			wait = make(chan struct{})
			d.inflight = wait
			go d.fetch(ctx, wait)
		}
		d.mu.Unlock()
		select {
		case <-wait:
			// Look again: the fetch has set the provider or its error.
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: discovery of %s still in progress: %w", ErrUnavailable, d.issuer, ctx.Err())
		}
		d.mu.Lock()
		p, err := d.provider, d.lastErr
		d.mu.Unlock()
		if p != nil || err != nil {
			return p, err
		}
	}
}

// fetch fetches the discovery document, records the outcome and closes done.
func (d *discovery) fetch(ctx context.Context, done chan struct{}) {
	p, meta, err := d.discover(ctx)
	d.mu.Lock()
	defer d.mu.Unlock()
	if err != nil {
		d.lastErr = err
	} else {
		d.throttle.setURL(meta.JWKSURI)
		d.provider, d.meta, d.lastErr = p, meta, nil
	}
	d.inflight = nil
	close(done)
}

func (d *discovery) discover(ctx context.Context) (*oidc.Provider, providerMeta, error) {
	// The provider keeps this context for its key set's own fetches, which
	// outlive the request that started discovery: it carries neither the
	// request's cancellation nor its deadline (context.WithoutCancel drops
	// both). The discovery request itself is bounded by the HTTP client's
	// timeout (10 s by default); callers stop waiting for it when their
	// own context ends.
	base := d.clientContext(context.WithoutCancel(ctx))
	issuer := d.issuer
	p, err := oidc.NewProvider(base, issuer)
	var mismatch *oidc.IssuerMismatchError
	if errors.As(err, &mismatch) && strings.TrimSuffix(mismatch.Discovered, "/") == strings.TrimSuffix(issuer, "/") {
		// The configured URL differs from the discovered issuer only by a
		// trailing slash (e.g. Auth0's "https://tenant/"): the document came
		// from the configured host, so adopt its exact spelling.
		issuer = mismatch.Discovered
		p, err = oidc.NewProvider(base, issuer)
	}
	if err != nil {
		return nil, providerMeta{}, fmt.Errorf("%w: discovery of %s: %w", ErrUnavailable, issuer, err)
	}
	var meta providerMeta
	if err := p.Claims(&meta); err != nil {
		return nil, providerMeta{}, fmt.Errorf("%w: discovery document of %s: %w", ErrUnavailable, issuer, err)
	}
	return p, meta, nil
}

// endSession returns the provider's end_session_endpoint, or "" when it has
// none or discovery has not succeeded yet.
func (d *discovery) endSession() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.meta.EndSessionEndpoint
}

// defaultAlgorithms are the asymmetric JWS algorithms accepted by default.
// Symmetric (HS*) algorithms and "none" are never accepted: the verifier only
// has the provider's public keys, and a token "signed" with one of them as an
// HMAC secret must not pass.
var defaultAlgorithms = []string{
	oidc.RS256, oidc.RS384, oidc.RS512,
	oidc.ES256, oidc.ES384, oidc.ES512,
	oidc.PS256, oidc.PS384, oidc.PS512,
	oidc.EdDSA,
}

func checkAlgorithms(algs []string) ([]string, error) {
	if len(algs) == 0 {
		return defaultAlgorithms, nil
	}
	for _, a := range algs {
		if !contains(defaultAlgorithms, a) {
			return nil, fmt.Errorf("authn: signing algorithm %q is not allowed (asymmetric algorithms only)", a)
		}
	}
	return algs, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
