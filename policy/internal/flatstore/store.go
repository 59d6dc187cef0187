package flatstore

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
)

var errNotFound = &storage.Error{Code: storage.NotFoundErr, Message: "document does not exist"}

func notFoundHint(path []string, hint string) error {
	return &storage.Error{Code: storage.NotFoundErr, Message: storage.Path(path).String() + ": " + hint}
}

// Store is an OPA storage.Store over a Doc. Reads return AST values,
// converted from the flat form for the part of the document they reach.
// Read transactions take no lock: they read the revision that was current
// when they began. A write transaction (one at a time) works on a copy in
// OPA's in-memory store, with its exact semantics, and its commit encodes
// the result into a new Doc that replaces the old one atomically.
type Store struct {
	cur atomic.Pointer[revision]
	ids atomic.Uint64

	wmu sync.Mutex // held by the open write transaction

	tmu      sync.Mutex
	triggers map[*handle]storage.TriggerConfig
}

type revision struct {
	doc      *Doc
	policies map[string][]byte
}

// New returns a store serving doc.
func New(doc *Doc) *Store {
	s := &Store{triggers: map[*handle]storage.TriggerConfig{}}
	s.cur.Store(&revision{doc: doc, policies: map[string][]byte{}})
	return s
}

// Doc returns the document being served.
func (s *Store) Doc() *Doc { return s.cur.Load().doc }

type txn struct {
	id  uint64
	rev *revision
	w   *writeTxn // nil for a read transaction
}

func (t *txn) ID() uint64 { return t.id }

// writeTxn is a write transaction's copy in OPA's in-memory store.
type writeTxn struct {
	params storage.TransactionParams
	inner  storage.Store
	itxn   storage.Transaction
	event  storage.TriggerEvent
	closed bool
}

// NewTransaction implements storage.Store.
func (s *Store) NewTransaction(ctx context.Context, params ...storage.TransactionParams) (storage.Transaction, error) {
	var p storage.TransactionParams
	if len(params) > 0 {
		p = params[0]
	}
	if !p.Write {
		return &txn{id: s.ids.Add(1), rev: s.cur.Load()}, nil
	}
	s.wmu.Lock()
	return &txn{id: s.ids.Add(1), rev: s.cur.Load(), w: &writeTxn{params: p}}, nil
}

func (s *Store) own(t storage.Transaction) (*txn, error) {
	x, ok := t.(*txn)
	if !ok {
		return nil, &storage.Error{Code: storage.InvalidTransactionErr, Message: fmt.Sprintf("unexpected transaction type %T", t)}
	}
	if x.w != nil && x.w.closed {
		return nil, &storage.Error{Code: storage.InvalidTransactionErr, Message: "stale transaction"}
	}
	return x, nil
}

// inner returns the write transaction's in-memory copy, made at its first use.
func (s *Store) inner(ctx context.Context, x *txn) (*writeTxn, error) {
	w := x.w
	if w == nil {
		return nil, &storage.Error{Code: storage.InvalidTransactionErr, Message: "data write during read transaction"}
	}
	if w.inner != nil {
		return w, nil
	}
	inner := inmem.NewFromObjectWithOpts(x.rev.doc.Root(), inmem.OptRoundTripOnWrite(true))
	if len(x.rev.policies) > 0 {
		if err := storage.Txn(ctx, inner, storage.WriteParams, func(t storage.Transaction) error {
			for id, b := range x.rev.policies {
				if err := inner.UpsertPolicy(ctx, t, id, b); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return nil, err
		}
	}
	itxn, err := inner.NewTransaction(ctx, w.params)
	if err != nil {
		return nil, err
	}
	if _, err := inner.Register(ctx, itxn, storage.TriggerConfig{OnCommit: func(_ context.Context, _ storage.Transaction, ev storage.TriggerEvent) {
		w.event = ev
	}}); err != nil {
		inner.Abort(ctx, itxn)
		return nil, err
	}
	w.inner, w.itxn = inner, itxn
	return w, nil
}

// Read implements storage.Store: an AST value.
func (s *Store) Read(ctx context.Context, t storage.Transaction, path storage.Path) (any, error) {
	x, err := s.own(t)
	if err != nil {
		return nil, err
	}
	if x.w != nil && x.w.inner != nil {
		return x.w.inner.Read(ctx, x.w.itxn, path)
	}
	return x.rev.doc.Value(path)
}

// Write implements storage.Store, within a write transaction.
func (s *Store) Write(ctx context.Context, t storage.Transaction, op storage.PatchOp, path storage.Path, value any) error {
	x, err := s.own(t)
	if err != nil {
		return err
	}
	w, err := s.inner(ctx, x)
	if err != nil {
		return err
	}
	return w.inner.Write(ctx, w.itxn, op, path, value)
}

// MakeDir implements storage.MakeDirer, within a write transaction.
func (s *Store) MakeDir(ctx context.Context, t storage.Transaction, path storage.Path) error {
	x, err := s.own(t)
	if err != nil {
		return err
	}
	w, err := s.inner(ctx, x)
	if err != nil {
		return err
	}
	return storage.MakeDir(ctx, w.inner, w.itxn, path)
}

// Truncate implements storage.Store, within a write transaction.
func (s *Store) Truncate(ctx context.Context, t storage.Transaction, params storage.TransactionParams, it storage.Iterator) error {
	x, err := s.own(t)
	if err != nil {
		return err
	}
	w, err := s.inner(ctx, x)
	if err != nil {
		return err
	}
	return w.inner.Truncate(ctx, w.itxn, params, it)
}

// Commit implements storage.Store. Committing a write transaction encodes
// its result into a new Doc and makes it current; readers never wait.
func (s *Store) Commit(ctx context.Context, t storage.Transaction) error {
	x, err := s.own(t)
	if err != nil {
		return err
	}
	w := x.w
	if w == nil {
		return nil
	}
	defer func() {
		w.closed = true
		s.wmu.Unlock()
	}()
	if w.inner == nil {
		s.fire(ctx, t, storage.TriggerEvent{Context: w.params.Context})
		return nil
	}
	if err := w.inner.Commit(ctx, w.itxn); err != nil {
		return err
	}
	next := &revision{policies: map[string][]byte{}}
	err = storage.Txn(ctx, w.inner, storage.TransactionParams{}, func(it storage.Transaction) error {
		root, err := w.inner.Read(ctx, it, storage.RootPath)
		if err != nil {
			return err
		}
		b := NewBuilder()
		v, err := b.FromGo(root)
		if err != nil {
			return err
		}
		if next.doc, err = b.Doc(v); err != nil {
			return err
		}
		ids, err := w.inner.ListPolicies(ctx, it)
		if err != nil {
			return err
		}
		for _, id := range ids {
			if next.policies[id], err = w.inner.GetPolicy(ctx, it, id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.cur.Store(next)
	s.fire(ctx, t, w.event)
	return nil
}

// fire calls the triggers, as OPA's store does after every committed write
// transaction.
func (s *Store) fire(ctx context.Context, t storage.Transaction, ev storage.TriggerEvent) {
	s.tmu.Lock()
	triggers := slices.Collect(maps.Values(s.triggers))
	s.tmu.Unlock()
	for _, tc := range triggers {
		if tc.OnCommit != nil {
			tc.OnCommit(ctx, t, ev)
		}
	}
}

// Abort implements storage.Store.
func (s *Store) Abort(ctx context.Context, t storage.Transaction) {
	x, err := s.own(t)
	if err != nil || x.w == nil {
		return
	}
	if x.w.inner != nil {
		x.w.inner.Abort(ctx, x.w.itxn)
	}
	x.w.closed = true
	s.wmu.Unlock()
}

// ListPolicies implements storage.Policy.
func (s *Store) ListPolicies(ctx context.Context, t storage.Transaction) ([]string, error) {
	x, err := s.own(t)
	if err != nil {
		return nil, err
	}
	if x.w != nil && x.w.inner != nil {
		return x.w.inner.ListPolicies(ctx, x.w.itxn)
	}
	return slices.Sorted(maps.Keys(x.rev.policies)), nil
}

// GetPolicy implements storage.Policy.
func (s *Store) GetPolicy(ctx context.Context, t storage.Transaction, id string) ([]byte, error) {
	x, err := s.own(t)
	if err != nil {
		return nil, err
	}
	if x.w != nil && x.w.inner != nil {
		return x.w.inner.GetPolicy(ctx, x.w.itxn, id)
	}
	b, ok := x.rev.policies[id]
	if !ok {
		return nil, &storage.Error{Code: storage.NotFoundErr, Message: fmt.Sprintf("policy id %q", id)}
	}
	return b, nil
}

// UpsertPolicy implements storage.Policy, within a write transaction.
func (s *Store) UpsertPolicy(ctx context.Context, t storage.Transaction, id string, b []byte) error {
	x, err := s.own(t)
	if err != nil {
		return err
	}
	w, err := s.inner(ctx, x)
	if err != nil {
		return err
	}
	return w.inner.UpsertPolicy(ctx, w.itxn, id, b)
}

// DeletePolicy implements storage.Policy, within a write transaction.
func (s *Store) DeletePolicy(ctx context.Context, t storage.Transaction, id string) error {
	x, err := s.own(t)
	if err != nil {
		return err
	}
	w, err := s.inner(ctx, x)
	if err != nil {
		return err
	}
	return w.inner.DeletePolicy(ctx, w.itxn, id)
}

type handle struct{ s *Store }

// Unregister implements storage.TriggerHandle.
func (h *handle) Unregister(context.Context, storage.Transaction) {
	h.s.tmu.Lock()
	delete(h.s.triggers, h)
	h.s.tmu.Unlock()
}

// Register implements storage.Trigger: OnCommit is called after every
// committed write transaction. As in OPA's store, it needs a write
// transaction.
func (s *Store) Register(_ context.Context, t storage.Transaction, config storage.TriggerConfig) (storage.TriggerHandle, error) {
	x, err := s.own(t)
	if err != nil {
		return nil, err
	}
	if x.w == nil {
		return nil, &storage.Error{Code: storage.InvalidTransactionErr, Message: "triggers must be registered with a write transaction"}
	}
	h := &handle{s: s}
	s.tmu.Lock()
	s.triggers[h] = config
	s.tmu.Unlock()
	return h, nil
}

var (
	_ storage.Store     = (*Store)(nil)
	_ storage.MakeDirer = (*Store)(nil)
)
