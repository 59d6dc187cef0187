package policy

import (
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

func TestVirtualCacheFramesAndIndex(t *testing.T) {
	c := &virtualCache{}
	c.Push()
	ref := func(i int) ast.Ref { return ast.MustParseRef("data.a.b").Append(ast.IntNumberTerm(i)) }
	for i := range 3 * indexFrom {
		if i%5 == 0 {
			c.Put(ref(i), nil)
		} else {
			c.Put(ref(i), ast.IntNumberTerm(i*10))
		}
	}
	if c.top().index == nil {
		t.Fatal("a frame past indexFrom entries is not indexed")
	}
	check := func(i int) {
		t.Helper()
		v, undefined := c.Get(ref(i))
		switch {
		case i%5 == 0 && (v != nil || !undefined):
			t.Errorf("ref %d: %v, %v; want recorded undefined", i, v, undefined)
		case i%5 != 0 && (v == nil || !v.Equal(ast.IntNumberTerm(i*10)) || undefined):
			t.Errorf("ref %d: %v, %v; want %d", i, v, undefined, i*10)
		}
	}
	for i := range 3 * indexFrom {
		check(i)
	}
	if v, undefined := c.Get(ref(1000)); v != nil || undefined {
		t.Errorf("uncached ref: %v, %v", v, undefined)
	}
	// A `with` frame starts empty and leaves the outer one as it was.
	c.Push()
	if v, _ := c.Get(ref(1)); v != nil {
		t.Errorf("new frame sees the outer frame's %v", v)
	}
	c.Put(ref(1), ast.StringTerm("inner"))
	c.Pop()
	check(1)
	if got := len(c.Keys()); got != 3*indexFrom-3*indexFrom/5-1 {
		t.Errorf("%d keys with a value", got)
	}
	// The slice a caller passes may change after Put: the key must not.
	r := ref(2000)
	c.Put(r, ast.StringTerm("new"))
	r[len(r)-1] = ast.IntNumberTerm(2001)
	if v, _ := c.Get(ref(2000)); v == nil || !v.Equal(ast.StringTerm("new")) {
		t.Errorf("the key changed with the caller's slice: %v", v)
	}
	if v, _ := c.Get(ref(2001)); v != nil {
		t.Errorf("a key never put has %v", v)
	}
}
