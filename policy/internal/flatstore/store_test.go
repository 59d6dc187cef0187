package flatstore

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strconv"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/util"
)

// randValue makes a random JSON document of the shapes data takes.
func randValue(r *rand.Rand, depth int) any {
	k := r.IntN(9)
	if depth > 4 {
		k = r.IntN(5)
	}
	switch k {
	case 0:
		return nil
	case 1:
		return r.IntN(2) == 0
	case 2:
		return json.Number([]string{"0", "1", "-2", "1.5", "1e3", "10000000000000000000001", "1.0"}[r.IntN(7)])
	case 3, 4:
		return []string{"", "a", "b", "ab", "é", "\u2028", "x\"y", "0", "1", "user7"}[r.IntN(10)]
	case 5, 6:
		m := map[string]any{}
		for range r.IntN(6) {
			m[randKey(r)] = randValue(r, depth+1)
		}
		return m
	default:
		a := make([]any, r.IntN(5))
		for i := range a {
			a[i] = randValue(r, depth+1)
		}
		return a
	}
}

func randKey(r *rand.Rand) string {
	return []string{"a", "b", "c", "0", "1", "", "é", "ab", "system", "-1"}[r.IntN(10)]
}

// randPath is a path into v, sometimes leaving it or going past its end.
func randPath(r *rand.Rand, v any) storage.Path {
	var p storage.Path
	for r.IntN(5) != 0 {
		switch x := v.(type) {
		case map[string]any:
			k := randKey(r)
			if len(x) > 0 && r.IntN(3) != 0 {
				for kk := range x {
					k = kk
					break
				}
			}
			p, v = append(p, k), x[k]
		case []any:
			i := strconv.Itoa(r.IntN(len(x) + 2))
			if r.IntN(6) == 0 {
				i = []string{"x", "-1", "01", "+1"}[r.IntN(4)]
			}
			p = append(p, i)
			if n, err := strconv.Atoi(i); err == nil && n >= 0 && n < len(x) {
				v = x[n]
			} else {
				v = nil
			}
		default:
			return append(p, randKey(r))
		}
	}
	return p
}

func read(t *testing.T, s storage.Store, p storage.Path) (ast.Value, error) {
	t.Helper()
	ctx := context.Background()
	txn := storage.NewTransactionOrDie(ctx, s)
	defer s.Abort(ctx, txn)
	v, err := s.Read(ctx, txn, p)
	if err != nil {
		return nil, err
	}
	if av, ok := v.(ast.Value); ok {
		return av, nil
	}
	return ast.InterfaceToValue(v)
}

func errCode(err error) string {
	if err == nil {
		return ""
	}
	if se, ok := err.(*storage.Error); ok {
		return se.Code
	}
	return "other: " + err.Error()
}

// TestDifferentialReads: random documents, random paths: the flat store
// (built from Go values and from the JSON text) reads what OPA's in-memory
// store reads, and fails where it fails, with the same error code.
func TestDifferentialReads(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 400 {
		doc, _ := randValue(r, 0).(map[string]any)
		if doc == nil {
			doc = map[string]any{"k": randValue(r, 1)}
		}
		ref := inmem.NewFromObject(doc)
		b := NewBuilder()
		gv, err := b.FromGo(doc)
		if err != nil {
			t.Fatal(err)
		}
		fromGo, err := b.Doc(gv)
		if err != nil {
			t.Fatal(err)
		}
		text, _ := json.Marshal(doc)
		b = NewBuilder()
		jv, err := b.ParseJSON(text)
		if err != nil {
			t.Fatalf("%s: %v", text, err)
		}
		fromJSON, err := b.Doc(jv)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(fromGo.Root(), fromJSON.Root()) || !reflect.DeepEqual(util.MustUnmarshalJSON(text), any(fromGo.Root())) {
			t.Fatalf("doc %d: Go values differ:\n%v\n%v", i, fromGo.Root(), fromJSON.Root())
		}
		for _, flat := range []*Store{New(fromGo), New(fromJSON)} {
			for range 30 {
				p := randPath(r, any(doc))
				want, werr := read(t, ref, p)
				got, gerr := read(t, flat, p)
				if errCode(werr) != errCode(gerr) {
					t.Fatalf("doc %s path %v: error %v, OPA's store %v", text, p, gerr, werr)
				}
				if werr == nil && want.Compare(got) != 0 {
					t.Fatalf("doc %s path %v: %v, OPA's store %v", text, p, got, want)
				}
			}
		}
	}
}

// TestDifferentialWrites applies the same random writes, in transactions,
// to the flat store and to OPA's in-memory store: the same errors, the same
// data after each commit, triggers called with the same events, and a
// reader that began before a commit still reads the old revision.
func TestDifferentialWrites(t *testing.T) {
	ctx := context.Background()
	r := rand.New(rand.NewPCG(3, 4))
	for range 100 {
		doc, _ := randValue(r, 0).(map[string]any)
		if doc == nil {
			doc = map[string]any{}
		}
		ref := inmem.NewFromObject(doc)
		b := NewBuilder()
		v, _ := b.FromGo(doc)
		d, _ := b.Doc(v)
		flat := New(d)
		var refEvents, flatEvents []string
		for s, events := range map[storage.Store]*[]string{ref: &refEvents, flat: &flatEvents} {
			txn := storage.NewTransactionOrDie(ctx, s, storage.WriteParams)
			if _, err := s.Register(ctx, txn, storage.TriggerConfig{OnCommit: func(_ context.Context, _ storage.Transaction, ev storage.TriggerEvent) {
				*events = append(*events, fmt.Sprint(len(ev.Data), ev.DataChanged()))
			}}); err != nil {
				t.Fatal(err)
			}
			if err := s.Commit(ctx, txn); err != nil {
				t.Fatal(err)
			}
		}
		for range 5 {
			before, _ := read(t, flat, storage.RootPath)
			oldTxn := storage.NewTransactionOrDie(ctx, flat)
			rtxn := storage.NewTransactionOrDie(ctx, ref, storage.WriteParams)
			ftxn := storage.NewTransactionOrDie(ctx, flat, storage.WriteParams)
			for range 1 + r.IntN(3) {
				op := storage.PatchOp(r.IntN(3))
				p := randPath(r, any(doc))
				val := randValue(r, 3)
				rerr := ref.Write(ctx, rtxn, op, p, val)
				ferr := flat.Write(ctx, ftxn, op, p, val)
				if errCode(rerr) != errCode(ferr) {
					t.Fatalf("write %v %v: error %v, OPA's store %v", op, p, ferr, rerr)
				}
			}
			if r.IntN(4) == 0 {
				ref.Abort(ctx, rtxn)
				flat.Abort(ctx, ftxn)
			} else {
				if err := ref.Commit(ctx, rtxn); err != nil {
					t.Fatal(err)
				}
				if err := flat.Commit(ctx, ftxn); err != nil {
					t.Fatal(err)
				}
			}
			want, _ := read(t, ref, storage.RootPath)
			got, _ := read(t, flat, storage.RootPath)
			if want.Compare(got) != 0 {
				t.Fatalf("after writes: %v, OPA's store %v", got, want)
			}
			old, err := flat.Read(ctx, oldTxn, storage.RootPath)
			if err != nil || old.(ast.Value).Compare(before) != 0 {
				t.Fatalf("a reader that began before the commit reads %v, want %v (%v)", old, before, err)
			}
			flat.Abort(ctx, oldTxn)
		}
		if !reflect.DeepEqual(refEvents, flatEvents) {
			t.Fatalf("trigger events %v, OPA's store %v", flatEvents, refEvents)
		}
	}
}

// FuzzParseJSON: ParseJSON accepts what OPA's JSON decoding accepts, with
// the same values, and fails where it fails.
func FuzzParseJSON(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1}`, `{"a":[1,"x",null,true,false,{"b":-0.5e+3}]}`, `{"a":"\u00e9\ud83d\ude00"}`,
		`{"a":1,"a":2}`, ` {"a" : [ ] } `, `{"a":01}`, `{"a":"\x01"}`, `[1]`, `"x"`, `{"a":1}{}`, `{"a":"\ud800"}`, "{\"a\":\"\xff\"}", `{"a":1.}`, `{"a":-}`, `{"a":tru}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var want any
		werr := util.UnmarshalJSON(data, &want)
		b := NewBuilder()
		v, gerr := b.ParseJSON(data)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("%q: error %v, OPA's %v", data, gerr, werr)
		}
		if werr != nil {
			if werr.Error() != gerr.Error() {
				t.Fatalf("%q: error %q, OPA's %q", data, gerr, werr)
			}
			return
		}
		doc, err := b.Doc(b.Under([]string{"x"}, v))
		if err != nil {
			t.Fatal(err)
		}
		if got := doc.Root()["x"]; !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: %#v, OPA's %#v", data, got, want)
		}
	})
}
