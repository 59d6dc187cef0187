// Package testredis runs a real redis-server (Debian's) on a loopback port
// for tests, and stops, freezes and restarts it on demand, as an outage
// would.
package testredis

import (
	"bufio"
	"crypto/tls"
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

// Options changes how a Server starts.
type Options struct {
	// Conf is a config file read first (sentinel.conf).
	Conf string
	// Args are more arguments; {port} stands for the server's port.
	Args []string
	// TLS, when set, is how the readiness check talks to a TLS-only server.
	TLS *tls.Config
	// AppendOnly keeps an append-only file in a directory of the Server's
	// own, so that a restart finds the data again, as a production Redis
	// configured for it does. Without it nothing is persisted.
	AppendOnly bool
}

// Server is a running (or stopped) redis-server.
type Server struct {
	t    testing.TB
	opts Options
	port int
	dir  string

	mu     sync.Mutex // guards cmd, exited
	cmd    *exec.Cmd
	exited chan struct{}
	log    lockedBuilder
}

// Start starts redis-server on a free loopback port and stops it at the end
// of the test. It skips the test when redis-server is missing, unless CI is
// set, where that is a failure (.ci/run installs it).
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("redis-server is not installed (apt-get install -y redis-server)")
		}
		t.Skip("redis-server is not installed (apt-get install -y redis-server)")
	}
	s := &Server{t: t, opts: opts, port: freePort(t), dir: t.TempDir()}
	s.Start()
	t.Cleanup(s.Stop)
	return s
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
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// URL is redis://host:port.
func (s *Server) URL() string { return "redis://" + s.Addr() }

// Log is what the server printed.
func (s *Server) Log() string { return s.log.String() }

// Start (re)starts the server on its port and waits until it answers PING.
func (s *Server) Start() {
	s.t.Helper()
	var args []string
	if s.opts.Conf != "" {
		args = append(args, s.opts.Conf)
	}
	args = append(args, "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--save", "")
	if s.opts.AppendOnly {
		// Each write reaches the file at once; everysec only bounds what a
		// machine crash, not a killed process, could lose.
		args = append(args, "--appendonly", "yes", "--appendfsync", "everysec", "--dir", s.dir)
	} else {
		args = append(args, "--appendonly", "no", "--dir", s.t.TempDir())
	}
	for _, a := range s.opts.Args {
		args = append(args, strings.ReplaceAll(a, "{port}", strconv.Itoa(s.port)))
	}
	cmd := exec.Command("redis-server", args...)
	cmd.Stdout, cmd.Stderr = &s.log, &s.log
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if Ping(s.Addr(), s.opts.TLS) {
			return
		}
		select {
		case <-exited:
			s.t.Fatalf("redis-server exited: %s", s.log.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	s.t.Fatalf("redis-server did not answer on %s within 10s: %s", s.Addr(), s.log.String())
}

// Stop kills the server, as a crash would, and waits until it has exited.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGCONT) // in case it was paused
	_ = cmd.Process.Kill()
	<-exited
}

// Pause freezes the process (SIGSTOP) without closing its sockets: the
// kernel still accepts connections, and nothing answers (a hung Redis).
func (s *Server) Pause() { s.signal(syscall.SIGSTOP) }

// Resume undoes Pause.
func (s *Server) Resume() { s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		if err := s.cmd.Process.Signal(sig); err != nil {
			s.t.Fatal(err)
		}
	}
}

// Ping sends PING over a new connection (TLS when tc is set) and reports
// whether PONG came back within a second.
func Ping(addr string, tc *tls.Config) bool {
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
