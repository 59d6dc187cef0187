package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/regoguard/regoguard/internal/testkit/testredis"

	"github.com/redis/go-redis/v9"

	"github.com/regoguard/regoguard/authn/redisstore"
)

// newStore returns a Store on srv with a short timeout, closed at the end of
// the test.
func newStore(t *testing.T, url string, timeout time.Duration) *redisstore.Store {
	t.Helper()
	s, err := redisstore.New(redisstore.Config{URL: url, Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// rawClient talks to srv directly, to look at what the store wrote.
func rawClient(t *testing.T, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestStoreSemantics(t *testing.T) {
	srv := startRedis(t, testredis.Options{})
	s := newStore(t, srv.URL(), time.Second)
	ctx := context.Background()

	if revoked, err := s.Revoked(ctx, "oidc-session:a"); err != nil || revoked {
		t.Fatalf("Revoked before Revoke = %v, %v; want false, nil", revoked, err)
	}
	if err := s.Revoke(ctx, "oidc-session:a", time.Minute); err != nil {
		t.Fatal(err)
	}
	if revoked, err := s.Revoked(ctx, "oidc-session:a"); err != nil || !revoked {
		t.Fatalf("Revoked after Revoke = %v, %v; want true, nil", revoked, err)
	}
	if revoked, _ := s.Revoked(ctx, "oidc-session:b"); revoked {
		t.Fatal("another session is revoked too")
	}

	first, err := s.UseLogin(ctx, "oidc-login:x", time.Minute)
	if err != nil || !first {
		t.Fatalf("first UseLogin = %v, %v; want true, nil", first, err)
	}
	if again, err := s.UseLogin(ctx, "oidc-login:x", time.Minute); err != nil || again {
		t.Fatalf("second UseLogin = %v, %v; want false (a replay), nil", again, err)
	}

	// The two kinds are apart: one id revoked is not a login used, and the
	// reverse.
	if first, _ := s.UseLogin(ctx, "oidc-session:a", time.Minute); !first {
		t.Error("a revocation made the same id read as a used login")
	}
	if revoked, _ := s.Revoked(ctx, "oidc-login:x"); revoked {
		t.Error("a used login made the same id read as revoked")
	}

	// What is in Redis: prefixed keys with an expiry, never without one.
	raw := rawClient(t, srv.Addr())
	for _, k := range []string{"regoguard:revoked:oidc-session:a", "regoguard:login:oidc-login:x"} {
		ttl, err := raw.PTTL(ctx, k).Result()
		if err != nil || ttl <= 0 || ttl > time.Minute {
			t.Errorf("PTTL %s = %v, %v; want an expiry of at most a minute", k, ttl, err)
		}
	}

	// A second logout with a shorter ttl does not shorten the revocation.
	if err := s.Revoke(ctx, "oidc-session:a", 10*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if ttl, _ := raw.PTTL(ctx, "regoguard:revoked:oidc-session:a").Result(); ttl < 50*time.Second {
		t.Errorf("a shorter Revoke cut the revocation to %v", ttl)
	}
	// A longer one extends it.
	if err := s.Revoke(ctx, "oidc-session:a", time.Hour); err != nil {
		t.Fatal(err)
	}
	if ttl, _ := raw.PTTL(ctx, "regoguard:revoked:oidc-session:a").Result(); ttl < 59*time.Minute {
		t.Errorf("a longer Revoke left the revocation at %v", ttl)
	}
}

func TestStoreRejectsBadArguments(t *testing.T) {
	// No server: arguments are checked before Redis is asked.
	s := newStore(t, "redis://127.0.0.1:1", 100*time.Millisecond)
	ctx := context.Background()
	long := string(make([]byte, redisstore.MaxIDLen+1))
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"empty id Revoke", func() error { return s.Revoke(ctx, "", time.Minute) }},
		{"long id Revoke", func() error { return s.Revoke(ctx, long, time.Minute) }},
		{"zero ttl Revoke", func() error { return s.Revoke(ctx, "a", 0) }},
		{"negative ttl UseLogin", func() error { _, err := s.UseLogin(ctx, "a", -time.Second); return err }},
		{"empty id UseLogin", func() error { _, err := s.UseLogin(ctx, "", time.Minute); return err }},
		{"long id Revoked", func() error { _, err := s.Revoked(ctx, long); return err }},
	} {
		if err := tc.call(); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
	if _, err := redisstore.New(redisstore.Config{}); err == nil {
		t.Error("New with neither URL nor Client: no error")
	}
	if _, err := redisstore.New(redisstore.Config{URL: "redis://x", Client: redis.NewClient(&redis.Options{})}); err == nil {
		t.Error("New with URL and Client: no error")
	}
	if _, err := redisstore.New(redisstore.Config{URL: "redis://x", Timeout: -time.Second}); err == nil {
		t.Error("New with a negative Timeout: no error")
	}
}

func TestStoreTTLExpiry(t *testing.T) {
	srv := startRedis(t, testredis.Options{})
	s := newStore(t, srv.URL(), time.Second)
	ctx := context.Background()
	if err := s.Revoke(ctx, "oidc-session:short", 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if first, err := s.UseLogin(ctx, "oidc-login:short", 100*time.Millisecond); err != nil || !first {
		t.Fatalf("UseLogin = %v, %v", first, err)
	}
	if revoked, _ := s.Revoked(ctx, "oidc-session:short"); !revoked {
		t.Fatal("not revoked right after Revoke")
	}
	time.Sleep(250 * time.Millisecond)
	if revoked, err := s.Revoked(ctx, "oidc-session:short"); err != nil || revoked {
		t.Errorf("Revoked after the ttl = %v, %v; want false (expired)", revoked, err)
	}
	if first, err := s.UseLogin(ctx, "oidc-login:short", time.Minute); err != nil || !first {
		t.Errorf("UseLogin after the ttl = %v, %v; want true (the record expired)", first, err)
	}
	// A ttl under a millisecond is rounded up, not down to "no expiry" or
	// an error from Redis.
	if first, err := s.UseLogin(ctx, "oidc-login:tiny", time.Microsecond); err != nil || !first {
		t.Errorf("UseLogin with a 1µs ttl = %v, %v", first, err)
	}
}

// Two replicas (two stores, two connection pools) race to use the same
// logins: for each, exactly one call wins.
func TestStoreConcurrentUseOnce(t *testing.T) {
	srv := startRedis(t, testredis.Options{})
	replicas := []*redisstore.Store{newStore(t, srv.URL(), 2*time.Second), newStore(t, srv.URL(), 2*time.Second)}
	ctx := context.Background()
	for i := range 20 {
		id := fmt.Sprintf("oidc-login:race-%d", i)
		var wins, errs atomic.Int32
		var wg sync.WaitGroup
		for g := range 16 {
			wg.Go(func() {
				first, err := replicas[g%2].UseLogin(ctx, id, time.Minute)
				if err != nil {
					errs.Add(1)
				}
				if first {
					wins.Add(1)
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 || errs.Load() != 0 {
			t.Fatalf("%s: %d winners, %d errors; want exactly 1 winner", id, wins.Load(), errs.Load())
		}
	}
}

// failsClosed checks that, with Redis unable to answer, every call returns
// an error (never "not revoked" or "first use") within bound.
func failsClosed(t *testing.T, s *redisstore.Store, bound time.Duration) {
	t.Helper()
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		call func() (bad bool, err error)
	}{
		{"Revoked", func() (bool, error) { r, err := s.Revoked(ctx, "oidc-session:a"); return !r && err == nil, err }},
		{"UseLogin", func() (bool, error) { f, err := s.UseLogin(ctx, "oidc-login:new", time.Minute); return f, err }},
		{"Revoke", func() (bool, error) { err := s.Revoke(ctx, "oidc-session:b", time.Minute); return err == nil, err }},
	} {
		start := time.Now()
		done := make(chan struct{})
		var bad bool
		var err error
		go func() { bad, err = tc.call(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * bound):
			t.Fatalf("%s hangs: no answer after %v", tc.name, 10*bound)
		}
		took := time.Since(start)
		t.Logf("%s with Redis unable to answer: %v after %v", tc.name, err, took.Round(time.Millisecond))
		if bad || err == nil {
			t.Errorf("%s with Redis unable to answer: bad answer %v, err %v; want an error", tc.name, bad, err)
		}
		if took > bound {
			t.Errorf("%s took %v, want at most %v", tc.name, took, bound)
		}
	}
}

func TestStoreRedisStoppedAndRestarted(t *testing.T) {
	srv := startRedis(t, testredis.Options{})
	const timeout = 300 * time.Millisecond
	s := newStore(t, srv.URL(), timeout)
	ctx := context.Background()
	if err := s.Revoke(ctx, "oidc-session:a", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}

	srv.Stop() // a crash: connections reset, the port refuses
	failsClosed(t, s, slack(timeout))
	if err := s.Ping(ctx); err == nil {
		t.Error("Ping with Redis stopped: no error")
	}

	srv.Start() // back, empty (no persistence in this test)
	deadline := time.Now().Add(5 * time.Second)
	for {
		first, err := s.UseLogin(ctx, "oidc-login:after-restart", time.Minute)
		if err == nil && first {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the store did not recover within 5s of Redis restarting: %v, %v", first, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := s.Revoke(ctx, "oidc-session:c", time.Minute); err != nil {
		t.Errorf("Revoke after recovery: %v", err)
	}
	if revoked, err := s.Revoked(ctx, "oidc-session:c"); err != nil || !revoked {
		t.Errorf("Revoked after recovery = %v, %v", revoked, err)
	}
}

func TestStoreRedisHung(t *testing.T) {
	srv := startRedis(t, testredis.Options{})
	const timeout = 300 * time.Millisecond
	s := newStore(t, srv.URL(), timeout)
	ctx := context.Background()
	if err := s.Revoke(ctx, "oidc-session:a", time.Minute); err != nil {
		t.Fatal(err)
	}
	// SIGSTOP: the kernel still accepts and buffers, nobody answers (a
	// Redis stuck on a slow command, a host swapping).
	srv.Pause()
	failsClosed(t, s, slack(timeout))

	// A caller's own deadline, shorter than the store's, is honoured too.
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := s.Revoked(cctx, "oidc-session:a"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Revoked with the caller's deadline passed: %v, want context.DeadlineExceeded", err)
	}
	if took := time.Since(start); took > slack(50*time.Millisecond) {
		t.Errorf("the caller's 50ms deadline took %v", took)
	}

	srv.Resume()
	deadline := time.Now().Add(5 * time.Second)
	for {
		revoked, err := s.Revoked(ctx, "oidc-session:a")
		if err == nil {
			if !revoked {
				t.Fatal("after the pause the revocation is gone")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the store did not recover within 5s of Redis resuming: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A Client given in Config is used as is, with the store's deadline on
// every call, and is not closed by Close.
func TestStoreWithClient(t *testing.T) {
	srv := startRedis(t, testredis.Options{})
	c := redis.NewClient(&redis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true})
	defer c.Close()
	s, err := redisstore.New(redisstore.Config{Client: c, Prefix: "app1:"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if first, err := s.UseLogin(ctx, "oidc-login:p", time.Minute); err != nil || !first {
		t.Fatalf("UseLogin = %v, %v", first, err)
	}
	if n, _ := c.Exists(ctx, "app1:login:oidc-login:p").Result(); n != 1 {
		t.Error("the key is not under the configured prefix")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Ping(ctx).Err(); err != nil {
		t.Errorf("Close closed the caller's client: %v", err)
	}
}

// slack is how long a call bounded by timeout may take on a loaded machine
// running the race detector: the timeout, plus time to be scheduled. The
// tests check a bound, not a precise figure; a hang is 10 times that.
func slack(timeout time.Duration) time.Duration { return timeout + 700*time.Millisecond }
