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
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"go.yaml.in/yaml/v3"

	"github.com/regoguard/regoguard/internal/headers"
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
	names   headers.Set
	digests [][sha256.Size]byte
	ids     []Identity
}

// NewAPIKeys checks cfg and returns an APIKeys authenticator.
func NewAPIKeys(cfg APIKeyConfig) (*APIKeys, error) {
	a := &APIKeys{header: cfg.Header}
	if a.header == "" {
		a.header = DefaultAPIKeyHeader
	}
	a.names = headers.NewSet(a.header)
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

// blankDigests are the SHA-256 digests of keys that are empty once
// trimmed, as `printf %s "$KEY" | sha256sum` (or `echo "$KEY" | ...`) prints
// them when $KEY is unset: such a digest would let a blank header in.
var blankDigests = func() map[[sha256.Size]byte]string {
	m := map[[sha256.Size]byte]string{}
	for _, k := range []string{"", "\n", "\r\n", " ", "\t", " \n"} {
		m[sha256.Sum256([]byte(k))] = k
	}
	return m
}()

// trimKey trims a key the same way on both sides, in the file and in the
// request: every Unicode blank (unicode.IsSpace: U+00A0, U+3000, ...), and
// the zero-width characters that copy and paste bring along.
func trimKey(k string) string {
	return strings.TrimFunc(k, func(r rune) bool { return unicode.IsSpace(r) || isBlank(r) })
}

func keyDigest(k string) ([sha256.Size]byte, error) {
	var d [sha256.Size]byte
	if h, ok := strings.CutPrefix(strings.TrimSpace(k), hashPrefix); ok {
		b, err := hex.DecodeString(h)
		if err != nil || len(b) != sha256.Size {
			return d, errors.New(`"sha256:" must be followed by 64 hex digits`)
		}
		copy(d[:], b)
		if blank, ok := blankDigests[d]; ok {
			return d, fmt.Errorf("the digest is the SHA-256 of %q, an empty key (was the key's variable unset when it was hashed?)", blank)
		}
		return d, nil
	}
	k = trimKey(k)
	if k == "" {
		return d, errors.New("the key is empty")
	}
	if len(k) < 16 {
		return d, errors.New("key is shorter than 16 characters")
	}
	return sha256.Sum256([]byte(k)), nil
}

// Authenticate implements [Authenticator]. A request without the header, or
// whose key is empty once trimmed of blanks (U+00A0 and U+3000 included),
// gets ErrNoCredential; several headers (in any spelling, "X_API_Key"
// included) or an unknown key get a [CredentialError].
func (a *APIKeys) Authenticate(r *http.Request) (*Identity, error) {
	vals := r.Header.Values(a.header)
	if a.names.Repeated(r.Header) != "" {
		return nil, invalid(MethodAPIKey, "", fmt.Errorf("several %s headers", a.header))
	}
	if len(vals) == 0 {
		return nil, ErrNoCredential
	}
	key := trimKey(vals[0])
	if key == "" {
		return nil, ErrNoCredential
	}
	d := sha256.Sum256([]byte(key))
	match := -1
	for i := range a.digests {
		eq := subtle.ConstantTimeCompare(d[:], a.digests[i][:])
		match = subtle.ConstantTimeSelect(eq, i, match)
	}
	if match < 0 {
		return nil, invalid(MethodAPIKey, "", errors.New("unknown API key"))
	}
	id := a.ids[match]
	return id.Clone(), nil // the request's own: a handler may change it
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
		if line, msg, ok := yamlLine(err); ok {
			return nil, fmt.Errorf("authn: apikey: %s:%d: %s", name, line, msg)
		}
		return nil, fmt.Errorf("authn: apikey: %s: %w", name, err)
	}
	var keys []APIKey
	for _, n := range doc.Keys {
		var k APIKey
		// Decode through a helper struct that rejects unknown fields.
		if line, err := decodeStrict(&n, &k); err != nil {
			return nil, fmt.Errorf("authn: apikey: %s:%d: %w", name, line, err)
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

func decodeStrict(n *yaml.Node, v any) (line int, err error) {
	if n.Kind != yaml.MappingNode {
		return n.Line, errors.New("each key must be a mapping with key, subject and claims")
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		switch f := n.Content[i].Value; f {
		case "key", "subject", "claims":
		default:
			return n.Content[i].Line, fmt.Errorf("unknown field %q", f)
		}
	}
	if err := n.Decode(v); err != nil {
		if line, msg, ok := yamlLine(err); ok {
			return line, errors.New(msg)
		}
		return n.Line, err
	}
	return n.Line, nil
}

// yamlLine splits one of yaml.v3's errors into the line it names and the
// rest of its message, so that the error is reported as file:line once
// (never "keys.yaml:2: line 3: ..."). Of several type errors, the first
// names the line.
func yamlLine(err error) (line int, msg string, ok bool) {
	msgs := []string{strings.TrimPrefix(err.Error(), "yaml: ")}
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msgs = slices.Clone(te.Errors)
	}
	m := yamlLinePrefix.FindStringSubmatch(msgs[0])
	if m == nil {
		return 0, "", false
	}
	line, _ = strconv.Atoi(m[1])
	msgs[0] = msgs[0][len(m[0]):]
	for i, msg := range msgs {
		// Go's type names mean nothing to the file's author.
		msgs[i] = yamlNotFound.ReplaceAllString(msg, `unknown field "$1"`)
	}
	return line, strings.Join(msgs, "; "), true
}

// yamlLinePrefix is the "line N: " yaml.v3 starts its messages with.
var yamlLinePrefix = regexp.MustCompile(`^line (\d+): `)

// yamlNotFound is yaml.v3's message for an unknown field.
var yamlNotFound = regexp.MustCompile(`field (\S+) not found in type .*$`)

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

// HashAPIKey returns the "sha256:<hex>" form of key for a key file, trimmed
// as keys are trimmed when presented.
func HashAPIKey(key string) string {
	d := sha256.Sum256([]byte(trimKey(key)))
	return hashPrefix + hex.EncodeToString(d[:])
}
