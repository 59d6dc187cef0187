// Package testnginx runs a real nginx (Debian's, with auth_request built in)
// as the test's own process on a loopback port, with a configuration the
// test writes, for tests and benchmarks of the forward-auth mode.
package testnginx

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Binary returns the path of nginx: $NGINX_BIN, nginx on the PATH, or
// /usr/sbin/nginx. It skips the test when there is none, unless CI is set,
// where that is a failure (.ci/run installs it).
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("NGINX_BIN"); p != "" {
		return p
	}
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx"
	}
	if os.Getenv("CI") != "" {
		t.Fatal("nginx is not installed (apt-get install -y nginx)")
	}
	t.Skip("nginx is not installed (apt-get install -y nginx)")
	return ""
}

// Server is a running nginx.
type Server struct {
	// URL is http://127.0.0.1:PORT.
	URL  string
	cmd  *exec.Cmd
	dir  string
	done chan struct{}
}

// Start writes the server block body (what goes inside server { ... },
// after listen) into a configuration of its own and starts nginx on a free
// loopback port. {port} in body stands for that port. nginx stops at the
// end of the test; its error log is printed when the test fails.
func Start(t testing.TB, body string) *Server {
	t.Helper()
	bin := Binary(t)
	dir := t.TempDir()
	port := freePort(t)
	for _, d := range []string{"logs", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	conf := fmt.Sprintf(`worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/logs/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path %[1]s/tmp/body;
    proxy_temp_path %[1]s/tmp/proxy;
    fastcgi_temp_path %[1]s/tmp/fastcgi;
    uwsgi_temp_path %[1]s/tmp/uwsgi;
    scgi_temp_path %[1]s/tmp/scgi;
    server {
        listen 127.0.0.1:%[2]d;
%[3]s
    }
}
`, dir, port, strings.ReplaceAll(body, "{port}", fmt.Sprint(port)))
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"-c", path, "-p", dir, "-g", "daemon off;"}
	if os.Geteuid() == 0 {
		// As root nginx would switch its workers to nobody, who cannot
		// read the test's temporary directory.
		args[len(args)-1] = "daemon off; user root;"
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting nginx: %v", err)
	}
	s := &Server{URL: fmt.Sprintf("http://127.0.0.1:%d", port), cmd: cmd, dir: dir, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-s.done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-s.done
		}
		if t.Failed() {
			if b, err := os.ReadFile(filepath.Join(dir, "logs", "error.log")); err == nil && len(b) > 0 {
				t.Logf("nginx error log:\n%s", b)
			}
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 200*time.Millisecond)
		if err == nil {
			c.Close()
			return s
		}
		select {
		case <-s.done:
			b, _ := os.ReadFile(filepath.Join(dir, "logs", "error.log"))
			t.Fatalf("nginx exited at start:\n%s", b)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx did not listen on port %d", port)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Client is an HTTP client that does not follow redirects.
func Client() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
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
