package authn

import (
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
)

// A handler that edits the identity of its request (a claim, a list or a
// map within one) must not change the identity another request gets: an
// API key's identity is kept by the authenticator, and it handed out its
// nested claims until Identity.Clone copied them deeply.
func TestIdentityEditsStayInTheirRequest(t *testing.T) {
	keys, err := NewAPIKeys(APIKeyConfig{Keys: []APIKey{{Key: "k-0123456789abcdef", Subject: "bob",
		Claims: map[string]any{"groups": []any{"reader"}, "org": map[string]any{"id": "acme", "teams": []any{"a"}}}}}})
	if err != nil {
		t.Fatal(err)
	}
	authenticate := func() *Identity {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("X-API-Key", "k-0123456789abcdef")
		id, err := keys.Authenticate(r)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	want := map[string]any{"groups": []any{"reader"}, "org": map[string]any{"id": "acme", "teams": []any{"a"}}}
	if got := authenticate().Claims; !reflect.DeepEqual(got, want) {
		t.Fatalf("claims %v, want %v", got, want)
	}
	id := authenticate()
	id.Claims["groups"].([]any)[0] = "admin"
	id.Claims["org"].(map[string]any)["id"] = "evil"
	id.Claims["org"].(map[string]any)["teams"].([]any)[0] = "root"
	id.Claims["new"] = true
	if got := authenticate().Claims; !reflect.DeepEqual(got, want) {
		t.Fatalf("a handler's edits reached the next request: %v, want %v", got, want)
	}
}

func TestIdentityClone(t *testing.T) {
	if (*Identity)(nil).Clone() != nil {
		t.Error("Clone of nil is not nil")
	}
	id := &Identity{Subject: "s", Method: MethodOIDC, Token: "t", Claims: map[string]any{"l": []any{map[string]any{"k": "v"}}}}
	c := id.Clone()
	if !reflect.DeepEqual(c, id) {
		t.Fatalf("clone %v differs from %v", c, id)
	}
	c.Claims["l"].([]any)[0].(map[string]any)["k"] = "changed"
	if id.Claims["l"].([]any)[0].(map[string]any)["k"] != "v" {
		t.Error("a change to the clone reached the original")
	}
}
