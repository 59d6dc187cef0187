package websession

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzSessionCookie opens arbitrary cookie values: it must never panic, and
// must never open a value into a plaintext that was not sealed with the key.
func FuzzSessionCookie(f *testing.F) {
	key := bytes.Repeat([]byte{7}, MinKeyLen)
	codec, err := NewCodec([][]byte{key}, "session")
	if err != nil {
		f.Fatal(err)
	}
	plain := []byte(`{"sub":"alice","exp":1}`)
	sealed := codec.Seal("regoguard", plain)
	for _, seed := range []string{sealed, sealed[:len(sealed)/2], "", "AAAA", strings.Repeat("A", 200), sealed + "A"} {
		f.Add("regoguard", seed)
	}
	f.Fuzz(func(t *testing.T, name, value string) {
		got, err := codec.Open(name, value)
		if err != nil {
			return
		}
		if !bytes.Equal(got, plain) || name != "regoguard" {
			t.Fatalf("opened %q as %q into %q: a cookie that was never sealed", value, name, got)
		}
	})
}
