package authn

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const keyFile = `keys:
  - key: plain-key-0123456789
    subject: alice
    claims:
      roles: [admin]
      level: 3
  - key: %HASH%
    subject: billing
`

func writeKeys(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "keys.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestAPIKeys(t *testing.T) {
	path := writeKeys(t, strings.Replace(keyFile, "%HASH%", HashAPIKey("hashed-key-abcdefghijkl"), 1))
	keys, err := LoadAPIKeys(path)
	if err != nil {
		t.Fatal(err)
	}
	a, err := NewAPIKeys(APIKeyConfig{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	req := func(header, key string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		if key != "" {
			r.Header.Set(header, key)
		}
		return r
	}
	id, err := a.Authenticate(req("X-API-Key", "plain-key-0123456789"))
	if err != nil || id.Subject != "alice" || id.Method != MethodAPIKey {
		t.Fatalf("plain key: %v %v", id, err)
	}
	if roles, _ := id.Claims["roles"].([]any); len(roles) != 1 || roles[0] != "admin" {
		t.Fatalf("claims %#v", id.Claims)
	}
	id.Claims["roles"] = "mutated" // must not leak into the next identity
	id, err = a.Authenticate(req("X-API-Key", "hashed-key-abcdefghijkl"))
	if err != nil || id.Subject != "billing" {
		t.Fatalf("hashed key: %v %v", id, err)
	}
	id, err = a.Authenticate(req("X-API-Key", "plain-key-0123456789"))
	if err != nil || id.Claims["roles"] == "mutated" {
		t.Fatalf("claims shared between requests: %v %v", id, err)
	}

	// The stored hash itself is not a key.
	_, err = a.Authenticate(req("X-API-Key", HashAPIKey("hashed-key-abcdefghijkl")))
	mustRefuse(t, nil, err)
	for _, k := range []string{"wrong", "plain-key-012345678", "plain-key-0123456789x"} {
		_, err = a.Authenticate(req("X-API-Key", k))
		mustRefuse(t, nil, err)
		var ce *CredentialError
		if !errors.As(err, &ce) || strings.Contains(err.Error(), k) {
			t.Fatalf("error %v", err)
		}
	}
	_, err = a.Authenticate(req("X-API-Key", ""))
	mustNoCredential(t, err)
	_, err = a.Authenticate(req("X-Other", "plain-key-0123456789"))
	mustNoCredential(t, err)
	r := req("X-API-Key", "plain-key-0123456789")
	r.Header.Add("X-API-Key", "wrong")
	_, err = a.Authenticate(r)
	mustRefuse(t, nil, err)

	custom, _ := NewAPIKeys(APIKeyConfig{Header: "X-Service-Key", Keys: keys})
	if _, err := custom.Authenticate(req("X-Service-Key", "plain-key-0123456789")); err != nil {
		t.Fatal(err)
	}
	_, err = custom.Authenticate(req("X-API-Key", "plain-key-0123456789"))
	mustNoCredential(t, err)
}

func TestAPIKeyFileErrors(t *testing.T) {
	cases := map[string]struct{ text, want string }{
		"syntax":        {"keys:\n  - key: [unclosed\n", ": did not find expected"},
		"no subject":    {"keys:\n  - key: plain-key-0123456789\n  - key: other-key-0123456789\n    subject: x\n", ":2: subject is required"},
		"bad hash":      {"keys:\n  - subject: a\n    key: sha256:zz\n", ":2: \"sha256:\" must be followed"},
		"short":         {"keys:\n  - subject: a\n    key: short\n", ":2: key is shorter"},
		"unknown field": {"keys:\n  - subject: a\n    key: plain-key-0123456789\n    role: x\n", ":4: unknown field \"role\""},
		"wrong type":    {"keys:\n  - subject: a\n    key: plain-key-0123456789\n    claims: [x]\n", ":4: cannot unmarshal"},
		"empty":         {"keys: []\n", "no keys"},
		"top level":     {"kyes: []\n", ":1: unknown field \"kyes\""},
		"too large":     {"keys:\n" + strings.Repeat("# padding\n", MaxAPIKeyFileBytes/10+1), "more than the 1048576"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			p := writeKeys(t, c.text)
			_, err := LoadAPIKeys(p)
			if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want file name and %q", err, c.want)
			}
			// One line number, after the file name: never "keys.yaml:2: line 3:".
			if strings.Contains(err.Error(), ": line ") {
				t.Errorf("error %v names a second line", err)
			}
		})
	}
	if _, err := LoadAPIKeys(filepath.Join(t.TempDir(), "missing.yaml")); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Fatalf("missing file: %v", err)
	}
	if _, err := NewAPIKeys(APIKeyConfig{Keys: []APIKey{{Key: "plain-key-0123456789", Subject: "a"}, {Key: HashAPIKey("plain-key-0123456789"), Subject: "b"}}}); err == nil {
		t.Fatal("duplicate key accepted")
	}
}

func TestAPIKeysFromEnv(t *testing.T) {
	env := map[string]string{"API_KEYS": "keys:\n  - {key: env-key-0123456789ab, subject: ci}\n", "BAD": "keys: [1]"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	keys, err := APIKeysFromEnv(lookup, "API_KEYS")
	if err != nil || len(keys) != 1 || keys[0].Subject != "ci" {
		t.Fatalf("%v %v", keys, err)
	}
	if keys, err := APIKeysFromEnv(lookup, "UNSET"); keys != nil || err != nil {
		t.Fatalf("unset: %v %v", keys, err)
	}
	if _, err := APIKeysFromEnv(lookup, "BAD"); err == nil || !strings.Contains(err.Error(), "$BAD") {
		t.Fatalf("bad: %v", err)
	}
}
