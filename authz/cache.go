package authz

import (
	"context"
	"crypto/sha256"
	"errors"
	"sync"
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
	// KeyFields, when set, are the only top-level input fields a decision
	// is keyed on, for example method, path and user. Leave out fields that
	// change on every request but that the policy does not read
	// (remote_addr, most headers), or every lookup misses. The policy must
	// not read any other field: a decision would be reused for inputs that
	// differ where it matters.
	KeyFields []string
}

// Cache memoizes the decisions of an evaluator whose policy is
// deterministic: the same input gives the same decision. It keys decisions
// by a SHA-256 hash of the canonical input (or of the KeyFields), bounds
// them in number and age, and drops them all whenever the evaluator's
// policy revision changes. Errors are never cached.
//
// Do not cache a policy that reads the time, calls http.send or reads data
// that changes without a new revision.
type Cache struct {
	eval     Evaluator
	revision func() string
	ttl      time.Duration
	keys     []*ast.Term
	entries  *lru.Cache[[sha256.Size]byte, cached]
	mu       sync.Mutex // guards seenRev
	seenRev  string
	bufs     sync.Pool
	stats    cacheStats
}

type cached struct {
	d       policy.Decision
	expires time.Time
}

// NewCache returns a Cache in front of eval. When eval has a Revision()
// method (as *policy.Engine has), a new revision empties the cache.
func NewCache(eval Evaluator, cfg CacheConfig) (*Cache, error) {
	if eval == nil {
		return nil, errors.New("authz: cache needs an evaluator")
	}
	size := orDefault(cfg.Size, 10000)
	entries, err := lru.New[[sha256.Size]byte, cached](size)
	if err != nil {
		return nil, err
	}
	c := &Cache{eval: eval, ttl: orDefault(cfg.TTL, 10*time.Second), entries: entries}
	if r, ok := eval.(interface{ Revision() string }); ok {
		c.revision = r.Revision
	}
	for _, f := range cfg.KeyFields {
		c.keys = append(c.keys, ast.StringTerm(f))
	}
	c.bufs.New = func() any { b := make([]byte, 0, 1024); return &b }
	return c, nil
}

// Eval implements [Evaluator].
func (c *Cache) Eval(ctx context.Context, input ast.Value) (policy.Decision, error) {
	c.dropOnNewRevision()
	key, err := c.key(input)
	if err != nil {
		c.stats.misses.Add(1)
		return c.eval.Eval(ctx, input)
	}
	now := time.Now()
	if e, ok := c.entries.Get(key); ok && now.Before(e.expires) {
		c.stats.hits.Add(1)
		return e.d, nil
	}
	c.stats.misses.Add(1)
	d, err := c.eval.Eval(ctx, input)
	if err != nil {
		return policy.Decision{Revision: d.Revision}, err
	}
	c.entries.Add(key, cached{d: d, expires: now.Add(c.ttl)})
	return d, nil
}

// Revision passes the evaluator's revision on, so a Cache can stand where
// an engine did.
func (c *Cache) Revision() string {
	if c.revision == nil {
		return ""
	}
	return c.revision()
}

// Len returns the number of cached decisions.
func (c *Cache) Len() int { return c.entries.Len() }

func (c *Cache) dropOnNewRevision() {
	if c.revision == nil {
		return
	}
	rev := c.revision()
	c.mu.Lock()
	changed := rev != c.seenRev
	c.seenRev = rev
	c.mu.Unlock()
	if changed {
		c.entries.Purge()
	}
}

func (c *Cache) key(input ast.Value) ([sha256.Size]byte, error) {
	v := input
	if len(c.keys) > 0 {
		obj, ok := input.(ast.Object)
		if !ok {
			return [sha256.Size]byte{}, errors.New("input is not an object")
		}
		sub := ast.NewObjectWithCapacity(len(c.keys))
		for _, k := range c.keys {
			if t := obj.Get(k); t != nil {
				sub.Insert(k, t)
			}
		}
		v = sub
	}
	bp := c.bufs.Get().(*[]byte)
	defer c.bufs.Put(bp)
	// Object keys and set members are written sorted: equal values give
	// equal text.
	ap, ok := v.(interface{ AppendText([]byte) ([]byte, error) })
	if !ok {
		return [sha256.Size]byte{}, errors.New("input cannot be written as text")
	}
	buf, err := ap.AppendText((*bp)[:0])
	if err != nil {
		return [sha256.Size]byte{}, err
	}
	*bp = buf
	return sha256.Sum256(buf), nil
}
