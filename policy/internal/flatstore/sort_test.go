package flatstore

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/open-policy-agent/opa/v1/util"
)

// TestLargeObjects: objects large enough for the prefix sort (keys sharing
// long prefixes, keys that are prefixes of others, NUL bytes, duplicates)
// read back as encoding/json decodes them, the last duplicate winning, and
// are found by key.
func TestLargeObjects(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for round := range 20 {
		var text []byte
		text = append(text, '{')
		for i := range 200 + r.IntN(500) {
			if i > 0 {
				text = append(text, ',')
			}
			var k string
			switch r.IntN(5) {
			case 0:
				k = fmt.Sprintf("doc%d", r.IntN(300))
			case 1:
				k = fmt.Sprintf("commonprefix-%d", r.IntN(300))
			case 2:
				k = fmt.Sprintf("doc%d\x00x", r.IntN(30))
			case 3:
				k = string([]byte{byte('a' + r.IntN(3))})[:r.IntN(2)]
			default:
				k = fmt.Sprintf("%x", r.Uint64())
			}
			kb, _ := json.Marshal(k)
			text = fmt.Appendf(append(text, kb...), ":%d", i)
		}
		text = append(text, '}')
		b := NewBuilder()
		v, err := b.ParseJSON(text)
		if err != nil {
			t.Fatal(err)
		}
		d, err := b.Doc(v)
		if err != nil {
			t.Fatal(err)
		}
		want := util.MustUnmarshalJSON(text).(map[string]any)
		if got := d.Root(); !reflect.DeepEqual(got, want) {
			t.Fatalf("round %d: objects differ", round)
		}
		for k, w := range want {
			got, err := d.Go([]string{k})
			if err != nil || got != w {
				t.Fatalf("round %d: key %q: %v %v, want %v", round, k, got, err, w)
			}
		}
	}
}
