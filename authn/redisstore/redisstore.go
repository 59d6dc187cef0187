// Package redisstore keeps the server-side state of regoguard's browser
// flows in Redis, so that several replicas share it: a session logged out
// on one replica is refused on every other one, and a login (an OIDC state,
// a SAML assertion) used on one replica cannot be replayed on another.
//
// Redis may be standalone, behind Redis Sentinel or a Redis Cluster, over
// TLS or not (see [ParseURL]); reads never go to Redis replicas.
//
// A [Store] is an [authn.SessionStore]: pass it as BrowserConfig.Store
// (package authn) and Config.Store (package authn/saml). It is also an
// [authn.SessionDataStore]: pass it as BrowserConfig.SessionData as well to
// keep the sessions themselves in Redis (sealed), the cookie holding only a
// reference, for providers whose tokens overflow cookies. It is a module of
// its own, so that programs that keep the in-memory default never link a
// Redis client.
//
// # Keys
//
// Revocations, used logins and server-side sessions are kept apart, under
// Prefix + "revoked:" + id, Prefix + "login:" + id and Prefix + "session:" +
// id, each with the ttl the flows give (the rest of the session's lifetime;
// the login timeout). Ids are random session IDs or digests, and sessions
// are sealed by the flow before they reach the store: no readable
// credential is ever written to Redis.
//
// # When Redis is slow or down
//
// Every call is bounded by Config.Timeout (dial, write, read, pool wait and
// retries together), and an answer that cannot be had in time is an error,
// never a guess: a browser session whose revocation cannot be checked is
// refused with 503 (its cookie kept), a login that cannot be recorded does
// not complete, a logout that cannot be recorded answers 503. API keys and
// bearer tokens never consult the store and are unaffected. Nothing is
// cached: as soon as Redis answers again, so does the store. There is no
// fail-open mode: the [authn.SessionStore] contract forbids answering "not
// revoked" or "first use" without knowing.
package redisstore

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/regoguard/regoguard/authn"
)

// DefaultTimeout bounds each call of a [Store] when Config.Timeout is zero.
const DefaultTimeout = time.Second

// DefaultPrefix starts every key a [Store] writes when Config.Prefix is empty.
const DefaultPrefix = "regoguard:"

// MaxIDLen is the longest id a [Store] accepts, as the
// [authn.SessionStore] contract allows.
const MaxIDLen = 128

// Config configures a [Store]. Give URL or Client.
type Config struct {
	// URL of the Redis server (see [ParseURL] for the forms): standalone
	// (redis://, rediss:// for TLS), behind Redis Sentinel
	// (redis+sentinel://, rediss+sentinel://, or go-redis's redis://
	// ...?master_name=), or a Redis Cluster (redis+cluster://,
	// rediss+cluster://).
	URL string
	// Client is a go-redis client to use instead of URL (a cluster client,
	// say, or one with options no URL carries). The Store does not close it.
	// Give it a ContextTimeoutEnabled client: the Store bounds every call
	// with a context deadline.
	Client redis.UniversalClient
	// TLSConfig is used for rediss:// URLs instead of the default (the
	// system's roots, the URL's host as server name), for example to trust a
	// private CA. It is cloned, never modified. (regoguard serve reads the
	// SSL_CERT_FILE and SSL_CERT_DIR environment variables instead.)
	TLSConfig *tls.Config
	// Prefix starts every key. Default DefaultPrefix. Replicas that share
	// sessions share a prefix; deployments that must not, use two.
	Prefix string
	// Timeout bounds every call: dial, write, read, waiting for a pooled
	// connection and retries together. Default DefaultTimeout. It also caps
	// the dial, read and write timeouts the URL does not set.
	Timeout time.Duration
	// Logger reports when Redis stops and starts answering (once per
	// change, not per request). Default slog.Default().
	Logger *slog.Logger
}

// A Store is an [authn.SessionStore] in Redis. It is safe for concurrent
// use. Create it with [New]; Close it when done.
type Store struct {
	client  redis.UniversalClient
	owned   bool
	prefix  string
	timeout time.Duration
	logger  *slog.Logger
	down    atomic.Bool
	desc    string
}

var _ authn.SessionStore = (*Store)(nil)

// revokeScript records a revocation for at least ttl milliseconds: a record
// that already lives longer keeps its expiry (two logouts of one session
// never shorten its revocation).
var revokeScript = redis.NewScript(`
local ttl = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) < ttl then
  redis.call('SET', KEYS[1], '1', 'PX', ttl)
end
return 1
`)

// New returns a Store on cfg.Client, or on a client it makes from cfg.URL.
// It does not contact Redis (a replica starts while Redis is down, and
// refuses browser sessions until it answers); call [Store.Ping] to check.
func New(cfg Config) (*Store, error) {
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("redisstore: Timeout must not be negative, got %s", cfg.Timeout)
	}
	s := &Store{client: cfg.Client, prefix: cfg.Prefix, timeout: cfg.Timeout, logger: cfg.Logger}
	if s.prefix == "" {
		s.prefix = DefaultPrefix
	}
	if s.timeout == 0 {
		s.timeout = DefaultTimeout
	}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	switch {
	case cfg.Client != nil && cfg.URL != "":
		return nil, errors.New("redisstore: give URL or Client, not both")
	case cfg.Client != nil:
		s.desc = "client"
	case cfg.URL == "":
		return nil, errors.New("redisstore: URL or Client is required")
	default:
		opts, err := ParseURL(cfg.URL)
		if err != nil {
			return nil, err
		}
		if opts.TLSConfig != nil && cfg.TLSConfig != nil {
			tc := cfg.TLSConfig.Clone()
			if tc.ServerName == "" {
				tc.ServerName = opts.TLSConfig.ServerName
			}
			opts.TLSConfig = tc
		}
		bound(opts, s.timeout)
		switch {
		case opts.MasterName != "":
			s.client = redis.NewFailoverClient(opts.Failover())
		case opts.IsClusterMode:
			s.client = redis.NewClusterClient(opts.Cluster())
		default:
			s.client = redis.NewClient(opts.Simple())
		}
		s.owned = true
		s.desc = Redacted(cfg.URL)
	}
	return s, nil
}

// bound makes every network step of a client honour the per-call deadline,
// and caps the ones the URL left unset.
func bound(o *redis.UniversalOptions, timeout time.Duration) {
	o.ContextTimeoutEnabled = true
	for _, d := range []*time.Duration{&o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout, &o.PoolTimeout} {
		if *d == 0 {
			*d = timeout
		}
	}
	if o.MaxRetries == 0 {
		// One retry: a pooled connection that a Redis restart broke is
		// replaced at once instead of failing a request. More would only
		// wait longer on a Redis that is down.
		o.MaxRetries = 1
	}
	if o.DialerRetries == 0 {
		o.DialerRetries = 1
	}
	if o.TLSConfig != nil && o.Dialer == nil {
		// go-redis's default TLS dial (tls.DialWithDialer) ignores the
		// context: a Redis that accepts and never finishes the handshake
		// would hold a call for DialTimeout after the deadline. This one
		// stops at the call's deadline.
		d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: o.DialTimeout, KeepAlive: 30 * time.Second}, Config: o.TLSConfig}
		o.Dialer = d.DialContext
	}
}

// Close closes the client the Store made from Config.URL (not a
// Config.Client).
func (s *Store) Close() error {
	if !s.owned {
		return nil
	}
	return s.client.Close()
}

// Ping checks that Redis answers within the Store's timeout.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	return s.result("ping", s.client.Ping(ctx).Err())
}

// Revoke implements [authn.SessionStore]: it records id as logged out for at
// least ttl (a longer record already there is kept).
func (s *Store) Revoke(ctx context.Context, id string, ttl time.Duration) error {
	ms, err := checkArgs(id, ttl)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	return s.result("revoke", revokeScript.Run(ctx, s.client, []string{s.prefix + "revoked:" + id}, ms).Err())
}

// Revoked implements [authn.SessionStore]. An error (Redis unreachable, too
// slow) never reads as "not revoked".
func (s *Store) Revoked(ctx context.Context, id string) (bool, error) {
	if err := checkID(id); err != nil {
		return false, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	n, err := s.client.Exists(ctx, s.prefix+"revoked:"+id).Result()
	if err := s.result("revoked", err); err != nil {
		return false, err
	}
	return n == 1, nil
}

// UseLogin implements [authn.SessionStore] with SET NX PX: atomic across
// every replica sharing the Redis. An error never reads as "first use".
func (s *Store) UseLogin(ctx context.Context, id string, ttl time.Duration) (bool, error) {
	ms, err := checkArgs(id, ttl)
	if err != nil {
		return false, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	first, err := s.client.SetNX(ctx, s.prefix+"login:"+id, "1", time.Duration(ms)*time.Millisecond).Result()
	if err := s.result("use login", err); err != nil {
		return false, err
	}
	return first, nil
}

// checkID validates an id.
func checkID(id string) error {
	if id == "" || len(id) > MaxIDLen {
		return fmt.Errorf("redisstore: id must hold 1 to %d bytes, got %d", MaxIDLen, len(id))
	}
	return nil
}

// checkArgs validates an id and returns ttl in whole milliseconds, rounded
// up (Redis expiries are in milliseconds; rounding down could make a record
// live less than ttl).
func checkArgs(id string, ttl time.Duration) (int64, error) {
	if err := checkID(id); err != nil {
		return 0, err
	}
	if ttl <= 0 {
		return 0, fmt.Errorf("redisstore: ttl must be positive, got %s", ttl)
	}
	return int64((ttl + time.Millisecond - 1) / time.Millisecond), nil
}

// result wraps err with the operation and logs when Redis stops or starts
// answering.
func (s *Store) result(op string, err error) error {
	if err == nil {
		if s.down.CompareAndSwap(true, false) {
			s.logger.Info("session store: Redis answers again", "redis", s.desc)
		}
		return nil
	}
	if s.down.CompareAndSwap(false, true) {
		s.logger.Warn("session store: Redis does not answer; browser sessions are refused (503) until it does",
			"redis", s.desc, "error", err)
	}
	return fmt.Errorf("redisstore: %s: %w", op, err)
}

// Redacted returns rawURL with any password replaced by "xxxxx", for logs
// and error messages.
func Redacted(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(unparsable URL)"
	}
	q := u.Query()
	for _, k := range []string{"password", "sentinel_password"} {
		if q.Has(k) {
			q.Set(k, "xxxxx")
		}
	}
	u.RawQuery = q.Encode()
	return u.Redacted()
}

// ParseURL reads the URL of a Redis deployment into go-redis options:
//
//	redis://[[user]:password@]host[:port][/db][?option=value...]
//	rediss://...                        the same over TLS
//	redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/master[/db][?option=value...]
//	rediss+sentinel://...               the same over TLS (to sentinels and Redis)
//	redis://sentinel-host[:port][/db]?master_name=master[&addr=host:port...]
//	                                    go-redis's own form for sentinels
//	redis+cluster://[[user]:password@]host[:port][,host[:port]...][?option=value...]
//	rediss+cluster://...                a Redis Cluster, over TLS
//
// The default port is 6379 for Redis and 26379 for sentinels. In the
// redis+sentinel forms, the user and password authenticate to Redis; the
// options sentinel_username and sentinel_password authenticate to the
// sentinels. Other options are go-redis's (dial_timeout, read_timeout,
// pool_size, max_retries, skip_verify...; see its ParseURL). Over TLS the
// certificate of each node is checked against the name it is reached at
// (for sentinels and clusters, the address they give for each node).
//
// Options that send reads to Redis replicas (replica_only, read_only,
// route_by_latency, route_randomly) are refused: a replica may not have
// received a logout that the primary just recorded, and the store
// promises that a revocation is seen by every replica of regoguard from
// the moment it is recorded.
func ParseURL(rawURL string) (*redis.UniversalOptions, error) {
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		return nil, fmt.Errorf("redisstore: %s: not a redis://, rediss://, redis+sentinel:// or redis+cluster:// URL", Redacted(rawURL))
	}
	_, query, _ := strings.Cut(rest, "?")
	if q, err := url.ParseQuery(query); err == nil {
		for _, k := range []string{"replica_only", "read_only", "route_by_latency", "route_randomly"} {
			if q.Has(k) {
				return nil, fmt.Errorf("redisstore: %s: option %s would read from Redis replicas, which may miss a logout just recorded", Redacted(rawURL), k)
			}
		}
	}
	switch strings.ToLower(scheme) {
	case "redis", "rediss":
		u, err := url.Parse(rawURL)
		if err != nil {
			return nil, fmt.Errorf("redisstore: %s: %w", Redacted(rawURL), withoutURL(err))
		}
		if u.Query().Has("master_name") {
			o, err := redis.ParseFailoverURL(rawURL)
			if err != nil {
				return nil, fmt.Errorf("redisstore: %s: %w", Redacted(rawURL), withoutURL(err))
			}
			if o.TLSConfig != nil {
				o.TLSConfig.ServerName = "" // each node's own name
			}
			return failoverUniversal(o), nil
		}
		o, err := redis.ParseURL(rawURL)
		if err != nil {
			return nil, fmt.Errorf("redisstore: %s: %w", Redacted(rawURL), withoutURL(err))
		}
		return simpleUniversal(o), nil
	case "redis+sentinel", "rediss+sentinel":
		o, err := parseSentinelURL(strings.TrimSuffix(strings.ToLower(scheme), "+sentinel"), rest)
		if err != nil {
			return nil, fmt.Errorf("redisstore: %s: %w", Redacted(rawURL), withoutURL(err))
		}
		return failoverUniversal(o), nil
	case "redis+cluster", "rediss+cluster":
		o, err := parseClusterURL(strings.TrimSuffix(strings.ToLower(scheme), "+cluster"), rest)
		if err != nil {
			return nil, fmt.Errorf("redisstore: %s: %w", Redacted(rawURL), withoutURL(err))
		}
		return clusterUniversal(o), nil
	}
	return nil, fmt.Errorf("redisstore: %s: scheme %q is not redis, rediss, redis+sentinel, rediss+sentinel, redis+cluster or rediss+cluster", Redacted(rawURL), scheme)
}

// parseSentinelURL reads host[:port][,host[:port]...]/master[/db][?query]
// (after the scheme) by rewriting it into go-redis's failover form.
func parseSentinelURL(scheme, rest string) (*redis.FailoverOptions, error) {
	rest, rawQuery, _ := strings.Cut(rest, "?")
	authority, path, _ := strings.Cut(rest, "/")
	userinfo := ""
	if i := strings.LastIndex(authority, "@"); i >= 0 {
		userinfo, authority = authority[:i], authority[i+1:]
	}
	var hosts []string
	for _, h := range strings.Split(authority, ",") {
		if h == "" {
			return nil, errors.New("empty sentinel address")
		}
		if _, _, err := net.SplitHostPort(h); err != nil {
			h = net.JoinHostPort(strings.Trim(h, "[]"), "26379")
		}
		hosts = append(hosts, h)
	}
	master, db, _ := strings.Cut(path, "/")
	if master == "" {
		return nil, errors.New("the path must name the master: redis+sentinel://host:26379/mymaster")
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, err
	}
	if q.Has("master_name") || q.Has("addr") || q.Has("username") || q.Has("password") {
		return nil, errors.New("master_name, addr, username and password belong in the URL's path, host and user parts")
	}
	q.Set("master_name", master)
	for _, h := range hosts[1:] {
		q.Add("addr", h)
	}
	if userinfo != "" {
		user, pass, hasPass := strings.Cut(userinfo, ":")
		if !hasPass {
			user, pass = "", user // redis+sentinel://password@host
		}
		if user, err = url.PathUnescape(user); err != nil {
			return nil, err
		}
		if pass, err = url.PathUnescape(pass); err != nil {
			return nil, err
		}
		if user != "" {
			q.Set("username", user)
		}
		q.Set("password", pass)
	}
	sentinelAuth := ""
	if q.Has("sentinel_username") || q.Has("sentinel_password") {
		sentinelAuth = url.UserPassword(q.Get("sentinel_username"), q.Get("sentinel_password")).String() + "@"
		q.Del("sentinel_username")
		q.Del("sentinel_password")
	}
	u := scheme + "://" + sentinelAuth + hosts[0] + "/" + db + "?" + q.Encode()
	o, err := redis.ParseFailoverURL(u)
	if err != nil {
		return nil, err
	}
	if o.TLSConfig != nil {
		o.TLSConfig.ServerName = "" // each node's own name
	}
	return o, nil
}

// withoutURL drops the URL that net/url puts in its errors: it may hold a
// password.
func withoutURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// parseClusterURL reads [userinfo@]host[:port][,host[:port]...][?query]
// (after the scheme) by rewriting it into go-redis's cluster form.
func parseClusterURL(scheme, rest string) (*redis.ClusterOptions, error) {
	rest, rawQuery, _ := strings.Cut(rest, "?")
	authority, path, _ := strings.Cut(rest, "/")
	if path != "" {
		return nil, errors.New("a Redis Cluster has no databases: no path after the hosts")
	}
	userinfo := ""
	if i := strings.LastIndex(authority, "@"); i >= 0 {
		userinfo, authority = authority[:i]+"@", authority[i+1:]
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, err
	}
	if q.Has("addr") {
		return nil, errors.New("list the nodes in the host part: redis+cluster://h1:6379,h2:6379")
	}
	hosts := strings.Split(authority, ",")
	for i, h := range hosts {
		if h == "" {
			return nil, errors.New("empty node address")
		}
		if _, _, err := net.SplitHostPort(h); err != nil {
			hosts[i] = net.JoinHostPort(strings.Trim(h, "[]"), "6379")
		}
		if i > 0 {
			q.Add("addr", hosts[i])
		}
	}
	o, err := redis.ParseClusterURL(scheme + "://" + userinfo + hosts[0] + "?" + q.Encode())
	if err != nil {
		return nil, err
	}
	if o.TLSConfig != nil {
		o.TLSConfig.ServerName = "" // each node's own name
	}
	return o, nil
}

func clusterUniversal(o *redis.ClusterOptions) *redis.UniversalOptions {
	return &redis.UniversalOptions{
		Addrs: o.Addrs, IsClusterMode: true, Username: o.Username, Password: o.Password, TLSConfig: o.TLSConfig,
		ClientName: o.ClientName, Protocol: o.Protocol, MaxRetries: o.MaxRetries, MaxRedirects: o.MaxRedirects,
		MinRetryBackoff: o.MinRetryBackoff, MaxRetryBackoff: o.MaxRetryBackoff,
		DialTimeout: o.DialTimeout, DialerRetries: o.DialerRetries, DialerRetryTimeout: o.DialerRetryTimeout,
		ReadTimeout: o.ReadTimeout, WriteTimeout: o.WriteTimeout,
		PoolFIFO: o.PoolFIFO, PoolSize: o.PoolSize, PoolTimeout: o.PoolTimeout,
		MinIdleConns: o.MinIdleConns, MaxIdleConns: o.MaxIdleConns, MaxActiveConns: o.MaxActiveConns,
		ConnMaxIdleTime: o.ConnMaxIdleTime, ConnMaxLifetime: o.ConnMaxLifetime,
		DisableIdentity: o.DisableIdentity, IdentitySuffix: o.IdentitySuffix,
	}
}

func simpleUniversal(o *redis.Options) *redis.UniversalOptions {
	return &redis.UniversalOptions{
		Addrs: []string{o.Addr}, DB: o.DB, Username: o.Username, Password: o.Password, TLSConfig: o.TLSConfig,
		ClientName: o.ClientName, Protocol: o.Protocol, MaxRetries: o.MaxRetries,
		MinRetryBackoff: o.MinRetryBackoff, MaxRetryBackoff: o.MaxRetryBackoff,
		DialTimeout: o.DialTimeout, DialerRetries: o.DialerRetries, DialerRetryTimeout: o.DialerRetryTimeout,
		ReadTimeout: o.ReadTimeout, WriteTimeout: o.WriteTimeout,
		PoolFIFO: o.PoolFIFO, PoolSize: o.PoolSize, PoolTimeout: o.PoolTimeout,
		MinIdleConns: o.MinIdleConns, MaxIdleConns: o.MaxIdleConns, MaxActiveConns: o.MaxActiveConns,
		ConnMaxIdleTime: o.ConnMaxIdleTime, ConnMaxLifetime: o.ConnMaxLifetime,
		DisableIdentity: o.DisableIdentity, IdentitySuffix: o.IdentitySuffix,
	}
}

func failoverUniversal(o *redis.FailoverOptions) *redis.UniversalOptions {
	return &redis.UniversalOptions{
		Addrs: o.SentinelAddrs, MasterName: o.MasterName,
		SentinelUsername: o.SentinelUsername, SentinelPassword: o.SentinelPassword,
		DB: o.DB, Username: o.Username, Password: o.Password, TLSConfig: o.TLSConfig,
		ClientName: o.ClientName, Protocol: o.Protocol, MaxRetries: o.MaxRetries,
		MinRetryBackoff: o.MinRetryBackoff, MaxRetryBackoff: o.MaxRetryBackoff,
		DialTimeout: o.DialTimeout, DialerRetries: o.DialerRetries, DialerRetryTimeout: o.DialerRetryTimeout,
		ReadTimeout: o.ReadTimeout, WriteTimeout: o.WriteTimeout,
		PoolFIFO: o.PoolFIFO, PoolSize: o.PoolSize, PoolTimeout: o.PoolTimeout,
		MinIdleConns: o.MinIdleConns, MaxIdleConns: o.MaxIdleConns, MaxActiveConns: o.MaxActiveConns,
		ConnMaxIdleTime: o.ConnMaxIdleTime, ConnMaxLifetime: o.ConnMaxLifetime,
		DisableIdentity: o.DisableIdentity, IdentitySuffix: o.IdentitySuffix,
	}
}
