package policy_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/regoguard/regoguard/policy"
)

// FuzzParseResult feeds arbitrary JSON decision documents (as a remote OPA
// might answer) to ParseResult: it must never panic, and must never allow
// unless the document is true or an object whose allow is true.
func FuzzParseResult(f *testing.F) {
	for _, seed := range []string{
		`true`, `false`, `null`, `{"allow": true}`, `{"allow": "true"}`, `{"allow": true, "status": 403.5}`,
		`{"allow": false, "status": 429, "reason": "slow down", "headers": {"Retry-After": "1"}}`,
		`{"allow": true, "headers": {"X": 1}}`, `[true]`, `"allow"`, `1`, `{"status": 99999999999999999999}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		dec := json.NewDecoder(bytes.NewReader(doc))
		dec.UseNumber()
		var v any
		if dec.Decode(&v) != nil {
			return
		}
		d, err := policy.ParseResult(v)
		if err != nil {
			if d.Allow {
				t.Fatalf("%s: an error with allow", doc)
			}
			return
		}
		want := v == true
		if obj, ok := v.(map[string]any); ok {
			want = obj["allow"] == true
		}
		if d.Allow != want {
			t.Fatalf("%s: allow %v, want %v", doc, d.Allow, want)
		}
		if d.Status != 0 && (d.Status < 100 || d.Status > 599) {
			t.Fatalf("%s: status %d", doc, d.Status)
		}
	})
}
