package authn

import (
	"strings"
	"testing"
)

// FuzzParseAPIKeys parses arbitrary key files: errors, never a panic, and
// every key accepted has a subject and a usable key.
func FuzzParseAPIKeys(f *testing.F) {
	for _, seed := range []string{
		"keys:\n  - key: abcdefghijklmnop0123\n    subject: ci\n    claims: {groups: [a]}\n",
		"keys:\n  - key: sha256:" + strings.Repeat("ab", 32) + "\n    subject: x\n",
		"keys: []\n", "keys:\n  - {}\n", "- key: x\n", "keys:\n  - key: short\n    subject: s\n", ":", "",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		keys, err := ParseAPIKeys("keys.yaml", data)
		if err != nil {
			return
		}
		if _, err := NewAPIKeys(APIKeyConfig{Keys: keys}); err != nil {
			t.Fatalf("ParseAPIKeys accepted keys that NewAPIKeys refuses: %v", err)
		}
		for _, k := range keys {
			if k.Subject == "" {
				t.Fatalf("a key without a subject was accepted: %+v", k)
			}
		}
	})
}
