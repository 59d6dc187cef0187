package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/pflag"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/authn/redisstore"
)

// sessionStoreOptions choose where the browser logins (OIDC and SAML) keep
// logouts and used logins: this process's memory (one replica), or Redis
// (replicas share them).
type sessionStoreOptions struct {
	url        string
	timeout    time.Duration
	prefix     string
	serverSide bool

	store  authn.SessionStore     // opened once, shared by both logins
	data   authn.SessionDataStore // the same store, with --server-side-sessions
	closer func() error
}

func (o *sessionStoreOptions) register(fs *pflag.FlagSet) {
	fs.StringVar(&o.url, "session-store", "memory", "where browser logins keep logouts and used logins: memory (one replica), or a Redis URL shared by replicas: redis://[:password@]host:6379[/db], rediss://... (TLS), redis+sentinel://host:26379[,host2:26379]/master, redis+cluster://host:6379[,host2:6379] (prefer REGOGUARD_SESSION_STORE for a password)")
	fs.DurationVar(&o.timeout, "session-store-timeout", redisstore.DefaultTimeout, "longest wait for Redis on one request; past it the browser session is refused with 503 (API keys and bearer tokens never wait on it)")
	fs.StringVar(&o.prefix, "session-store-prefix", redisstore.DefaultPrefix, "prefix of the Redis keys; replicas that share sessions share it")
	fs.BoolVar(&o.serverSide, "server-side-sessions", false, "keep OIDC browser sessions in the Redis --session-store, sealed, with only a reference in the cookie (for providers whose tokens overflow cookies)")
}

// configured reports whether a shared store was asked for.
func (o *sessionStoreOptions) configured() bool {
	return o.url != "" && o.url != "memory"
}

// open sets store (and data) to what the logins use: nil for the in-memory
// default (each login makes its own), or one Redis store for both. A Redis
// that does not answer at start is reported, not fatal: browser sessions are
// refused (503) until it answers, and nothing else waits on it.
func (o *sessionStoreOptions) open(ctx context.Context, logger *slog.Logger) error {
	if o.serverSide && !o.configured() {
		return configErrorf("--server-side-sessions keeps sessions in the --session-store: give it a redis:// URL")
	}
	if !o.configured() || o.store != nil {
		return nil
	}
	if o.timeout <= 0 {
		return configErrorf("--session-store-timeout: must be positive, got %s", o.timeout)
	}
	if !strings.Contains(o.url, "://") {
		return configErrorf("--session-store: %q is neither memory nor a redis://, rediss://, redis+sentinel:// or redis+cluster:// URL", o.url)
	}
	// go-redis logs every failed dial on its own: while Redis is down that
	// is a line per request. The store logs each change of reachability
	// once; the client's own lines go to debug.
	redis.SetLogger(redisLog{logger})
	s, err := redisstore.New(redisstore.Config{URL: o.url, Timeout: o.timeout, Prefix: o.prefix, Logger: logger})
	if err != nil {
		return configErrorf("--session-store: %w", err)
	}
	redacted := redisstore.Redacted(o.url)
	if err := s.Ping(ctx); err != nil {
		logger.Warn("session store: Redis does not answer yet; browser sessions are refused (503) until it does",
			"redis", redacted, "error", err)
	} else {
		logger.Info("session store: Redis", "redis", redacted)
	}
	o.store, o.closer = s, s.Close
	if o.serverSide {
		o.data = s
	}
	return nil
}

// close releases the Redis client, if any.
func (o *sessionStoreOptions) close() {
	if o.closer != nil {
		_ = o.closer()
	}
}

// redisLog sends go-redis's internal log lines to slog at debug level.
type redisLog struct{ logger *slog.Logger }

func (l redisLog) Printf(ctx context.Context, format string, v ...any) {
	l.logger.DebugContext(ctx, "redis client: "+fmt.Sprintf(format, v...))
}
