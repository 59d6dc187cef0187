package policy

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/util"

	"github.com/regoguard/regoguard/policy/internal/flatstore"
)

// Store selects how an [Engine] holds a policy's data documents. All give
// the same decisions; they trade memory, load time and garbage-collector
// work against the cost of each read of data.
type Store int

const (
	// StoreFlat, the default, holds the data in one flat, immutable,
	// pointer-free encoding (every distinct string once, objects as sorted
	// key tables with offsets), and converts to OPA's AST values only what
	// an evaluation reads: a lookup such as data.acl.documents[input.id]
	// converts one entry, found by binary search, whatever the size of the
	// data. The loaders ([LoadFiles], [LoadFS], package bundles) parse JSON
	// data files straight into it, without building Go values: on 1 000 000
	// documents it holds about a tenth of the memory of OPA's default store,
	// is ready in a fraction of the time, and the garbage collector has
	// nothing in it to scan. A policy that iterates over a large part of
	// data pays for the conversion at every decision, as with StoreCompact.
	StoreFlat Store = iota
	// StoreReadOptimized converts the data to OPA's AST once, when a
	// revision is loaded, as `opa run --optimize-store-for-read-speed`
	// does. Each read of data during evaluation is then free: a decision
	// that iterates over much data costs less (about 0.77× on a policy
	// that scans a table of 200 grants). The conversion costs time at load
	// and the AST takes several times the memory of StoreFlat.
	StoreReadOptimized
	// StoreCompact keeps the data as Go values (map[string]any...), as
	// `opa run` does by default, and converts what an evaluation reads, at
	// each read. Policy.Data is shared without a copy when it holds only
	// what JSON decoding gives; other Go values (an int, a struct, a
	// []string) are copied once in JSON form first, so that every store
	// reads the same values. The Engine never writes to Policy.Data: a
	// caller must not modify it either once loaded.
	StoreCompact
)

// String returns the name of the store option.
func (s Store) String() string {
	switch s {
	case StoreFlat:
		return "flat"
	case StoreReadOptimized:
		return "read-optimized"
	case StoreCompact:
		return "compact"
	}
	return fmt.Sprintf("Store(%d)", int(s))
}

// prepareData returns p's revision (p.Revision, or a hash of its modules and
// data) and a store holding its data in the form the Engine is configured
// for.
func (e *Engine) prepareData(p *Policy) (string, storage.Store, error) {
	if p.doc == nil {
		revision, shaped, err := p.revision()
		if err != nil {
			return "", nil, err
		}
		store, err := newStore(e.store, p.Data, shaped)
		return revision, store, err
	}
	doc, err := p.flatDoc()
	if err != nil {
		return "", nil, err
	}
	revision := p.Revision
	if revision == "" {
		h := p.moduleHash()
		if err := doc.Hash(h); err != nil {
			return "", nil, fmt.Errorf("policy: data: %w", err)
		}
		revision = "sha256:" + hex.EncodeToString(h.Sum(nil))[:12]
	}
	if e.store == StoreFlat {
		return revision, flatstore.New(doc), nil
	}
	store, err := newStore(e.store, doc.Root(), true)
	return revision, store, err
}

// newStore returns a store holding data in the form kind asks for. It never
// writes into data. shaped says data is known to hold only JSON values (see dataShape).
func newStore(kind Store, data map[string]any, shaped bool) (storage.Store, error) {
	if data == nil {
		data = map[string]any{}
	}
	if !shaped {
		// Not known to come from JSON: it may hold anything, even a cycle,
		// which OPA's conversions would follow until the stack overflows.
		var err error
		if shaped, err = dataShape(data, 0); err != nil {
			return nil, err
		}
	}
	switch kind {
	case StoreFlat:
		// FromGo copies what is not JSON-shaped through its JSON form.
		b := flatstore.NewBuilder()
		v, err := b.FromGo(data)
		if err != nil {
			return nil, fmt.Errorf("policy: data: %w", err)
		}
		doc, err := b.Doc(v)
		if err != nil {
			return nil, fmt.Errorf("policy: data: %w", err)
		}
		return flatstore.New(doc), nil
	case StoreReadOptimized:
		// Converted to AST values in one pass; Write copies nothing else.
		return fill(inmem.NewWithOpts(inmem.OptReturnASTValuesOnRead(true)), data)
	case StoreCompact:
		if !shaped {
			var v any = data
			if err := util.RoundTripFast(&v); err != nil {
				return nil, fmt.Errorf("policy: data: %w", err)
			}
			m, ok := v.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("policy: data is a %T once in JSON form, not an object", v)
			}
			data = m
		}
		// No round trip on write: the store shares data, which nothing
		// writes to (the Engine only reads its store).
		return fill(inmem.NewWithOpts(inmem.OptRoundTripOnWrite(false)), data)
	}
	return nil, fmt.Errorf("policy: unknown store %v", kind)
}

// fill writes data at the root of store, as inmem.NewFromObject does, but
// returns an error (data that has no JSON form) instead of panicking.
func fill(store storage.Store, data map[string]any) (storage.Store, error) {
	ctx := context.Background()
	txn, err := store.NewTransaction(ctx, storage.WriteParams)
	if err != nil {
		return nil, fmt.Errorf("policy: data: %w", err)
	}
	if err := store.Write(ctx, txn, storage.AddOp, storage.RootPath, data); err != nil {
		store.Abort(ctx, txn)
		return nil, fmt.Errorf("policy: data: %w", err)
	}
	if err := store.Commit(ctx, txn); err != nil {
		return nil, fmt.Errorf("policy: data: %w", err)
	}
	return store, nil
}

// maxDataDepth is how deep data may nest: encoding/json's limit for cycle
// detection, far beyond any real document.
const maxDataDepth = 1000

// errDataDepth is the error for data nested deeper than maxDataDepth.
var errDataDepth = fmt.Errorf("policy: data nested deeper than %d levels (does it hold a cycle?)", maxDataDepth)

// dataShape reports whether v holds only what encoding/json produces with
// UseNumber (what LoadFiles and bundles give), which the compact store can
// share as it is, or an error when v nests too deep to be converted.
func dataShape(v any, depth int) (bool, error) {
	if depth > maxDataDepth {
		return false, errDataDepth
	}
	shaped := true
	switch x := v.(type) {
	case nil, bool, string, json.Number:
	case map[string]any:
		for _, e := range x {
			ok, err := dataShape(e, depth+1)
			if err != nil {
				return false, err
			}
			shaped = shaped && ok
		}
	case []any:
		for _, e := range x {
			ok, err := dataShape(e, depth+1)
			if err != nil {
				return false, err
			}
			shaped = shaped && ok
		}
	default:
		// Converted through its JSON form, which encoding/json checks.
		shaped = false
	}
	return shaped, nil
}
