package policy

import (
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// virtualCache is topdown.VirtualCache, the memo of rule values within one
// evaluation, kept flat and reused across evaluations. OPA's own builds a
// trie with a hash map per reference segment: some twenty allocations per
// evaluation of a small policy, a third of all of them, for the handful of
// references a decision caches. Here the references are copied into one
// slice of terms and found by a scan, which a map index replaces once a
// frame holds many.
type virtualCache struct {
	frames []vcFrame
}

// vcFrame is one scope of the cache: `with` pushes one and pops it.
type vcFrame struct {
	terms   []*ast.Term // the cached references, one after the other
	entries []vcEntry
	index   map[int][]int // reference hash -> entries; built past indexFrom entries
}

type vcEntry struct {
	start, n  int // the reference is terms[start : start+n]
	value     *ast.Term
	undefined bool
}

// indexFrom is where a linear scan stops paying: past it a frame is indexed
// by reference hash.
const indexFrom = 16

// reset empties c for the next evaluation. The terms it held are dropped,
// so that a pooled cache keeps no policy value alive.
func (c *virtualCache) reset() {
	for len(c.frames) > 0 {
		c.Pop()
	}
}

// Push implements topdown.VirtualCache.
func (c *virtualCache) Push() {
	if len(c.frames) < cap(c.frames) {
		c.frames = c.frames[:len(c.frames)+1]
		return
	}
	c.frames = append(c.frames, vcFrame{})
}

// Pop implements topdown.VirtualCache.
func (c *virtualCache) Pop() {
	f := &c.frames[len(c.frames)-1]
	clear(f.terms)
	clear(f.entries)
	f.terms, f.entries, f.index = f.terms[:0], f.entries[:0], nil
	c.frames = c.frames[:len(c.frames)-1]
}

func (c *virtualCache) top() *vcFrame { return &c.frames[len(c.frames)-1] }

// Get implements topdown.VirtualCache: (value, false) when cached, (nil,
// true) when cached as undefined, (nil, false) when not cached.
func (c *virtualCache) Get(ref ast.Ref) (*ast.Term, bool) {
	f := c.top()
	if i := f.find(ref); i >= 0 {
		e := f.entries[i]
		if e.undefined {
			return nil, true
		}
		return e.value, false
	}
	return nil, false
}

// Put implements topdown.VirtualCache; a nil value records an undefined
// result.
func (c *virtualCache) Put(ref ast.Ref, value *ast.Term) {
	f := c.top()
	i := f.find(ref)
	if i < 0 {
		i = f.add(ref)
	}
	if value != nil {
		f.entries[i].value = value
	} else {
		f.entries[i].undefined = true
	}
}

// Keys implements topdown.VirtualCache: the references with a value.
func (c *virtualCache) Keys() []ast.Ref {
	f := c.top()
	var keys []ast.Ref
	for _, e := range f.entries {
		if e.value != nil {
			keys = append(keys, f.key(e).Copy())
		}
	}
	return keys
}

func (f *vcFrame) find(ref ast.Ref) int {
	if f.index != nil {
		for _, i := range f.index[ref.Hash()] {
			if f.equal(i, ref) {
				return i
			}
		}
		return -1
	}
	for i := range f.entries {
		if f.equal(i, ref) {
			return i
		}
	}
	return -1
}

func (f *vcFrame) equal(i int, ref ast.Ref) bool {
	e := f.entries[i]
	if e.n != len(ref) {
		return false
	}
	for j, t := range f.key(e) {
		if !t.Equal(ref[j]) {
			return false
		}
	}
	return true
}

// add copies ref's terms (evaluation reuses the slice it passes) and
// returns the new entry's position.
func (f *vcFrame) add(ref ast.Ref) int {
	f.entries = append(f.entries, vcEntry{start: len(f.terms), n: len(ref)})
	f.terms = append(f.terms, ref...)
	i := len(f.entries) - 1
	switch {
	case f.index != nil:
		h := ref.Hash()
		f.index[h] = append(f.index[h], i)
	case len(f.entries) > indexFrom:
		f.index = make(map[int][]int, 2*len(f.entries))
		for k, e := range f.entries {
			h := f.key(e).Hash()
			f.index[h] = append(f.index[h], k)
		}
	}
	return i
}

// key is the reference e was put under.
func (f *vcFrame) key(e vcEntry) ast.Ref { return f.terms[e.start : e.start+e.n] }

var _ topdown.VirtualCache = (*virtualCache)(nil)
