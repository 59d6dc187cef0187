package policy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"weak"

	"github.com/regoguard/regoguard/policy"
)

// storeModule reads data in every way a policy can: a lookup by a key from
// the input, a path below a lookup, iteration, a whole object compared,
// count, numbers compared, and data given as Go values other than the
// ones JSON decoding makes (int, float64, []string, map[string]string, a
// struct).
const storeModule = `package httpapi.authz

default allow := false

doc := data.acl.documents[input.doc]

allow if input.user in doc.readers

allow if doc.owner == input.user

allow if {
	some role in data.roles[input.user]
	input.method in data.grants[role]
}

allow if data.limits.max_size >= input.size

allow if data.settings.mode == input.mode

allow if {
	input.check_flags
	data.flags == {"beta": true, "ratio": 0.5}
}

allow if count(data.acl.documents) == input.count

allow if data.team.lead == input.user

reason := sprintf("no grant for %s on %v", [input.user, input.doc]) if not allow
`

type teamInfo struct {
	Lead string `json:"lead"`
}

// storeData is data as a Go program builds it, not as JSON decoding gives it.
func storeData() map[string]any {
	return map[string]any{
		"acl": map[string]any{"documents": map[string]any{
			"d1": map[string]any{"owner": "ann", "readers": []any{"bob", "cid"}},
			"d2": map[string]any{"owner": "bob", "readers": []string{"dan"}},
		}},
		"roles":    map[string]any{"eve": []string{"auditor"}, "fay": []any{"writer", "reader"}},
		"grants":   map[string][]string{"auditor": {"GET"}, "writer": {"PUT"}},
		"limits":   map[string]any{"max_size": 100},
		"settings": map[string]string{"mode": "closed"},
		"flags":    map[string]any{"beta": true, "ratio": 0.5},
		"team":     teamInfo{Lead: "gus"},
	}
}

// jsonData is storeData as LoadFiles or a bundle gives it.
func jsonData(t *testing.T) map[string]any {
	t.Helper()
	b, err := json.Marshal(storeData())
	if err != nil {
		t.Fatal(err)
	}
	d := json.NewDecoder(strings.NewReader(string(b)))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

var storeInputs = []struct {
	doc   string
	allow bool
}{
	{`{"user": "bob", "doc": "d1"}`, true},                        // reader
	{`{"user": "ann", "doc": "d1"}`, true},                        // owner
	{`{"user": "dan", "doc": "d2"}`, true},                        // reader from a []string
	{`{"user": "dan", "doc": "d1"}`, false},                       // reader of another document
	{`{"user": "zed", "doc": "d9"}`, false},                       // no such document
	{`{"user": "eve", "method": "GET"}`, true},                    // role from []string, grant from map[string][]string
	{`{"user": "eve", "method": "PUT"}`, false},                   // no grant
	{`{"user": "fay", "method": "PUT"}`, true},                    // second role
	{`{"user": "zed", "size": 100}`, true},                        // int data against a number
	{`{"user": "zed", "size": 101}`, false},                       // above the limit
	{`{"user": "zed", "size": 99.5}`, true},                       // a fraction
	{`{"user": "zed", "count": 2}`, true},                         // count of an object
	{`{"user": "zed", "count": 3}`, false},                        // wrong count
	{`{"user": "zed", "mode": "closed"}`, true},                   // a map[string]string's value
	{`{"user": "zed", "mode": "open"}`, false},                    // another value
	{`{"user": "zed", "check_flags": true}`, true},                // a whole object with a float64
	{`{"user": "gus"}`, true},                                     // a struct's field
	{`{"user": "Gus"}`, false},                                    // case matters
	{`{"user": "zed", "doc": ["d1"], "method": "DELETE"}`, false}, // odd input types
}

// TestStoresDecideAlike evaluates the same inputs with both stores, on data
// as a program builds it and as JSON decoding gives it: every decision
// (allow, reason, whole result) must be the same, and right.
func TestStoresDecideAlike(t *testing.T) {
	ctx := context.Background()
	for _, data := range []struct {
		name string
		make func() map[string]any
	}{{"go values", storeData}, {"json values", func() map[string]any { return jsonData(t) }}} {
		t.Run(data.name, func(t *testing.T) {
			engines := map[policy.Store]*policy.Engine{}
			for _, st := range []policy.Store{policy.StoreFlat, policy.StoreReadOptimized, policy.StoreCompact} {
				p := policy.MustParse(map[string]string{"authz.rego": storeModule}, data.make())
				e, err := policy.New(ctx, policy.Config{Store: st, WholeDocument: true}, p)
				if err != nil {
					t.Fatalf("%v: %v", st, err)
				}
				engines[st] = e
			}
			for _, in := range storeInputs {
				read := mustEval(t, engines[policy.StoreReadOptimized], in.doc)
				if read.Allow != in.allow {
					t.Errorf("%s: read-optimized allow = %v, want %v (%+v)", in.doc, read.Allow, in.allow, read)
				}
				for _, st := range []policy.Store{policy.StoreFlat, policy.StoreCompact} {
					other := mustEval(t, engines[st], in.doc)
					if other.Allow != read.Allow || other.Reason != read.Reason || !reflect.DeepEqual(other.Result, read.Result) {
						t.Errorf("%s: stores disagree:\n%v %+v\nread-optimized %+v", in.doc, st, other, read)
					}
					if read.Revision != other.Revision {
						t.Errorf("%s: revision depends on the store: %s vs %s (%v)", in.doc, read.Revision, other.Revision, st)
					}
				}
			}
		})
	}
}

// TestCompactStoreLeavesDataAlone checks that neither store writes into
// the caller's data, including when the compact store has to copy it.
func TestCompactStoreLeavesDataAlone(t *testing.T) {
	for _, st := range []policy.Store{policy.StoreFlat, policy.StoreReadOptimized, policy.StoreCompact} {
		data := storeData()
		before := fmt.Sprintf("%#v", data)
		p := policy.MustParse(map[string]string{"authz.rego": storeModule}, data)
		e, err := policy.New(context.Background(), policy.Config{Store: st}, p)
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range storeInputs {
			mustEval(t, e, in.doc)
		}
		if after := fmt.Sprintf("%#v", data); after != before {
			t.Errorf("%v: data changed:\nbefore %s\nafter  %s", st, before, after)
		}
	}
}

// TestStoreBadData: data with no JSON form is a load error in both stores,
// not a panic (OPA's inmem.NewFromObject panics on it), and the previous
// revision keeps serving.
func TestStoreBadData(t *testing.T) {
	ctx := context.Background()
	for _, st := range []policy.Store{policy.StoreFlat, policy.StoreReadOptimized, policy.StoreCompact} {
		good := policy.MustParse(map[string]string{"authz.rego": storeModule}, storeData())
		e, err := policy.New(ctx, policy.Config{Store: st}, good)
		if err != nil {
			t.Fatal(err)
		}
		bad := policy.MustParse(map[string]string{"authz.rego": storeModule}, map[string]any{"x": map[string]any{"c": make(chan int)}})
		if err := e.Load(ctx, bad); err == nil || !strings.Contains(err.Error(), "data") {
			t.Errorf("%v: Load of unencodable data: err = %v, want an error about data", st, err)
		}
		if e.Revision() == "" || !mustEval(t, e, `{"user": "bob", "doc": "d1"}`).Allow {
			t.Errorf("%v: the previous revision stopped serving", st)
		}
	}
}

// TestStoreCyclicData: data that holds itself is a load error in both
// stores, with or without a revision name (which skips the hash), not a
// stack overflow.
func TestStoreCyclicData(t *testing.T) {
	ctx := context.Background()
	for _, st := range []policy.Store{policy.StoreFlat, policy.StoreReadOptimized, policy.StoreCompact} {
		for _, named := range []bool{false, true} {
			cyclic := map[string]any{"a": []any{"x"}}
			cyclic["self"] = cyclic
			p := policy.MustParse(map[string]string{"authz.rego": storeModule}, map[string]any{"acl": cyclic})
			if named {
				p.Revision = "r1"
			}
			_, err := policy.New(ctx, policy.Config{Store: st}, p)
			if err == nil || !strings.Contains(err.Error(), "cycle") {
				t.Errorf("%v, named %v: err = %v, want one about a cycle", st, named, err)
			}
		}
	}
}

func TestStoreOptionUnknown(t *testing.T) {
	if _, err := policy.New(context.Background(), policy.Config{Store: policy.Store(7)}, nil); err == nil {
		t.Error("New accepted an unknown store")
	}
	if got := policy.StoreCompact.String(); got != "compact" {
		t.Errorf("StoreCompact.String() = %q", got)
	}
	if got := (policy.Config{}).Store; got != policy.StoreFlat || got.String() != "flat" {
		t.Errorf("the default store is %v, want flat", got)
	}
}

// TestRevisionHash: equal data hashes equally whatever the order it was
// built in; any change of a value, a key or a type's JSON form changes it.
func TestRevisionHash(t *testing.T) {
	ctx := context.Background()
	rev := func(data map[string]any) string {
		t.Helper()
		e, err := policy.New(ctx, policy.Config{}, policy.MustParse(map[string]string{"authz.rego": storeModule}, data))
		if err != nil {
			t.Fatal(err)
		}
		return e.Revision()
	}
	a := map[string]any{}
	b := map[string]any{}
	for i := range 200 {
		a[fmt.Sprintf("k%d", i)] = []any{"v", json.Number(fmt.Sprint(i))}
	}
	for i := 199; i >= 0; i-- {
		b[fmt.Sprintf("k%d", i)] = []any{"v", json.Number(fmt.Sprint(i))}
	}
	if rev(a) != rev(b) {
		t.Error("equal data built in another order has another revision")
	}
	seen := map[string]string{}
	for name, d := range map[string]map[string]any{
		"base":         {"a": "x"},
		"value":        {"a": "y"},
		"key":          {"b": "x"},
		"number":       {"a": json.Number("1")},
		"other number": {"a": json.Number("2")},
		"bool":         {"a": true},
		"null":         {"a": nil},
		"array":        {"a": []any{"x"}},
		"object":       {"a": map[string]any{"x": nil}},
		"nested":       {"a": []any{[]any{map[string]any{"x": map[string]any{"y": "z"}}}}},
		"nested 2":     {"a": []any{[]any{map[string]any{"x": map[string]any{"y": "w"}}}}},
		"split string": {"a": []any{"ab", "c"}},
		"split again":  {"a": []any{"a", "bc"}},
		"go value":     {"a": []string{"x", "y"}},
		"go value 2":   {"a": []string{"x", "z"}},
	} {
		r := rev(d)
		if other, dup := seen[r]; dup {
			t.Errorf("%s and %s have the same revision %s", name, other, r)
		}
		seen[r] = name
	}
}

// TestLoadLetsGoOfData: the engine keeps no reference to the Go values of
// the data it was given (read-optimised store: it holds the AST only) or, once
// a new revision serves, to the previous revision's data (compact store: it
// shares them while they serve), so a reload does not hold two revisions.
func TestLoadLetsGoOfData(t *testing.T) {
	ctx := context.Background()
	for _, st := range []policy.Store{policy.StoreFlat, policy.StoreReadOptimized, policy.StoreCompact} {
		t.Run(st.String(), func(t *testing.T) {
			e, err := policy.New(context.Background(), policy.Config{Store: st}, nil)
			if err != nil {
				t.Fatal(err)
			}
			held := func() func() bool {
				// A weak pointer to the backing array of one array in the
				// data, made in a closure so that no strong reference stays
				// in this frame.
				first := jsonData(t)
				readers := first["acl"].(map[string]any)["documents"].(map[string]any)["d1"].(map[string]any)["readers"].([]any)
				w := weak.Make(&readers[0])
				if err := e.Load(ctx, policy.MustParse(map[string]string{"authz.rego": storeModule}, first)); err != nil {
					t.Fatal(err)
				}
				return func() bool { return w.Value() != nil }
			}()
			if !mustEval(t, e, `{"user": "bob", "doc": "d1"}`).Allow {
				t.Fatal("first revision: bob may not read d1")
			}
			if st == policy.StoreCompact {
				runtime.GC()
				if !held() {
					t.Fatal("compact store: the serving revision's data was collected")
				}
				next := jsonData(t)
				next["acl"].(map[string]any)["documents"].(map[string]any)["d1"] = map[string]any{"owner": "ann", "readers": []any{}}
				if err := e.Load(ctx, policy.MustParse(map[string]string{"authz.rego": storeModule}, next)); err != nil {
					t.Fatal(err)
				}
				if mustEval(t, e, `{"user": "bob", "doc": "d1"}`).Allow {
					t.Fatal("second revision: bob still reads d1")
				}
			}
			for range 3 {
				runtime.GC()
			}
			if held() {
				t.Errorf("%v: the engine still holds the Go values of data it no longer serves", st)
			}
		})
	}
}
