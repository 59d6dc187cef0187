package redisstore_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/regoguard/regoguard/authn/redisstore"
)

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		url        string
		addrs      []string
		master     string
		db         int
		user, pass string
		sentPass   string
		tls        bool
	}{
		{url: "redis://127.0.0.1:6380", addrs: []string{"127.0.0.1:6380"}},
		{url: "redis://:s3cret@redis.internal/2", addrs: []string{"redis.internal:6379"}, db: 2, pass: "s3cret"},
		{url: "redis://app:s3cret@redis.internal:6379/0?dial_timeout=2s", addrs: []string{"redis.internal:6379"}, user: "app", pass: "s3cret"},
		{url: "rediss://redis.internal", addrs: []string{"redis.internal:6379"}, tls: true},
		{url: "redis+sentinel://s1:26379,s2,s3:26380/mymaster", addrs: []string{"s1:26379", "s2:26379", "s3:26380"}, master: "mymaster"},
		{url: "redis+sentinel://:p%40ss@s1/mymaster/3?sentinel_password=sp", addrs: []string{"s1:26379"}, master: "mymaster",
			db: 3, pass: "p@ss", sentPass: "sp"},
		{url: "rediss+sentinel://app:pw@s1:26379/m", addrs: []string{"s1:26379"}, master: "m", user: "app", pass: "pw", tls: true},
		{url: "redis://s1:26379/1?master_name=m&addr=s2:26379", addrs: []string{"s1:26379", "s2:26379"}, master: "m", db: 1},
		{url: "redis+cluster://:pw@n1,n2:7001", addrs: []string{"n1:6379", "n2:7001"}, pass: "pw"},
		{url: "rediss+cluster://n1:7000?pool_size=5", addrs: []string{"n1:7000"}, tls: true},
	} {
		o, err := redisstore.ParseURL(tc.url)
		if err != nil {
			t.Errorf("%s: %v", tc.url, err)
			continue
		}
		if !slices.Equal(o.Addrs, tc.addrs) || o.MasterName != tc.master || o.DB != tc.db || o.Username != tc.user ||
			o.Password != tc.pass || o.SentinelPassword != tc.sentPass || (o.TLSConfig != nil) != tc.tls {
			t.Errorf("%s: addrs %v master %q db %d user %q pass %q sentinel pass %q tls %v", tc.url, o.Addrs, o.MasterName,
				o.DB, o.Username, o.Password, o.SentinelPassword, o.TLSConfig != nil)
		}
		if (tc.master != "" || strings.Contains(tc.url, "+cluster")) && o.TLSConfig != nil && o.TLSConfig.ServerName != "" {
			t.Errorf("%s: TLS server name fixed to %q for every node", tc.url, o.TLSConfig.ServerName)
		}
	}
}

func TestParseURLRejects(t *testing.T) {
	for _, u := range []string{
		"",
		"localhost:6379",
		"memcached://x",
		"http://x",
		"redis://x/notadb",
		"redis://x?no_such_option=1",
		"redis+sentinel://s1:26379",
		"redis+sentinel://s1:26379/",
		"redis+sentinel://s1,,s2/m",
		"redis+sentinel://s1/m?addr=s2",
		"redis+sentinel://s1/m?password=x",
		"redis://user:hunter2@host:port",
		"redis+sentinel://user:hunter2@s1/m/x",
		"redis+cluster://n1/0",
		"redis+cluster://n1,,n2",
		"redis+cluster://n1?addr=n2",
		"redis+sentinel://s1/m?replica_only=true",
		"redis+sentinel://s1/m?route_by_latency=true",
		"redis://s1?master_name=m&route_randomly=true",
		"redis+cluster://n1?read_only=true",
	} {
		_, err := redisstore.ParseURL(u)
		if err == nil {
			t.Errorf("%q: no error", u)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%q: the password is in the error %q", u, err)
		}
	}
}

func TestRedacted(t *testing.T) {
	for in, want := range map[string]string{
		"redis://:hunter2@h:6379/0":                 "redis://:xxxxx@h:6379/0",
		"redis://u:hunter2@h":                       "redis://u:xxxxx@h",
		"redis://h?password=hunter2&master_name=m":  "redis://h?master_name=m&password=xxxxx",
		"redis+sentinel://h/m?sentinel_password=pw": "redis+sentinel://h/m?sentinel_password=xxxxx",
		"redis://h:6379":                            "redis://h:6379",
		"redis+sentinel://:pw@s1:26379,s2:26379/m":  "redis+sentinel://:xxxxx@s1:26379,s2:26379/m",
	} {
		if got := redisstore.Redacted(in); got != want {
			t.Errorf("Redacted(%q) = %q, want %q", in, got, want)
		}
	}
}
