package flatstore

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"runtime"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/util"
)

// Builder builds Docs. Values added to it (ParseJSON, FromGo) are refs into
// its buffers that Object and Merge combine; Doc finishes one. A Builder is
// not safe for concurrent use.
type Builder struct {
	buf   []byte
	strs  []byte
	offs  []uint32
	table []uint32 // open addressing: 0 empty, else string id + 1
	seed  maphash.Seed
	pairs []pair // scratch: the entries of the objects being parsed
	elems []ref  // scratch: the elements of the arrays being parsed
	count int    // values since the last yield
	err   error
	// Yield, when set, lets other goroutines run every few thousand
	// values, so that building a large document in the background gives
	// way to the requests being served.
	Yield bool
}

type pair struct {
	key uint32
	val ref
}

// NewBuilder returns an empty Builder.
func NewBuilder() *Builder {
	return &Builder{offs: []uint32{0}, table: make([]uint32, 1024), seed: maphash.MakeSeed()}
}

func (b *Builder) tick() {
	b.count++
	if b.count&4095 == 0 && b.Yield {
		runtime.Gosched()
	}
}

// intern returns the id of s, adding it if new.
func (b *Builder) intern(s []byte) uint32 {
	mask := uint64(len(b.table) - 1)
	for i := maphash.Bytes(b.seed, s) & mask; ; i = (i + 1) & mask {
		e := b.table[i]
		if e == 0 {
			id := uint32(len(b.offs) - 1)
			if id >= maxStrings || uint64(len(b.strs))+uint64(len(s)) > 1<<32-1 {
				b.err = errTooLarge
				return 0
			}
			b.strs = append(b.strs, s...)
			b.offs = append(b.offs, uint32(len(b.strs)))
			b.table[i] = id + 1
			if 2*int(id+1) > len(b.table) {
				b.grow()
			}
			return id
		}
		if bytes.Equal(b.bytesOf(e-1), s) {
			return e - 1
		}
	}
}

func (b *Builder) internString(s string) uint32 {
	return b.intern(unsafeBytes(s))
}

func (b *Builder) bytesOf(id uint32) []byte { return b.strs[b.offs[id]:b.offs[id+1]] }

func (b *Builder) grow() {
	table := make([]uint32, 2*len(b.table))
	mask := uint64(len(table) - 1)
	for id := range uint32(len(b.offs) - 1) {
		i := maphash.Bytes(b.seed, b.bytesOf(id)) & mask
		for table[i] != 0 {
			i = (i + 1) & mask
		}
		table[i] = id + 1
	}
	b.table = table
}

func (b *Builder) less(x, y uint32) int {
	return bytes.Compare(b.bytesOf(x), b.bytesOf(y))
}

// object writes an object of the entries (in any order; of equal keys the
// last wins, as in JSON decoding) and returns its ref.
func (b *Builder) object(entries []pair) ref {
	slices.SortStableFunc(entries, func(x, y pair) int { return b.less(x.key, y.key) })
	// Keep the last of each run of equal keys.
	out := entries[:0]
	for i, e := range entries {
		if i+1 < len(entries) && entries[i+1].key == e.key {
			continue
		}
		out = append(out, e)
	}
	off := len(b.buf)
	if off > maxOffset {
		b.err = errTooLarge
		return 0
	}
	b.buf = append(b.buf, tagObject)
	b.buf = binary.AppendUvarint(b.buf, uint64(len(out)))
	for _, e := range out {
		b.buf = binary.LittleEndian.AppendUint32(b.buf, e.key)
	}
	for _, e := range out {
		b.buf = binary.LittleEndian.AppendUint32(b.buf, uint32(e.val))
	}
	return ref(off)
}

func (b *Builder) array(elems []ref) ref {
	off := len(b.buf)
	if off > maxOffset {
		b.err = errTooLarge
		return 0
	}
	b.buf = append(b.buf, tagArray)
	b.buf = binary.AppendUvarint(b.buf, uint64(len(elems)))
	for _, e := range elems {
		b.buf = binary.LittleEndian.AppendUint32(b.buf, uint32(e))
	}
	return ref(off)
}

// view is the Doc the builder holds so far, to read back its values.
func (b *Builder) view(root ref) *Doc {
	return &Doc{buf: b.buf, strs: b.strs, offs: b.offs, root: root}
}

// Value is a value added to a Builder.
type Value struct{ r ref }

// Doc finishes the document whose root is v, which must be an object. The
// Builder must not be used afterwards.
func (b *Builder) Doc(v Value) (*Doc, error) {
	if b.err != nil {
		return nil, b.err
	}
	if !b.view(v.r).isObject(v.r) {
		return nil, errors.New("data document is not an object")
	}
	d := &Doc{buf: fit(b.buf), strs: fit(b.strs), offs: fit(b.offs), root: v.r}
	*b = Builder{}
	return d, nil
}

// fit returns s, copied to its length when more than a quarter of its
// capacity is unused (the slack of a grown buffer would otherwise stay for
// the document's life).
func fit[T any](s []T) []T {
	if cap(s)-len(s) > len(s)/4+64 {
		return slices.Clone(s)
	}
	return slices.Clip(s)
}

// reserve grows the buffers for about n more bytes of JSON, so that a large
// document is not copied again and again as its buffers grow. Memory
// reserved and never written is not resident.
func (b *Builder) reserve(n int) {
	if n < 1<<20 {
		return
	}
	b.buf = slices.Grow(b.buf, n*5/8)
	b.strs = slices.Grow(b.strs, n/4)
	b.offs = slices.Grow(b.offs, n/64)
	b.pairs = slices.Grow(b.pairs, n/64)
}

// Empty returns an empty object.
func (b *Builder) Empty() Value { return Value{b.object(nil)} }

// Under returns v placed under the keys of path: {"a": {"b": v}} for a, b.
func (b *Builder) Under(path []string, v Value) Value {
	r := v.r
	for i := len(path) - 1; i >= 0; i-- {
		r = b.object([]pair{{b.internString(path[i]), r}})
	}
	return Value{r}
}

// ConflictError reports two documents that define the same path
// differently.
type ConflictError struct{ Path []string }

func (e *ConflictError) Error() string {
	return "merge error: conflicting documents at data." + strings.Join(e.Path, ".")
}

// Merge merges two objects, recursively, as OPA's loader merges data files:
// a key present in both must hold an object in both.
func (b *Builder) Merge(x, y Value) (Value, error) {
	r, err := b.merge(x.r, y.r, nil)
	return Value{r}, err
}

func (b *Builder) merge(x, y ref, path []string) (ref, error) {
	d := b.view(0)
	if !d.isObject(x) || !d.isObject(y) {
		cp := make([]string, len(path))
		for i, k := range path {
			cp[i] = strings.Clone(k)
		}
		return 0, &ConflictError{Path: cp}
	}
	_, nx, ax := d.container(x)
	_, ny, ay := d.container(y)
	entries := make([]pair, 0, nx+ny)
	for i := range nx {
		entries = append(entries, pair{d.objectKey(ax, i), d.objectVal(ax, nx, i)})
	}
	for i := range ny {
		k, v := d.objectKey(ay, i), d.objectVal(ay, ny, i)
		if j, ok := d.objectFind(ax, nx, d.str(k)); ok {
			m, err := b.merge(entries[j].val, v, append(path, d.str(k)))
			if err != nil {
				return 0, err
			}
			d = b.view(0) // merge may have grown the buffers
			entries[j].val = m
			continue
		}
		entries = append(entries, pair{k, v})
	}
	return b.object(entries), nil
}

// FromGo adds a value made of what JSON decoding with UseNumber produces
// (map[string]any, []any, string, json.Number, bool, nil); any other Go
// value is converted through its JSON form first, as OPA's store does.
func (b *Builder) FromGo(v any) (Value, error) {
	if !jsonShaped(v, 0) {
		if err := util.RoundTripFast(&v); err != nil {
			return Value{}, err
		}
	}
	r, err := b.fromGo(v, 0)
	if err == nil {
		err = b.err
	}
	return Value{r}, err
}

func jsonShaped(v any, depth int) bool {
	if depth > MaxDepth {
		return true // fromGo reports it
	}
	switch x := v.(type) {
	case nil, bool, string, json.Number:
		return true
	case map[string]any:
		for _, e := range x {
			if !jsonShaped(e, depth+1) {
				return false
			}
		}
		return true
	case []any:
		for _, e := range x {
			if !jsonShaped(e, depth+1) {
				return false
			}
		}
		return true
	}
	return false
}

func (b *Builder) fromGo(v any, depth int) (ref, error) {
	if depth > MaxDepth {
		return 0, ErrDepth
	}
	b.tick()
	switch x := v.(type) {
	case nil:
		return scalar(kNull, 0), nil
	case bool:
		if x {
			return scalar(kTrue, 0), nil
		}
		return scalar(kFalse, 0), nil
	case string:
		return scalar(kString, b.internString(x)), nil
	case json.Number:
		return scalar(kNumber, b.internString(string(x))), nil
	case map[string]any:
		entries := make([]pair, 0, len(x))
		for _, k := range sortedKeys(x) {
			r, err := b.fromGo(x[k], depth+1)
			if err != nil {
				return 0, err
			}
			entries = append(entries, pair{b.internString(k), r})
		}
		return b.object(entries), nil
	case []any:
		elems := make([]ref, len(x))
		for i, e := range x {
			r, err := b.fromGo(e, depth+1)
			if err != nil {
				return 0, err
			}
			elems[i] = r
		}
		return b.array(elems), nil
	}
	return 0, fmt.Errorf("unexpected %T in data", v)
}

// IsObject reports whether v is an object.
func (b *Builder) IsObject(v Value) bool { return b.view(v.r).isObject(v.r) }
