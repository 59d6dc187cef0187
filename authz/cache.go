package authz

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/regoguard/regoguard/policy"
)

// CacheConfig configures a [Cache].
type CacheConfig struct {
	// Size is the most decisions kept; default 10 000.
	Size int
	// TTL is how long a decision is kept; default 10s.
	TTL time.Duration
	// KeyFields, when set, names the top-level input fields (method, path,
	// user...) that the decisions are expected to depend on. It is checked,
	// never trusted: [NewCache] refuses it, naming the missing fields, when
	// the policy being served reads a field it leaves out (or reads its
	// input as a whole). The key itself is always what the revision in
	// service reads, so a later revision that reads more is keyed right.
	KeyFields []string
}

// Cache memoizes the decisions of an evaluator whose policy is
// deterministic: the same input gives the same decision.
//
// It keys each decision on the policy revision that made it and on the
// input fields that revision reads (see [Planner]): a field the policy
// never reads, such as the client's address, never splits the cache, and a
// field it reads always does. A new revision is never answered from an old
// one's decisions. Only decisions of a known revision are kept: those of an
// evaluator that is not a [Planner], of a [Remote] (whose policy can
// change unseen), or of a [Fallback]'s Secondary are passed through
// uncached. Errors are never cached. Decisions are bounded in number and
// age.
//
// A Cache is itself a [Planner], so the middleware builds only the fields
// the policy reads behind it.
//
// Do not cache a policy that reads the time, calls http.send or reads data
// that changes without a new revision.
type Cache struct {
	eval    Evaluator
	ttl     time.Duration
	entries *lru.Cache[[sha256.Size]byte, cached]
	seenRev atomic.Pointer[string] // the revision last asked of
	bufs    sync.Pool
	plan    atomic.Pointer[keyPlan] // of the fields last keyed on
	stats   cacheStats
}

type cached struct {
	d       policy.Decision
	expires time.Time
}

// NewCache returns a Cache in front of eval. When cfg.KeyFields is set and
// eval serves a revision already, it is checked against what that revision
// reads.
func NewCache(eval Evaluator, cfg CacheConfig) (*Cache, error) {
	if eval == nil {
		return nil, errors.New("authz: cache needs an evaluator")
	}
	if len(cfg.KeyFields) > 0 {
		if err := checkKeyFields(eval, cfg.KeyFields); err != nil {
			return nil, err
		}
	}
	size := cmp.Or(cfg.Size, 10000)
	entries, err := lru.New[[sha256.Size]byte, cached](size)
	if err != nil {
		return nil, fmt.Errorf("authz: cache: %w", err)
	}
	c := &Cache{eval: eval, ttl: cmp.Or(cfg.TTL, 10*time.Second), entries: entries}
	c.bufs.New = func() any { b := make([]byte, 0, 1024); return &b }
	return c, nil
}

// checkKeyFields refuses a key that leaves out a field the revision eval
// serves reads. An evaluator with no known revision yet cannot be checked:
// the key then follows each revision anyway.
func checkKeyFields(eval Evaluator, keys []string) error {
	s, err := PlanOf(eval)
	if err != nil || s.Revision == "" {
		return nil
	}
	f := s.RevisionFields
	if f == nil {
		return fmt.Errorf("authz: decision cache key %s: the policy (revision %s) reads its input as a whole "+
			"(input[k], walk(input), a function of input...): no list of fields covers it; leave the key out, "+
			"and decisions are keyed on what the policy reads", strings.Join(keys, ","), s.Revision)
	}
	var missing []string
	for _, k := range f.Keys() {
		if !slices.Contains(keys, k) {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("authz: decision cache key %s leaves out input fields the policy (revision %s) reads: %s; "+
			"add them, or leave the key out and decisions are keyed on what the policy reads",
			strings.Join(keys, ","), s.Revision, strings.Join(missing, ","))
	}
	return nil
}

// Eval implements [Evaluator]: the decision kept for this input under the
// revision being served, or the evaluator's, which is kept when that
// revision made it.
func (c *Cache) Eval(ctx context.Context, input ast.Value) (policy.Decision, error) {
	plan, err := PlanOf(c.eval)
	if err != nil {
		return policy.Decision{}, err
	}
	rev := plan.Revision
	if rev == "" {
		c.stats.misses.Add(1)
		return evalFailClosed(ctx, c.eval, input)
	}
	c.dropOnNewRevision(rev)
	key, err := c.key(rev, input, plan.RevisionFields)
	if err != nil {
		c.stats.misses.Add(1)
		return evalFailClosed(ctx, c.eval, input)
	}
	now := time.Now()
	if e, ok := c.entries.Get(key); ok && now.Before(e.expires) {
		c.stats.hits.Add(1)
		return e.d, nil
	}
	c.stats.misses.Add(1)
	d, err := evalFailClosed(ctx, c.eval, input)
	if err != nil {
		return d, err
	}
	// Only a decision of the revision the key names is kept: not one of a
	// fallback that answered instead, nor one of a revision loaded since
	// the plan. The key holds what that revision reads of this very input,
	// so the decision is right for every input with the same key.
	if d.Revision == rev {
		c.entries.Add(key, cached{d: d, expires: now.Add(c.ttl)})
	}
	return d, nil
}

// Plan implements [Planner]: the plan of the evaluator behind the cache,
// whose decisions are looked up and kept in the cache.
func (c *Cache) Plan() (policy.Plan, error) { return PlanOf(c.eval) }

// Len returns the number of cached decisions. The first decision asked of a
// new revision empties the cache.
func (c *Cache) Len() int { return c.entries.Len() }

// evalFailClosed asks s; a failed decision never carries an allow.
func evalFailClosed(ctx context.Context, s Evaluator, input ast.Value) (policy.Decision, error) {
	d, err := s.Eval(ctx, input)
	if err != nil {
		return policy.Decision{Revision: d.Revision, Bundles: d.Bundles}, err
	}
	return d, nil
}

// dropOnNewRevision empties the cache when the revision in service changes:
// the old entries could never be hit again (the key holds the revision),
// but would take room until evicted. A request of the revision already
// seen (nearly all of them) takes no lock.
func (c *Cache) dropOnNewRevision(rev string) {
	if seen := c.seenRev.Load(); seen != nil && *seen == rev {
		return
	}
	next := rev // only a change puts a revision on the heap
	if old := c.seenRev.Swap(&next); old == nil || *old != rev {
		c.entries.Purge()
	}
}

// key hashes the revision and the part of input that fields reads: all a
// decision of that revision depends on.
func (c *Cache) key(rev string, input ast.Value, fields *policy.InputFields) ([sha256.Size]byte, error) {
	bp := c.bufs.Get().(*[]byte)
	defer c.bufs.Put(bp)
	buf := binary.AppendUvarint((*bp)[:0], uint64(len(rev)))
	buf = append(buf, rev...)
	buf, err := appendRead(buf, input, c.planFor(fields))
	if err != nil {
		return [sha256.Size]byte{}, err
	}
	*bp = buf
	return sha256.Sum256(buf), nil
}

// keyPlan is what a key is made of for one InputFields: the keys read at
// each level of the input, with their terms and text made once, in a fixed
// order. A nil *keyPlan takes a value whole.
type keyPlan struct {
	fields *policy.InputFields
	keys   []plannedKey
}

type plannedKey struct {
	term *ast.Term
	text []byte // the key as text, and ':'
	sub  *keyPlan
}

func newKeyPlan(f *policy.InputFields) *keyPlan {
	if f == nil {
		return nil
	}
	p := &keyPlan{fields: f}
	for _, k := range f.Keys() {
		text, _ := ast.String(k).AppendText(nil)
		p.keys = append(p.keys, plannedKey{term: ast.StringTerm(k), text: append(text, ':'), sub: newKeyPlan(f.Under(k))})
	}
	return p
}

// planFor returns the plan of fields, made once per revision: the last one
// made is kept.
func (c *Cache) planFor(fields *policy.InputFields) *keyPlan {
	if fields == nil {
		return nil
	}
	if p := c.plan.Load(); p != nil && p.fields == fields {
		return p
	}
	p := newKeyPlan(fields)
	c.plan.Store(p)
	return p
}

// appendRead writes the part of v that plan reads as text: of an object,
// the keys read that it has (key, ':', value, ','), between braces;
// anything else whole. Equal parts give equal text.
func appendRead(buf []byte, v ast.Value, plan *keyPlan) ([]byte, error) {
	obj, ok := v.(ast.Object)
	if plan == nil || !ok {
		ap, ok := v.(encoding.TextAppender)
		if !ok {
			return nil, fmt.Errorf("authz: cache: a %T cannot be written as text", v)
		}
		return ap.AppendText(buf)
	}
	buf = append(buf, '{')
	for i := range plan.keys {
		k := &plan.keys[i]
		t := obj.Get(k.term)
		if t == nil {
			continue
		}
		buf = append(buf, k.text...)
		var err error
		if buf, err = appendRead(buf, t.Value, k.sub); err != nil {
			return nil, err
		}
		buf = append(buf, ',')
	}
	return append(buf, '}'), nil
}
