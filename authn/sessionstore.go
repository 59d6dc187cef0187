package authn

import (
	"container/heap"
	"context"
	"errors"
	"sync"
	"time"
)

// A SessionStore keeps the server-side state of the browser flows ([Browser]
// and the SAML service provider of package authn/saml): the sessions revoked
// by logout, and the login attempts (OIDC states, SAML assertion IDs) already
// used, so that none is accepted twice. The two kinds are kept apart: a flood
// of one never crowds out the other.
//
// The in-memory [NewMemorySessionStore] is the default and protects one
// process. Several replicas need a shared implementation (for example on
// Redis: SET key 1 NX PX ttl for UseLogin and Revoke, EXISTS for Revoked).
//
// What an implementation must guarantee:
//   - It is safe for concurrent use, and honours ctx (a deadline bounds
//     every call).
//   - UseLogin is atomic: of concurrent calls with one id, exactly one
//     reports true. An id stays recorded at least ttl.
//   - Revoke records id at least ttl; from the moment it returns nil, every
//     Revoked(id) on any replica sharing the store reports true until then.
//   - It fails closed: when it cannot answer for sure (full, unreachable,
//     timed out), it returns an error, never (false, nil) from Revoked or
//     (true, nil) from UseLogin. The flows then refuse: a session whose
//     revocation cannot be checked is not accepted (503, its cookie kept), a
//     login that cannot be recorded does not complete, a logout that cannot
//     be recorded answers 503 and says so.
//   - Ids are opaque strings of at most 128 bytes; the flows prefix them by
//     kind and never store a credential (session IDs are random, login ids
//     are digests).
//
// Package authn/sessionstoretest checks an implementation against these
// guarantees.
type SessionStore interface {
	// Revoke records that the session id is logged out, for ttl.
	Revoke(ctx context.Context, id string, ttl time.Duration) error
	// Revoked reports whether the session id was revoked and its record
	// has not expired.
	Revoked(ctx context.Context, id string) (bool, error)
	// UseLogin records the login attempt id as used, for ttl. It reports
	// true the first time, false when id is already recorded (a replay).
	UseLogin(ctx context.Context, id string, ttl time.Duration) (bool, error)
}

// Default bounds of [NewMemorySessionStore].
const (
	DefaultMaxRevocations = 100000
	DefaultMaxLogins      = 100000
)

// ErrSessionStoreFull is returned by the in-memory session store when one of
// its bounds is reached and none of its entries has expired.
var ErrSessionStoreFull = errors.New("authn: session store full")

// MemorySessionStoreConfig bounds an in-memory [SessionStore].
type MemorySessionStoreConfig struct {
	// MaxRevocations bounds the live revocations (logouts). Default
	// DefaultMaxRevocations.
	MaxRevocations int
	// MaxLogins bounds the live used-login records. Default
	// DefaultMaxLogins.
	MaxLogins int
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// NewMemorySessionStore returns a [SessionStore] in this process's memory.
// Revocations and used logins are bounded separately; an entry is dropped
// once its ttl has passed. When a bound is reached, the call that would
// exceed it fails with [ErrSessionStoreFull] (fail closed): the login or
// logout is refused, never a replay let through, and the other kind is not
// affected. Only the steps that prove intent add entries (a code exchanged
// at the provider, a verified assertion, a logout of a valid session), so an
// unauthenticated client cannot fill it.
func NewMemorySessionStore(cfg MemorySessionStoreConfig) SessionStore {
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &memStore{
		now:     now,
		revoked: newExpiringSet(orDefaultInt(cfg.MaxRevocations, DefaultMaxRevocations)),
		logins:  newExpiringSet(orDefaultInt(cfg.MaxLogins, DefaultMaxLogins)),
	}
}

func orDefaultInt(v, d int) int {
	if v <= 0 {
		return d
	}
	return v
}

type memStore struct {
	now     func() time.Time
	revoked *expiringSet
	logins  *expiringSet
}

func (m *memStore) Revoke(ctx context.Context, id string, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	_, err := m.revoked.add(id, m.now(), ttl)
	return err
}

func (m *memStore) Revoked(ctx context.Context, id string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	return m.revoked.contains(id, m.now()), nil
}

func (m *memStore) UseLogin(ctx context.Context, id string, ttl time.Duration) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	return m.logins.add(id, m.now(), ttl)
}

// expiringSet holds ids until they expire, at most max at once. A min-heap on
// expiry drops expired entries in O(log n) each.
type expiringSet struct {
	mu  sync.Mutex
	max int
	m   map[string]*expEntry
	h   expHeap
}

type expEntry struct {
	id    string
	until time.Time
	index int
}

type expHeap []*expEntry

func (h expHeap) Len() int           { return len(h) }
func (h expHeap) Less(i, j int) bool { return h[i].until.Before(h[j].until) }
func (h expHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i]; h[i].index = i; h[j].index = j }
func (h *expHeap) Push(x any)        { e := x.(*expEntry); e.index = len(*h); *h = append(*h, e) }
func (h *expHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}

func newExpiringSet(max int) *expiringSet {
	return &expiringSet{max: max, m: map[string]*expEntry{}}
}

// expire drops the entries whose time has come; callers hold mu.
func (s *expiringSet) expire(now time.Time) {
	for len(s.h) > 0 && !now.Before(s.h[0].until) {
		e := heap.Pop(&s.h).(*expEntry)
		delete(s.m, e.id)
	}
}

// add records id until now+ttl; false when it is already recorded. An id
// recorded again (Revoke twice) keeps the later expiry.
func (s *expiringSet) add(id string, now time.Time, ttl time.Duration) (bool, error) {
	if ttl <= 0 {
		return false, errors.New("authn: session store: ttl must be positive")
	}
	until := now.Add(ttl)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire(now)
	if e, ok := s.m[id]; ok {
		if until.After(e.until) {
			e.until = until
			heap.Fix(&s.h, e.index)
		}
		return false, nil
	}
	if len(s.m) >= s.max {
		return false, ErrSessionStoreFull
	}
	e := &expEntry{id: id, until: until}
	heap.Push(&s.h, e)
	s.m[id] = e
	return true, nil
}

func (s *expiringSet) contains(id string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[id]
	return ok && now.Before(e.until)
}
