package e2e

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// binary is `regoguard`, built once for the tests that run `serve`.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "regoguard-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = os.Getenv("TEST_REGOGUARD_BINARY") // .ci/run builds it once for every module
	if binary == "" {
		binary = filepath.Join(dir, "regoguard")
		build := exec.Command("go", "build", "-race", "-o", binary, ".")
		build.Dir = "../cmd/regoguard" // its own module, whose go.sum covers it
		build.Stderr = os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building regoguard:", err)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// lockedBuffer collects a process's log from its own goroutine.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// freeAddr returns a loopback address that nothing listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startServe runs `regoguard serve --listen addr args...` with this
// process's environment less the variables serve reads (REGOGUARD_*,
// fastapi-opa's names, as cmd/regoguard's cleanEnv), plus env, and waits
// until addr accepts connections.
func startServe(t *testing.T, addr string, env []string, args ...string) {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"serve", "--listen", addr}, args...)...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "REGOGUARD_") && !strings.HasPrefix(kv, "OPA_HOST=") && !strings.HasPrefix(kv, "OIDC_") && !strings.HasPrefix(kv, "APP_URI=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	logs := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("regoguard log:\n%s", logs)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return
		}
		select {
		case <-exited:
			t.Fatalf("regoguard serve exited:\n%s", logs)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("regoguard serve did not listen on %s within 30s:\n%s", addr, logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
