// Package testopa starts a real OPA server (the opa binary, as a separate
// process on a loopback port) for tests and benchmarks of the remote mode.
package testopa

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Binary returns the path of the opa binary: $OPA_BIN, or opa on the
// PATH, or in $(go env GOPATH)/bin. It skips the test when there is none,
// unless CI is set, where a missing server is a failure: .ci/run installs it.
func Binary(tb testing.TB) string {
	tb.Helper()
	candidates := []string{os.Getenv("OPA_BIN")}
	if p, err := exec.LookPath("opa"); err == nil {
		candidates = append(candidates, p)
	}
	if home, err := os.UserHomeDir(); err == nil {
		candidates = append(candidates, filepath.Join(home, "go", "bin", "opa"))
	}
	if gp := os.Getenv("GOPATH"); gp != "" {
		candidates = append(candidates, filepath.Join(gp, "bin", "opa"))
	}
	for _, c := range candidates {
		if c == "" {
			continue
		}
		if info, err := os.Stat(c); err == nil && !info.IsDir() {
			return c
		}
	}
	msg := "the opa binary is not installed: go install github.com/open-policy-agent/opa@v1.22.3 (bash .ci/run does)"
	if os.Getenv("CI") != "" {
		tb.Fatal(msg)
	}
	tb.Skip(msg)
	return ""
}

// Server is a running OPA server.
type Server struct {
	URL string
	cmd *exec.Cmd
	log bytes.Buffer
}

// Start runs `opa run --server` on a free loopback port with the policy and
// data files in paths, waits until it answers, and stops it when the test
// ends. The server never reaches for the internet: the version check is off.
func Start(tb testing.TB, paths ...string) *Server {
	tb.Helper()
	s := StartDetached(tb, paths...)
	tb.Cleanup(s.Stop)
	return s
}

// StartDetached is Start without stopping the server at the end of the
// test: the caller stops it, for a server shared by several benchmarks.
func StartDetached(tb testing.TB, paths ...string) *Server {
	tb.Helper()
	bin := Binary(tb)
	addr := freeAddr(tb)
	args := append([]string{
		"run", "--server", "--skip-version-check",
		"--addr", addr, "--log-level", "error",
	}, paths...)
	s := &Server{URL: "http://" + addr}
	s.cmd = exec.Command(bin, args...)
	s.cmd.Stdout, s.cmd.Stderr = &s.log, &s.log
	if err := s.cmd.Start(); err != nil {
		tb.Fatalf("start opa: %v", err)
	}
	if err := s.waitHealthy(30 * time.Second); err != nil {
		s.Stop()
		tb.Fatalf("opa did not become healthy: %v\n%s", err, s.log.String())
	}
	return s
}

// PID is the server's process ID, for benchmarks that count its CPU time.
func (s *Server) PID() int { return s.cmd.Process.Pid }

// Stop kills the server and waits for it to exit; calling it again is
// harmless.
func (s *Server) Stop() {
	if s.cmd.Process == nil || s.cmd.ProcessState != nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
}

func (s *Server) waitHealthy(limit time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/health", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func freeAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
