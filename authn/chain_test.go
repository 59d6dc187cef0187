package authn

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestChainInvalidDoesNotFallThrough(t *testing.T) {
	keys, _ := NewAPIKeys(APIKeyConfig{Keys: []APIKey{{Key: "good-key-0123456789", Subject: "svc"}}})
	proxy, _ := NewProxyHeaders(ProxyConfig{TrustedCIDRs: []string{"127.0.0.0/8"}})
	var logs bytes.Buffer
	chain := Chain{keys, proxy, None(slog.New(slog.NewTextHandler(&logs, nil)))}
	if !strings.Contains(logs.String(), "WARN") || !strings.Contains(logs.String(), "DISABLED") {
		t.Fatalf("None did not warn: %q", logs.String())
	}

	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = "127.0.0.1:1"
	r.Header.Set("X-API-Key", "bad-key-0123456789")
	r.Header.Set("X-Forwarded-User", "admin")
	id, err := chain.Authenticate(r)
	mustRefuse(t, id, err)

	r.Header.Set("X-API-Key", "good-key-0123456789")
	if id, err := chain.Authenticate(r); err != nil || id.Subject != "svc" {
		t.Fatalf("%v %v", id, err)
	}
	r.Header.Del("X-API-Key")
	if id, err := chain.Authenticate(r); err != nil || id.Method != MethodHeader || id.Subject != "admin" {
		t.Fatalf("%v %v", id, err)
	}
	r.RemoteAddr = "192.0.2.1:1"
	id, err = chain.Authenticate(r)
	if err != nil || id.Method != MethodNone || id.Subject != "" {
		t.Fatalf("anonymous: %v %v", id, err)
	}

	_, err = Chain{keys}.Authenticate(httptest.NewRequest(http.MethodGet, "/", nil))
	mustNoCredential(t, err)
	_, err = Chain{AuthenticatorFunc(func(*http.Request) (*Identity, error) { return nil, nil })}.Authenticate(r)
	if err == nil || errors.Is(err, ErrNoCredential) {
		t.Fatalf("nil identity accepted: %v", err)
	}
}
