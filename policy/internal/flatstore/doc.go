// Package flatstore holds JSON data documents in one flat, immutable,
// pointer-free encoding (strings interned once, objects as sorted key tables
// with offsets) and implements OPA's storage.Store on it: a read converts to
// AST values only the part of the document it reaches, so that a lookup such
// as data.acl.documents[input.id] costs the same on ten documents as on ten
// million, and the garbage collector never walks the data.
package flatstore

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"unsafe"

	"github.com/open-policy-agent/opa/v1/ast"
)

// ref names one value of a document. With the high bit set it is a scalar
// held in the ref itself (its kind in bits 28-30, a string id below);
// otherwise it is the offset in Doc.buf of an object or an array.
type ref uint32

const (
	inline      ref = 1 << 31
	kindShift       = 28
	kindMask    ref = 7 << kindShift
	payloadMask ref = 1<<kindShift - 1
	maxOffset       = 1<<31 - 1
	maxStrings      = 1 << kindShift
)

// Kinds of inline values.
const (
	kNull ref = iota
	kFalse
	kTrue
	kString
	kNumber
)

// Tags of containers in buf.
const (
	tagObject = 'o'
	tagArray  = 'a'
)

// MaxDepth is how deeply a document may nest.
const MaxDepth = 1000

// ErrDepth reports a document nested deeper than MaxDepth.
var ErrDepth = fmt.Errorf("data nested deeper than %d levels (does it hold a cycle?)", MaxDepth)

// Doc is one immutable data document. Its zero value is not usable; build
// one with a Builder. A Doc is safe for concurrent use.
type Doc struct {
	buf  []byte   // containers
	strs []byte   // every distinct string (keys, string values, number literals)
	offs []uint32 // string i is strs[offs[i]:offs[i+1]]
	root ref
}

// Size returns the bytes the document holds.
func (d *Doc) Size() int { return len(d.buf) + len(d.strs) + 4*len(d.offs) }

func scalar(kind ref, id uint32) ref { return inline | kind<<kindShift | ref(id) }

func (r ref) isInline() bool { return r&inline != 0 }
func (r ref) kind() ref      { return (r & kindMask) >> kindShift }
func (r ref) id() uint32     { return uint32(r & payloadMask) }

// str returns string id as a string sharing the document's memory: only
// for comparisons and lookups, never to keep.
func (d *Doc) str(id uint32) string {
	b := d.strs[d.offs[id]:d.offs[id+1]]
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// container returns the tag, the length and where the tables of the
// container at off start.
func (d *Doc) container(off ref) (tag byte, n int, at int) {
	tag = d.buf[off]
	v, k := binary.Uvarint(d.buf[off+1:])
	return tag, int(v), int(off) + 1 + k
}

func (d *Doc) u32(at int) uint32 { return binary.LittleEndian.Uint32(d.buf[at:]) }

// objectKey and objectVal are entry i of the object whose tables start at at.
func (d *Doc) objectKey(at, i int) uint32 { return d.u32(at + 4*i) }
func (d *Doc) objectVal(at, n, i int) ref { return ref(d.u32(at + 4*n + 4*i)) }
func (d *Doc) arrayElem(at, i int) ref    { return ref(d.u32(at + 4*i)) }
func (d *Doc) objectFind(at, n int, key string) (int, bool) {
	i, j := 0, n
	for i < j {
		h := int(uint(i+j) >> 1)
		if d.str(d.objectKey(at, h)) < key {
			i = h + 1
		} else {
			j = h
		}
	}
	return i, i < n && d.str(d.objectKey(at, i)) == key
}

// lookup follows path from the root as OPA's in-memory store does: object
// keys by name, array elements by a decimal index.
func (d *Doc) lookup(path []string) (ref, error) {
	r := d.root
	for _, key := range path {
		if r.isInline() {
			return 0, errNotFound
		}
		tag, n, at := d.container(r)
		switch tag {
		case tagObject:
			j, ok := d.objectFind(at, n, key)
			if !ok {
				return 0, errNotFound
			}
			r = d.objectVal(at, n, j)
		case tagArray:
			idx, ok := atoi(key)
			if !ok {
				return 0, notFoundHint(path, "array index must be integer")
			}
			if idx < 0 || idx >= n {
				return 0, notFoundHint(path, "array index out of range")
			}
			r = d.arrayElem(at, idx)
		}
	}
	return r, nil
}

// atoi is OPA's util.Atoi: a decimal integer, sign allowed.
func atoi(s string) (int, bool) {
	if s == "" {
		return 0, false
	}
	i, err := strconv.Atoi(s)
	return i, err == nil
}

// Value returns the document at path as an AST value.
func (d *Doc) Value(path []string) (ast.Value, error) {
	r, err := d.lookup(path)
	if err != nil {
		return nil, err
	}
	return d.ast(r), nil
}

// Go returns the document at path as the Go values JSON decoding with
// UseNumber gives.
func (d *Doc) Go(path []string) (any, error) {
	r, err := d.lookup(path)
	if err != nil {
		return nil, err
	}
	return d.goValue(r), nil
}

// Root returns the whole document as Go values (an object).
func (d *Doc) Root() map[string]any {
	m, _ := d.goValue(d.root).(map[string]any)
	return m
}

func (d *Doc) ast(r ref) ast.Value {
	if r.isInline() {
		switch r.kind() {
		case kNull:
			return ast.Null{}
		case kFalse:
			return ast.Boolean(false)
		case kTrue:
			return ast.Boolean(true)
		case kString:
			return ast.String(string(d.str(r.id())))
		default:
			return ast.Number(string(d.str(r.id())))
		}
	}
	tag, n, at := d.container(r)
	if tag == tagArray {
		terms := make([]*ast.Term, n)
		for i := range n {
			terms[i] = ast.NewTerm(d.ast(d.arrayElem(at, i)))
		}
		return ast.NewArray(terms...)
	}
	obj := ast.NewObjectWithCapacity(n)
	for i := range n {
		obj.Insert(ast.StringTerm(string(d.str(d.objectKey(at, i)))), ast.NewTerm(d.ast(d.objectVal(at, n, i))))
	}
	return obj
}

func (d *Doc) goValue(r ref) any {
	if r.isInline() {
		switch r.kind() {
		case kNull:
			return nil
		case kFalse:
			return false
		case kTrue:
			return true
		case kString:
			return string(d.str(r.id()))
		default:
			return json.Number(string(d.str(r.id())))
		}
	}
	tag, n, at := d.container(r)
	if tag == tagArray {
		a := make([]any, n)
		for i := range n {
			a[i] = d.goValue(d.arrayElem(at, i))
		}
		return a
	}
	m := make(map[string]any, n)
	for i := range n {
		m[string(d.str(d.objectKey(at, i)))] = d.goValue(d.objectVal(at, n, i))
	}
	return m
}

// Hash writes to w the encoding of the document that policy's revision
// hash writes for the same data given as Go values: tagged values, strings
// prefixed by their length, object keys sorted.
func (d *Doc) Hash(w io.Writer) error {
	h := hasher{d: d, w: w}
	h.value(d.root)
	h.flush()
	return h.err
}

type hasher struct {
	d   *Doc
	w   io.Writer
	buf []byte
	err error
}

func (h *hasher) flush() {
	if h.err == nil && len(h.buf) > 0 {
		_, h.err = h.w.Write(h.buf)
	}
	h.buf = h.buf[:0]
}

func (h *hasher) str(tag byte, s string) {
	h.buf = append(h.buf, tag)
	h.buf = binary.AppendUvarint(h.buf, uint64(len(s)))
	h.buf = append(h.buf, s...)
	if len(h.buf) > 32<<10 {
		h.flush()
	}
}

func (h *hasher) value(r ref) {
	d := h.d
	if r.isInline() {
		switch r.kind() {
		case kNull:
			h.buf = append(h.buf, 'n')
		case kFalse:
			h.buf = append(h.buf, 'f')
		case kTrue:
			h.buf = append(h.buf, 't')
		case kString:
			h.str('s', d.str(r.id()))
		default:
			h.str('d', d.str(r.id()))
		}
		return
	}
	tag, n, at := d.container(r)
	if tag == tagArray {
		h.buf = append(h.buf, '[')
		h.buf = binary.AppendUvarint(h.buf, uint64(n))
		for i := range n {
			h.value(d.arrayElem(at, i))
		}
		return
	}
	h.buf = append(h.buf, '{')
	h.buf = binary.AppendUvarint(h.buf, uint64(n))
	for i := range n {
		h.str('k', d.str(d.objectKey(at, i)))
		h.value(d.objectVal(at, n, i))
	}
}

// isObject reports whether r is an object (the root always is in a
// document built with Builder.Doc).
func (d *Doc) isObject(r ref) bool {
	return !r.isInline() && d.buf[r] == tagObject
}

var errTooLarge = errors.New("data too large for the flat store (over 2 GiB of containers or 268 million distinct strings)")

// sortedKeys returns m's keys sorted.
func sortedKeys(m map[string]any) []string { return slices.Sorted(maps.Keys(m)) }
