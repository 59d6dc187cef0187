package redisstore_test

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// redisServer is a real redis-server (Debian's) on a loopback port, with no
// persistence: each test starts its own.
type redisServer struct {
	t    testing.TB
	opts redisOpts
	port int

	mu     sync.Mutex // guards cmd, exited
	cmd    *exec.Cmd
	exited chan struct{}
	log    lockedBuilder
}

// redisOpts changes how a redisServer starts.
type redisOpts struct {
	conf string      // a config file, read first (sentinel.conf)
	args []string    // more arguments; {port} is the port
	tls  *tls.Config // talk TLS to it (for the readiness check)
}

// haveRedis reports whether redis-server can be run; without it the tests
// skip, except under CI, where it is a failure (.ci/run installs it).
func haveRedis(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("redis-server is not installed (apt-get install -y redis-server)")
		}
		t.Skip("redis-server is not installed (apt-get install -y redis-server)")
	}
}

// startRedis starts redis-server on a free loopback port and stops it at
// the end of the test.
func startRedis(t testing.TB, opts redisOpts) *redisServer {
	t.Helper()
	haveRedis(t)
	r := &redisServer{t: t, opts: opts, port: freePort(t)}
	r.Start()
	t.Cleanup(r.Stop)
	return r
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Addr is host:port.
func (r *redisServer) Addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }

// URL is redis://host:port.
func (r *redisServer) URL() string { return "redis://" + r.Addr() }

// Start (re)starts the server on its port and waits until it answers PING.
func (r *redisServer) Start() {
	r.t.Helper()
	var args []string
	if r.opts.conf != "" {
		args = append(args, r.opts.conf)
	}
	args = append(args, "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", r.t.TempDir())
	for _, a := range r.opts.args {
		args = append(args, strings.ReplaceAll(a, "{port}", strconv.Itoa(r.port)))
	}
	cmd := exec.Command("redis-server", args...)
	cmd.Stdout, cmd.Stderr = &r.log, &r.log
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	r.mu.Lock()
	r.cmd, r.exited = cmd, exited
	r.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if pingRaw(r.Addr(), r.opts.tls) {
			return
		}
		select {
		case <-exited:
			r.t.Fatalf("redis-server exited: %s", r.log.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	r.t.Fatalf("redis-server did not answer on %s within 10s: %s", r.Addr(), r.log.String())
}

// Stop kills the server (as a crash would) and waits for it to exit.
func (r *redisServer) Stop() {
	r.mu.Lock()
	cmd, exited := r.cmd, r.exited
	r.cmd = nil
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGCONT) // in case it was paused
	_ = cmd.Process.Kill()
	<-exited
}

// Pause stops the process without closing its sockets: the kernel still
// accepts connections, but nothing answers (a hung Redis).
func (r *redisServer) Pause() { r.signal(syscall.SIGSTOP) }

// Resume undoes Pause.
func (r *redisServer) Resume() { r.signal(syscall.SIGCONT) }

func (r *redisServer) signal(sig syscall.Signal) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd != nil {
		if err := r.cmd.Process.Signal(sig); err != nil {
			r.t.Fatal(err)
		}
	}
}

// pingRaw sends PING over a new connection and reports whether PONG came.
func pingRaw(addr string, tc *tls.Config) bool {
	d := &net.Dialer{Timeout: time.Second}
	var c net.Conn
	var err error
	if tc != nil {
		c, err = tls.DialWithDialer(d, "tcp", addr, tc)
	} else {
		c, err = d.Dial("tcp", addr)
	}
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := fmt.Fprint(c, "PING\r\n"); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "+PONG")
}

// lockedBuilder collects a process's output from its own goroutines.
type lockedBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (w *lockedBuilder) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedBuilder) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
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
