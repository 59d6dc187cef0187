package bundles

import (
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/download"
	"github.com/open-policy-agent/opa/v1/keys"
	"github.com/open-policy-agent/opa/v1/plugins"

	"github.com/regoguard/regoguard/policy"
)

// Config configures a [Manager]. Engine and at least one bundle are required;
// everything else has a usable zero value.
type Config struct {
	// Engine is the in-process engine that activated bundles are loaded into.
	Engine *policy.Engine
	// Bundles are the bundles to serve. Several bundles may be active at once
	// as long as their manifest roots are disjoint.
	Bundles []Source
	// Services are the remote services that bundles are downloaded from, by
	// name, with their credentials. A Source names one in Source.Service.
	Services map[string]Service
	// Keys are the public keys (or HMAC secrets) that bundle signatures are
	// verified with, by key id. A Source uses them through Source.Signing.
	Keys map[string]Key
	// PersistDir, when set, is where the last activated bundle downloaded
	// from each remote source is kept, so that a restart while the bundle
	// server is down still serves it. Persisted bundles are verified again
	// when they are read back.
	PersistDir string
	// DecisionLogger, when set, is given every activated policy so that the
	// system.log.mask and system.log.drop rules in the bundles apply to
	// decision logs, as they do in OPA.
	DecisionLogger *DecisionLogger
	// Logger receives activation and download events. Default slog.Default().
	Logger *slog.Logger
}

// Source is one bundle: a local directory or .tar.gz file (Path), or a
// bundle downloaded from a bundle server or an OCI registry (URL).
type Source struct {
	// Name identifies the bundle in status, metrics and decision logs. It is
	// required and unique.
	Name string
	// Path is a bundle directory or a .tar.gz file as `opa build` makes it.
	// It is read at start-up and again on every [Manager.Trigger].
	Path string
	// URL locates a remote bundle. With Service set it is the resource path
	// relative to that service's URL (default "bundles/<Name>"). Without
	// Service it is an absolute http:// or https:// URL, fetched with no
	// credentials.
	URL string
	// Service names an entry of Config.Services to download the bundle from.
	Service string
	// Polling sets how often a remote bundle is checked for a new revision.
	Polling Polling
	// SizeLimitBytes limits the size of each file in the bundle; zero is
	// OPA's default (1 GiB).
	SizeLimitBytes int64
	// Signing, when set, requires the bundle to carry a valid
	// .signatures.json signed with one of Config.Keys.
	Signing *Signing
}

// Polling configures how a remote bundle is checked for updates. OPA counts
// delays in whole seconds: shorter durations are rounded up.
type Polling struct {
	// MinDelay and MaxDelay bound the random wait between two checks.
	// Defaults 60s and 120s.
	MinDelay, MaxDelay time.Duration
	// LongPollingTimeout, when set, asks the server to hold each request
	// open until a new revision is available or this long has passed. The
	// server must support it (and answer with Content-Type
	// application/vnd.openpolicyagent.bundles); otherwise plain polling is used.
	LongPollingTimeout time.Duration
	// Manual turns polling off: the bundle is only fetched by
	// [Manager.Trigger].
	Manual bool
}

// Signing configures the verification of a bundle's signature, as OPA's
// "signing" bundle configuration does.
type Signing struct {
	// KeyID is the key in Config.Keys to verify with when the signature does
	// not name one.
	KeyID string
	// Scope, when set, must match the scope claim of the signature.
	Scope string
	// Exclude lists files (glob patterns) left out of verification.
	Exclude []string
}

// Key is a key that bundle signatures are verified with.
type Key struct {
	// Algorithm is the JWS algorithm, such as RS256, ES256 or HS256.
	// Default RS256.
	Algorithm string
	// Key is a PEM-encoded public key, an HMAC secret, or the path of a file
	// holding one.
	Key string
	// Scope, when set, is the scope the key is used for.
	Scope string
}

// Service is a remote service bundles are downloaded from (or decision logs
// uploaded to), with its credentials. It becomes the configuration of OPA's
// REST client (plugins/rest), so it behaves as the same service would in an
// OPA configuration file.
type Service struct {
	// URL is the base URL of the service, such as https://bundles.example.com.
	URL string
	// Type is "" for an OPA bundle server, or "oci" for an OCI registry.
	Type string
	// BearerToken, or a file holding it (BearerTokenPath, re-read on every
	// request), is sent in the Authorization header with BearerScheme
	// (default "Bearer").
	BearerToken, BearerTokenPath, BearerScheme string
	// ClientCertFile and ClientKeyFile are a PEM client certificate and key
	// for mutual TLS.
	ClientCertFile, ClientKeyFile string
	// CACertFile is a PEM file of CA certificates that the server's
	// certificate is verified against, instead of the system roots.
	CACertFile string
	// Headers are added to every request.
	Headers map[string]string
	// ResponseHeaderTimeout bounds the wait for the response headers;
	// zero is OPA's default (10s).
	ResponseHeaderTimeout time.Duration
	// OPAConfig, when set, is a complete OPA service configuration in JSON
	// (url, credentials and so on, as in an OPA configuration file) and
	// replaces every other field, for credentials Service does not model
	// (OAuth2, AWS signing, GCP or Azure identities).
	OPAConfig json.RawMessage
}

// opaConfig returns the service as OPA's REST client configuration.
func (s Service) opaConfig(name string) ([]byte, error) {
	if len(s.OPAConfig) > 0 {
		var m map[string]any
		if err := json.Unmarshal(s.OPAConfig, &m); err != nil {
			return nil, fmt.Errorf("bundles: service %q: OPA configuration: %w", name, err)
		}
		m["name"] = name
		return json.Marshal(m)
	}
	if s.URL == "" {
		return nil, fmt.Errorf("bundles: service %q has no URL", name)
	}
	if _, err := url.Parse(s.URL); err != nil {
		return nil, fmt.Errorf("bundles: service %q: %w", name, err)
	}
	m := map[string]any{"name": name, "url": s.URL}
	if s.Type != "" {
		m["type"] = s.Type
	}
	if len(s.Headers) > 0 {
		m["headers"] = s.Headers
	}
	if s.ResponseHeaderTimeout > 0 {
		m["response_header_timeout_seconds"] = seconds(s.ResponseHeaderTimeout)
	}
	if s.CACertFile != "" {
		m["tls"] = map[string]any{"ca_cert": s.CACertFile}
	}
	creds := map[string]any{}
	if s.BearerToken != "" || s.BearerTokenPath != "" {
		b := map[string]any{"token": s.BearerToken, "token_path": s.BearerTokenPath}
		if s.BearerScheme != "" {
			b["scheme"] = s.BearerScheme
		}
		creds["bearer"] = b
	}
	if s.ClientCertFile != "" || s.ClientKeyFile != "" {
		creds["client_tls"] = map[string]any{"cert": s.ClientCertFile, "private_key": s.ClientKeyFile}
	}
	if len(creds) > 1 {
		return nil, fmt.Errorf("bundles: service %q: OPA allows one kind of credentials per service (bearer token or client TLS)", name)
	}
	if len(creds) > 0 {
		m["credentials"] = creds
	}
	return json.Marshal(m)
}

// seconds rounds d up to whole seconds, OPA's unit for delays and timeouts.
func seconds(d time.Duration) int64 {
	return int64(math.Ceil(d.Seconds()))
}

// downloadConfig returns p as the configuration of OPA's downloader.
func (p Polling) downloadConfig() (download.Config, error) {
	var c download.Config
	trigger := plugins.TriggerPeriodic
	if p.Manual {
		trigger = plugins.TriggerManual
	}
	c.Trigger = &trigger
	if p.MinDelay > 0 || p.MaxDelay > 0 {
		lo, hi := seconds(p.MinDelay), seconds(p.MaxDelay)
		if hi == 0 {
			hi = max(lo, 120)
		}
		c.Polling.MinDelaySeconds, c.Polling.MaxDelaySeconds = &lo, &hi
	}
	if p.LongPollingTimeout > 0 {
		t := seconds(p.LongPollingTimeout)
		c.Polling.LongPollingTimeoutSeconds = &t
	}
	if err := c.ValidateAndInjectDefaults(); err != nil {
		return c, fmt.Errorf("bundles: polling: %w", err)
	}
	return c, nil
}

// verification returns the OPA verification configuration of a source, or
// nil when it is not signed.
func (cfg *Config) verification(src Source) (*bundle.VerificationConfig, error) {
	if src.Signing == nil {
		return nil, nil
	}
	if len(cfg.Keys) == 0 {
		return nil, fmt.Errorf("bundles: bundle %q requires a signature but no keys are configured", src.Name)
	}
	pub := make(map[string]*bundle.KeyConfig, len(cfg.Keys))
	for id, k := range cfg.Keys {
		alg := k.Algorithm
		if alg == "" {
			alg = "RS256"
		}
		kc, err := keys.NewKeyConfig(k.Key, alg, k.Scope)
		if err != nil {
			return nil, fmt.Errorf("bundles: key %q: %w", id, err)
		}
		// OPA finds out at the first verification; say it at start-up.
		if !strings.HasPrefix(strings.ToUpper(alg), "HS") {
			if block, _ := pem.Decode([]byte(kc.Key)); block == nil {
				return nil, fmt.Errorf("bundles: key %q: not a PEM-encoded public key (or the path of one)", id)
			}
		}
		pub[id] = kc
	}
	vc := bundle.NewVerificationConfig(pub, src.Signing.KeyID, src.Signing.Scope, src.Signing.Exclude)
	if err := vc.ValidateAndInjectDefaults(pub); err != nil {
		return nil, fmt.Errorf("bundles: bundle %q signing: %w", src.Name, err)
	}
	return vc, nil
}

// validate checks the configuration as a whole.
func (cfg *Config) validate() error {
	if cfg.Engine == nil {
		return errors.New("bundles: Config.Engine is required")
	}
	if len(cfg.Bundles) == 0 {
		return errors.New("bundles: no bundles configured")
	}
	seen := map[string]bool{}
	for _, src := range cfg.Bundles {
		switch {
		case src.Name == "":
			return errors.New("bundles: a bundle has no name")
		case seen[src.Name]:
			return fmt.Errorf("bundles: bundle %q is configured twice", src.Name)
		case src.Path != "" && (src.URL != "" || src.Service != ""):
			return fmt.Errorf("bundles: bundle %q has both a path and a URL", src.Name)
		case src.Path == "" && src.URL == "" && src.Service == "":
			return fmt.Errorf("bundles: bundle %q has neither a path nor a URL", src.Name)
		}
		if src.Service != "" {
			if _, ok := cfg.Services[src.Service]; !ok {
				return fmt.Errorf("bundles: bundle %q uses service %q, which is not configured", src.Name, src.Service)
			}
		}
		seen[src.Name] = true
	}
	return nil
}

// remote returns the service configuration and resource path of a remote
// source.
func (cfg *Config) remote(src Source) (svcName string, svc Service, resource string, err error) {
	if src.Service != "" {
		resource = src.URL
		if resource == "" {
			resource = "bundles/" + src.Name
		}
		return src.Service, cfg.Services[src.Service], resource, nil
	}
	u, err := url.Parse(src.URL)
	if err != nil {
		return "", Service{}, "", fmt.Errorf("bundles: bundle %q: %w", src.Name, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", Service{}, "", fmt.Errorf("bundles: bundle %q: URL %q is not an absolute http(s) URL; name a service for OCI or credentials", src.Name, src.URL)
	}
	resource = strings.TrimPrefix(u.EscapedPath(), "/")
	if u.RawQuery != "" {
		resource += "?" + u.RawQuery
	}
	return "bundle:" + src.Name, Service{URL: u.Scheme + "://" + u.Host}, resource, nil
}

// SourceFor returns a Source named name for a command-line argument that is
// either an http(s):// URL of a bundle or the path of a bundle directory or
// .tar.gz file.
func SourceFor(name, pathOrURL string) Source {
	if strings.HasPrefix(pathOrURL, "http://") || strings.HasPrefix(pathOrURL, "https://") {
		return Source{Name: name, URL: pathOrURL}
	}
	return Source{Name: name, Path: pathOrURL}
}
