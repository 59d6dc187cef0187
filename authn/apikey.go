package authn

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
)

// DefaultAPIKeyHeader is the header an [APIKeys] authenticator reads by default.
const DefaultAPIKeyHeader = "X-API-Key"

// hashPrefix marks a key stored as the hex SHA-256 of the real key.
const hashPrefix = "sha256:"

// APIKey is one accepted API key and the identity it stands for.
type APIKey struct {
	// Key is the key itself, or "sha256:" followed by the hex SHA-256 digest
	// of the key, so that the key file need not hold the secret.
	Key string `yaml:"key"`
	// Subject identifies the caller. Required.
	Subject string `yaml:"subject"`
	// Claims are attributes handed to the policy (roles, tenant, ...).
	Claims map[string]any `yaml:"claims"`
}

// APIKeyConfig configures an [APIKeys] authenticator.
type APIKeyConfig struct {
	// Header is the request header carrying the key. Default X-API-Key.
	Header string
	// Keys are the accepted keys; see [LoadAPIKeys] and [ParseAPIKeys].
	Keys []APIKey
}

// APIKeys authenticates requests by a static API key. Presented keys are
// hashed and compared in constant time against every configured key, so
// timing reveals neither whether nor which key matched.
type APIKeys struct {
	header  string
	digests [][sha256.Size]byte
	ids     []Identity
}

// NewAPIKeys checks cfg and returns an APIKeys authenticator.
func NewAPIKeys(cfg APIKeyConfig) (*APIKeys, error) {
	a := &APIKeys{header: cfg.Header}
	if a.header == "" {
		a.header = DefaultAPIKeyHeader
	}
	if len(cfg.Keys) == 0 {
		return nil, errors.New("authn: apikey: no keys configured")
	}
	seen := map[[sha256.Size]byte]bool{}
	for i, k := range cfg.Keys {
		d, err := keyDigest(k.Key)
		if err != nil {
			return nil, fmt.Errorf("authn: apikey: key %d (subject %q): %w", i+1, k.Subject, err)
		}
		if k.Subject == "" {
			return nil, fmt.Errorf("authn: apikey: key %d has no subject", i+1)
		}
		if seen[d] {
			return nil, fmt.Errorf("authn: apikey: key %d (subject %q) duplicates an earlier key", i+1, k.Subject)
		}
		seen[d] = true
		claims, err := claimsJSON(k.Claims)
		if err != nil {
			return nil, fmt.Errorf("authn: apikey: key %d (subject %q) claims: %w", i+1, k.Subject, err)
		}
		a.digests = append(a.digests, d)
		a.ids = append(a.ids, Identity{Subject: k.Subject, Method: MethodAPIKey, Claims: claims})
	}
	return a, nil
}

func keyDigest(k string) ([sha256.Size]byte, error) {
	var d [sha256.Size]byte
	if h, ok := strings.CutPrefix(k, hashPrefix); ok {
		b, err := hex.DecodeString(h)
		if err != nil || len(b) != sha256.Size {
			return d, errors.New(`"sha256:" must be followed by 64 hex digits`)
		}
		copy(d[:], b)
		return d, nil
	}
	if len(k) < 16 {
		return d, errors.New("key is shorter than 16 characters")
	}
	return sha256.Sum256([]byte(k)), nil
}

// Authenticate implements [Authenticator]. A request without the header gets
// ErrNoCredential; an unknown key gets a [CredentialError].
func (a *APIKeys) Authenticate(r *http.Request) (*Identity, error) {
	vals := r.Header.Values(a.header)
	if len(vals) == 0 || (len(vals) == 1 && vals[0] == "") {
		return nil, ErrNoCredential
	}
	if len(vals) > 1 {
		return nil, invalid(MethodAPIKey, "", fmt.Errorf("several %s headers", a.header))
	}
	d := sha256.Sum256([]byte(strings.TrimSpace(vals[0])))
	match := -1
	for i := range a.digests {
		eq := subtle.ConstantTimeCompare(d[:], a.digests[i][:])
		match = subtle.ConstantTimeSelect(eq, i, match)
	}
	if match < 0 {
		return nil, invalid(MethodAPIKey, "", errors.New("unknown API key"))
	}
	id := a.ids[match]
	id.Claims = cloneClaims(id.Claims)
	return &id, nil
}

func cloneClaims(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v // nested values are shared; callers must not mutate them
	}
	return out
}

// MaxAPIKeyFileBytes bounds an API key file (some ten thousand keys): YAML
// parsing time grows with the input, and a key file has no reason to be
// larger.
const MaxAPIKeyFileBytes = 1 << 20

// LoadAPIKeys reads API keys from a YAML file of the form
//
//	keys:
//	  - key: sha256:9f86d08188...   # or the key itself
//	    subject: billing-service
//	    claims: {roles: [billing]}
//
// Errors name the file and, where possible, the line. A file larger than
// MaxAPIKeyFileBytes is refused.
func LoadAPIKeys(path string) ([]APIKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("authn: apikey: %w", err)
	}
	return ParseAPIKeys(path, data)
}

// ParseAPIKeys parses API keys in the YAML form [LoadAPIKeys] reads; name is
// used in error messages (a file name, or the environment variable the text
// came from).
func ParseAPIKeys(name string, data []byte) ([]APIKey, error) {
	if len(data) > MaxAPIKeyFileBytes {
		return nil, fmt.Errorf("authn: apikey: %s: %d bytes, more than the %d an API key file may hold", name, len(data), MaxAPIKeyFileBytes)
	}
	var doc struct {
		Keys []yaml.Node `yaml:"keys"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("authn: apikey: %s: %w", name, err)
	}
	var keys []APIKey
	for _, n := range doc.Keys {
		var k APIKey
		// Decode through a helper struct that rejects unknown fields.
		if err := decodeStrict(&n, &k); err != nil {
			return nil, fmt.Errorf("authn: apikey: %s:%d: %w", name, n.Line, err)
		}
		if k.Subject == "" {
			return nil, fmt.Errorf("authn: apikey: %s:%d: subject is required", name, n.Line)
		}
		if _, err := keyDigest(k.Key); err != nil {
			return nil, fmt.Errorf("authn: apikey: %s:%d: %w", name, n.Line, err)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("authn: apikey: %s: no keys", name)
	}
	return keys, nil
}

func decodeStrict(n *yaml.Node, v any) error {
	if n.Kind != yaml.MappingNode {
		return errors.New("each key must be a mapping with key, subject and claims")
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		switch f := n.Content[i].Value; f {
		case "key", "subject", "claims":
		default:
			return fmt.Errorf("line %d: unknown field %q", n.Content[i].Line, f)
		}
	}
	return n.Decode(v)
}

// APIKeysFromEnv reads API keys from the environment variable name through
// lookup (os.LookupEnv in production), in the same YAML form as
// [LoadAPIKeys]. It returns nil and no error when the variable is unset.
func APIKeysFromEnv(lookup func(string) (string, bool), name string) ([]APIKey, error) {
	v, ok := lookup(name)
	if !ok || strings.TrimSpace(v) == "" {
		return nil, nil
	}
	return ParseAPIKeys("$"+name, []byte(v))
}

// HashAPIKey returns the "sha256:<hex>" form of key for a key file.
func HashAPIKey(key string) string {
	d := sha256.Sum256([]byte(key))
	return hashPrefix + hex.EncodeToString(d[:])
}
