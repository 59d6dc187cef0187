package demo

import "github.com/regoguard/regoguard/authn"

// APIKeys returns the demo's API keys, stored hashed as a real key file
// would keep them, and the plain keys for the demo's instructions. They are
// for the demo only: anyone reading this file knows them.
func APIKeys() ([]authn.APIKey, map[string]string) {
	plain := map[string]string{"reader": "demo-reader-key", "admin": "demo-admin-key"}
	keys := []authn.APIKey{
		{Key: authn.HashAPIKey(plain["reader"]), Subject: "reader@demo", Claims: map[string]any{"groups": []any{"staff"}, "email": "reader@demo.example"}},
		{Key: authn.HashAPIKey(plain["admin"]), Subject: "admin@demo", Claims: map[string]any{"groups": []any{"staff", "admin"}, "email": "admin@demo.example"}},
	}
	return keys, plain
}
