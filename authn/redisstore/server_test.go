package redisstore_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/regoguard/regoguard/internal/testkit/testredis"
)

// startRedis starts a real redis-server, with no persistence, for one test.
func startRedis(t testing.TB, opts testredis.Options) *testredis.Server {
	t.Helper()
	return testredis.Start(t, opts)
}

// writeFile writes content to a file in a test directory and returns its path.
func writeFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
