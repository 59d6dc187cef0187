// Package sessionstoretest checks that an [authn.SessionStore]
// implementation keeps the guarantees the browser flows rely on, as
// testing/fstest does for file systems. A store on Redis (or anything
// shared between replicas) runs [Run] in its own tests against a real server.
package sessionstoretest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/regoguard/regoguard/authn"
)

// Config describes the store under test.
type Config struct {
	// New returns an empty store. It is called once per subtest.
	New func(t *testing.T) authn.SessionStore
	// Advance moves the store's clock forward by d: a fake clock's, or a
	// sleep for a store on real time. Nil skips the checks of expiry.
	Advance func(d time.Duration)
	// TTL is the ttl the expiry checks use, and Advance(2*TTL) must expire
	// it. Default one minute (choose about a second for a real clock).
	TTL time.Duration
}

// Run checks the store: UseLogin reports true once per id, also under
// concurrent calls (atomicity); Revoke is seen by Revoked; logins and
// revocations are kept apart; a repeated Revoke keeps the later expiry;
// entries expire after their ttl; a cancelled context gets an error, never
// an answer.
func Run(t *testing.T, cfg Config) {
	t.Helper()
	ttl := cfg.TTL
	if ttl <= 0 {
		ttl = time.Minute
	}
	ctx := context.Background()
	uniq := func(kind string) string { return fmt.Sprintf("sessionstoretest-%s-%d", kind, time.Now().UnixNano()) }

	t.Run("UseLoginOnce", func(t *testing.T) {
		s := cfg.New(t)
		id := uniq("login")
		if ok, err := s.UseLogin(ctx, id, ttl); !ok || err != nil {
			t.Fatalf("first UseLogin: %v, %v; want true, nil", ok, err)
		}
		if ok, err := s.UseLogin(ctx, id, ttl); ok || err != nil {
			t.Fatalf("second UseLogin: %v, %v; want false, nil (a replay)", ok, err)
		}
	})
	t.Run("UseLoginAtomic", func(t *testing.T) {
		s := cfg.New(t)
		id := uniq("race")
		var wins, fails atomic.Int32
		var wg sync.WaitGroup
		for range 32 {
			wg.Go(func() {
				ok, err := s.UseLogin(ctx, id, ttl)
				switch {
				case err != nil:
					fails.Add(1)
				case ok:
					wins.Add(1)
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 || fails.Load() != 0 {
			t.Fatalf("32 concurrent UseLogin of one id: %d true, %d errors; want exactly 1 true", wins.Load(), fails.Load())
		}
	})
	t.Run("Revoke", func(t *testing.T) {
		s := cfg.New(t)
		id := uniq("session")
		if r, err := s.Revoked(ctx, id); r || err != nil {
			t.Fatalf("Revoked before Revoke: %v, %v", r, err)
		}
		if err := s.Revoke(ctx, id, ttl); err != nil {
			t.Fatal(err)
		}
		if r, err := s.Revoked(ctx, id); !r || err != nil {
			t.Fatalf("Revoked after Revoke: %v, %v; want true", r, err)
		}
	})
	t.Run("KindsApart", func(t *testing.T) {
		s := cfg.New(t)
		id := uniq("both")
		if ok, err := s.UseLogin(ctx, id, ttl); !ok || err != nil {
			t.Fatal(ok, err)
		}
		if r, err := s.Revoked(ctx, id); r || err != nil {
			t.Fatalf("a used login reads as a revoked session: %v, %v", r, err)
		}
		if err := s.Revoke(ctx, id+"-r", ttl); err != nil {
			t.Fatal(err)
		}
		if ok, err := s.UseLogin(ctx, id+"-r", ttl); !ok || err != nil {
			t.Fatalf("a revoked session id reads as a used login: %v, %v", ok, err)
		}
	})
	t.Run("CancelledContext", func(t *testing.T) {
		s := cfg.New(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := s.Revoked(cctx, uniq("c")); err == nil {
			t.Error("Revoked answered on a cancelled context")
		}
		if ok, err := s.UseLogin(cctx, uniq("c"), ttl); err == nil || ok {
			t.Errorf("UseLogin on a cancelled context: %v, %v; want an error", ok, err)
		}
		if err := s.Revoke(cctx, uniq("c"), ttl); err == nil {
			t.Error("Revoke succeeded on a cancelled context")
		}
	})
	if cfg.Advance == nil {
		return
	}
	t.Run("Expiry", func(t *testing.T) {
		s := cfg.New(t)
		login, short, long := uniq("l"), uniq("s"), uniq("x")
		if ok, err := s.UseLogin(ctx, login, ttl); !ok || err != nil {
			t.Fatal(ok, err)
		}
		if err := s.Revoke(ctx, short, ttl); err != nil {
			t.Fatal(err)
		}
		if err := s.Revoke(ctx, long, ttl); err != nil {
			t.Fatal(err)
		}
		if err := s.Revoke(ctx, long, 10*ttl); err != nil { // revoked again, for longer
			t.Fatal(err)
		}
		cfg.Advance(2 * ttl)
		if ok, err := s.UseLogin(ctx, login, ttl); !ok || err != nil {
			t.Errorf("UseLogin after the ttl: %v, %v; want true", ok, err)
		}
		if r, err := s.Revoked(ctx, short); r || err != nil {
			t.Errorf("Revoked after the ttl: %v, %v; want false", r, err)
		}
		if r, err := s.Revoked(ctx, long); !r || err != nil {
			t.Errorf("a repeated Revoke lost its later expiry: %v, %v", r, err)
		}
	})
}
