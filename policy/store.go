package policy

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/util"
)

// Store selects how an [Engine] holds a policy's data documents
// (Policy.Data). Both give the same decisions; they trade memory and load
// time against the cost of each read of data.
type Store int

const (
	// StoreReadOptimized, the default, converts the data to OPA's AST once,
	// when a revision is loaded, as `opa run --optimize-store-for-read-speed`
	// does. Each read of data during evaluation is then free: a decision that
	// reads much data costs less (about 0.77× on a policy that scans a table
	// of 200 grants). The conversion costs time at load (about 2× the CPU
	// of StoreCompact on 1 000 000 documents) and the AST is about twice the
	// size of the Go values in memory; the Go values, which the caller's
	// Policy holds, can be collected once the caller lets go of it.
	StoreReadOptimized Store = iota
	// StoreCompact keeps the data as the Go values of Policy.Data, without a
	// copy, as `opa run` does by default, and converts only what an
	// evaluation reads, at each read. Loading is faster and takes about half
	// the memory of StoreReadOptimized on a large data document; a lookup of
	// one entry (data.acl.documents[id]) costs about the same, but a policy
	// that iterates over a large part of data pays for the conversion at
	// every decision. The Engine never writes to Policy.Data: a caller must
	// not modify it either once loaded. Data holding values other than
	// map[string]any, []any, string, bool, json.Number and nil (for example
	// an int, a struct or a []string) is copied once in JSON form first, so
	// that both stores read the same values.
	StoreCompact
)

// String returns the name of the store option.
func (s Store) String() string {
	switch s {
	case StoreReadOptimized:
		return "read-optimized"
	case StoreCompact:
		return "compact"
	}
	return fmt.Sprintf("Store(%d)", int(s))
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
