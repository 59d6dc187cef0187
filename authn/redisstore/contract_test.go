package redisstore_test

import (
	"testing"
	"time"

	"github.com/regoguard/regoguard/internal/testkit/testredis"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/authn/sessionstoretest"
)

// The Redis store keeps the contract every authn.SessionStore must keep
// (the same checks the in-memory store passes), against a real redis-server.
func TestStoreContract(t *testing.T) {
	srv := startRedis(t, testredis.Options{})
	sessionstoretest.Run(t, sessionstoretest.Config{
		New:     func(t *testing.T) authn.SessionStore { return newStore(t, srv.URL(), time.Second) },
		Advance: time.Sleep,
		TTL:     300 * time.Millisecond,
	})
}
