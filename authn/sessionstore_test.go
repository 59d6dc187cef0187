package authn_test

import (
	"sync"
	"testing"
	"time"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/authn/sessionstoretest"
)

// The in-memory store keeps the guarantees every SessionStore must keep.
func TestMemorySessionStoreConformance(t *testing.T) {
	var mu sync.Mutex
	clock := time.Unix(1_000_000, 0)
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	sessionstoretest.Run(t, sessionstoretest.Config{
		New: func(*testing.T) authn.SessionStore {
			return authn.NewMemorySessionStore(authn.MemorySessionStoreConfig{Now: now})
		},
		Advance: func(d time.Duration) { mu.Lock(); clock = clock.Add(d); mu.Unlock() },
	})
}
