package authn

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzSessionCookie opens arbitrary cookie values: it must never panic, and
// must never open a value into a plaintext that was not sealed with the key.
func FuzzSessionCookie(f *testing.F) {
	key := bytes.Repeat([]byte{7}, MinCookieKeyLen)
	codec, err := newCookieCodec([][]byte{key}, "session")
	if err != nil {
		f.Fatal(err)
	}
	plain := []byte(`{"sub":"alice","exp":1}`)
	sealed := codec.seal("regoguard", plain)
	for _, seed := range []string{sealed, sealed[:len(sealed)/2], "", "AAAA", strings.Repeat("A", 200), sealed + "A"} {
		f.Add("regoguard", seed)
	}
	f.Fuzz(func(t *testing.T, name, value string) {
		got, err := codec.open(name, value)
		if err != nil {
			return
		}
		if !bytes.Equal(got, plain) || name != "regoguard" {
			t.Fatalf("opened %q as %q into %q: a cookie that was never sealed", value, name, got)
		}
	})
}

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
