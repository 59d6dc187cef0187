package e2e

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// redisServer is a real redis-server (Debian's) on a loopback port. It
// keeps an append-only file in a directory of its own, so that a restart
// finds the revocations again, as a production Redis configured for it does.
// (Each write reaches the file at once; everysec only bounds what a machine
// crash, not a killed process, could lose.)
type redisServer struct {
	t    *testing.T
	port int
	dir  string

	mu     sync.Mutex // guards cmd, exited
	cmd    *exec.Cmd
	exited chan struct{}
	log    lockedBuffer
}

// startRedis starts redis-server and stops it at the end of the test. It
// skips the test when redis-server is missing, unless CI is set, where that
// is a failure (.ci/run installs it).
func startRedis(t *testing.T) *redisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("redis-server is not installed (apt-get install -y redis-server)")
		}
		t.Skip("redis-server is not installed (apt-get install -y redis-server)")
	}
	_, port, _ := net.SplitHostPort(freeAddr(t))
	r := &redisServer{t: t, dir: t.TempDir()}
	r.port, _ = strconv.Atoi(port)
	r.Start()
	t.Cleanup(r.Stop)
	return r
}

// URL is redis://127.0.0.1:port.
func (r *redisServer) URL() string { return "redis://" + r.addr() }

func (r *redisServer) addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }

// Start (re)starts the server on its port and waits until it answers PING.
func (r *redisServer) Start() {
	r.t.Helper()
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1", "--save", "",
		"--appendonly", "yes", "--appendfsync", "everysec", "--dir", r.dir)
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
		if redisPing(r.addr()) {
			return
		}
		select {
		case <-exited:
			r.t.Fatalf("redis-server exited: %s", r.log.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	r.t.Fatalf("redis-server did not answer within 10s: %s", r.log.String())
}

// Stop kills the server, as a crash would, and waits until it has exited.
func (r *redisServer) Stop() {
	r.mu.Lock()
	cmd, exited := r.cmd, r.exited
	r.cmd = nil
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGCONT)
	_ = cmd.Process.Kill()
	<-exited
}

// Pause freezes the process (SIGSTOP): connections are accepted by the
// kernel and never answered, as with a Redis stuck on a slow command.
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

func redisPing(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
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
