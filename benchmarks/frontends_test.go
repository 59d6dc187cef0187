package benchmarks

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/authz"
	"github.com/regoguard/regoguard/authzen"
	"github.com/regoguard/regoguard/extauthz"
	"github.com/regoguard/regoguard/extauthzgrpc"
	"github.com/regoguard/regoguard/internal/testissuer"
	"github.com/regoguard/regoguard/internal/testnginx"
	"github.com/regoguard/regoguard/internal/testopa"
	"github.com/regoguard/regoguard/policy"
)

// primerToken is an HS256 token of OPA's Envoy primer, valid for an hour.
func primerToken() string {
	enc := base64.RawURLEncoding
	now := time.Now().Unix()
	payload, _ := json.Marshal(map[string]any{"role": "guest", "sub": "YWxpY2U=", "nbf": now - 60, "exp": now + 3600})
	signing := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc.EncodeToString(payload)
	mac := hmac.New(sha256.New, []byte("secret"))
	mac.Write([]byte(signing))
	return signing + "." + enc.EncodeToString(mac.Sum(nil))
}

// BenchmarkExtAuthzCheck measures Envoy ext_authz Check calls, side by
// side (cpu-µs/op counts the client's CPU and the decider's, whichever
// process it runs in: the fair measure on a loaded machine, where a second
// process gets a second share of the CPUs): regoguard's Check server (a real gRPC client over loopback TCP,
// the policy in-process) and the same decision asked of an OPA server over
// its REST API with the input opa-envoy-plugin would build (opa-envoy-plugin
// itself cannot be built here). The policy is OPA's Envoy primer: the
// policy verifies an HS256 token itself. Every call is allowed.
func BenchmarkExtAuthzCheck(b *testing.B) {
	ctx := context.Background()
	dir := filepath.Join("testdata", "envoy")
	tok := primerToken()
	req := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: "10.0.0.7", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 61402}}}}},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Id: "1", Method: "GET", Path: "/people/1", Host: "app", Protocol: "HTTP/1.1",
			Headers: map[string]string{":authority": "app", ":method": "GET", ":path": "/people/1", "authorization": "Bearer " + tok,
				"user-agent": "bench", "x-request-id": "7bca5c86"},
		}},
	}}

	b.Run("regoguard-grpc", func(b *testing.B) {
		p, err := policy.LoadFiles(dir)
		if err != nil {
			b.Fatal(err)
		}
		engine, err := policy.New(ctx, policy.Config{Decision: extauthz.DefaultDecision, ResultParser: extauthz.ParseResult,
			Logger: slog.New(slog.DiscardHandler)}, p)
		if err != nil {
			b.Fatal(err)
		}
		guard, err := authz.New(authz.Config{Authenticator: authn.None(slog.New(slog.DiscardHandler)), Evaluator: engine,
			Layout: authz.LayoutEnvoy, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			b.Fatal(err)
		}
		srv, err := extauthzgrpc.New(extauthzgrpc.Config{Guard: guard})
		if err != nil {
			b.Fatal(err)
		}
		g := grpc.NewServer()
		srv.Register(g)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		go func() { _ = g.Serve(ln) }()
		defer g.Stop()
		conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close()
		client := authv3.NewAuthorizationClient(conn)
		b.ReportAllocs()
		cpu0 := selfCPU()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				resp, err := client.Check(ctx, req)
				if err != nil || resp.GetStatus().GetCode() != int32(codes.OK) {
					b.Errorf("Check: %v %v", resp, err)
					return
				}
			}
		})
		reportRate(b)
		b.ReportMetric(float64((selfCPU()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
	})

	b.Run("opa-server-rest", func(b *testing.B) {
		srv := testopa.Start(b, dir)
		er, err := extauthzgrpc.Request(req)
		if err != nil {
			b.Fatal(err)
		}
		in, err := extauthz.Input(er, nil)
		if err != nil {
			b.Fatal(err)
		}
		body := []byte(`{"input":` + in.String() + `}`)
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
		url := srv.URL + "/v1/data/envoy/authz/allow"
		b.ReportAllocs()
		cpu0 := selfCPU() + processCPU(b, srv.PID())
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				resp, err := client.Post(url, "application/json", bytes.NewReader(body))
				if err != nil {
					b.Error(err)
					return
				}
				out, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if !bytes.Contains(out, []byte(`"result":true`)) {
					b.Errorf("OPA answered %s", out)
					return
				}
			}
		})
		reportRate(b)
		b.ReportMetric(float64((selfCPU()+processCPU(b, srv.PID())-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
	})
}

// selfCPU is the CPU time this process has used (client and, for the
// in-process modes, server).
func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportRate reports operations per second of wall time.
func reportRate(b *testing.B) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s, "ops/s")
	}
}

// BenchmarkAuthZEN compares, per 100 decisions for one PEP over loopback
// HTTP, one evaluations request of 100 items (sharing the subject and
// action) with 100 evaluation requests.
func BenchmarkAuthZEN(b *testing.B) {
	ctx := context.Background()
	p, err := policy.LoadFiles(filepath.Join("testdata", "authzen"))
	if err != nil {
		b.Fatal(err)
	}
	engine, err := policy.New(ctx, policy.Config{Decision: "authzen/decision", ResultParser: authzen.ParseResult,
		Logger: slog.New(slog.DiscardHandler)}, p)
	if err != nil {
		b.Fatal(err)
	}
	const key = "pep-key-0123456789abcdef"
	keys, err := authn.NewAPIKeys(authn.APIKeyConfig{Keys: []authn.APIKey{{Key: key, Subject: "pep"}}})
	if err != nil {
		b.Fatal(err)
	}
	guard, err := authz.New(authz.Config{Authenticator: keys, Evaluator: engine, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	h, err := authzen.New(authzen.Config{Guard: guard})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	subject := `{"type":"user","id":"alice","properties":{"roles":["editor"]}}`
	var items, singles []string
	for i := range 100 {
		res := fmt.Sprintf(`{"type":"doc","id":"%d","properties":{"owner":"u%d"}}`, i, i%7)
		items = append(items, `{"resource":`+res+`}`)
		singles = append(singles, `{"subject":`+subject+`,"action":{"name":"read"},"resource":`+res+`}`)
	}
	batch := `{"subject":` + subject + `,"action":{"name":"read"},"evaluations":[` + strings.Join(items, ",") + `]}`
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	post := func(b *testing.B, path, body string) {
		req, _ := http.NewRequest("POST", srv.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-API-Key", key)
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !bytes.Contains(out, []byte(`"decision":true`)) {
			b.Fatalf("%d %s", resp.StatusCode, out)
		}
	}
	b.Run("evaluations-100-items", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			post(b, authzen.EvaluationsPath, batch)
		}
		b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "decisions/s")
	})
	b.Run("evaluation-x100", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, s := range singles {
				post(b, authzen.EvaluationPath, s)
			}
		}
		b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "decisions/s")
	})
}

// BenchmarkForwardAuth measures requests through nginx's auth_request,
// side by side: asking `regoguard serve --forward-auth` and asking
// oauth2-proxy's /oauth2/auth, on the same workload: an RS256 bearer token
// of one OpenID Provider (on loopback) verified by each, and the rule
// "group staff may read" (regoguard's policy; oauth2-proxy's
// allowed_groups). Everything runs on loopback on the same cores; the
// client keeps 16 requests in flight. oauth2-proxy is $OAUTH2_PROXY_BIN or
// oauth2-proxy on the PATH; without it that half is skipped.
func BenchmarkForwardAuth(b *testing.B) {
	testnginx.Binary(b)
	iss := testissuer.Start(b)
	token := iss.Token(b, "alice", map[string]any{"email": "alice@example.com", "email_verified": true, "groups": []any{"staff"}})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }))
	defer up.Close()

	outsider := iss.Token(b, "mallory", map[string]any{"email": "mallory@example.com", "email_verified": true, "groups": []any{"guests"}})
	run := func(b *testing.B, ngx *testnginx.Server, pid int) {
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
		req, _ := http.NewRequest("GET", ngx.URL+"/api/x", nil)
		// Both deciders must refuse what the workload's rule refuses.
		for tok, want := range map[string]int{token: 200, outsider: 403, "": 401, token[:len(token)-4] + "AAAA": 401} {
			req.Header.Set("Authorization", "Bearer "+tok)
			if tok == "" {
				req.Header.Del("Authorization")
			}
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != want || want == 200 && string(body) != "ok" {
				b.Fatalf("through nginx: %d %q, want %d", resp.StatusCode, body, want)
			}
		}
		req.Header.Set("Authorization", "Bearer "+token)
		b.SetParallelism(8)
		cpu0 := processCPU(b, pid)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			r := req.Clone(context.Background())
			for pb.Next() {
				resp, err := client.Do(r)
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Errorf("status %d", resp.StatusCode)
					return
				}
			}
		})
		reportRate(b)
		b.ReportMetric(float64((processCPU(b, pid)-cpu0).Microseconds())/float64(b.N), "decider-cpu-µs/op")
	}
	// Both deciders are reached over kept-alive connections (an upstream
	// block with keepalive), as the README's nginx configuration does.
	conf := func(authAddr, authPath string) string {
		return fmt.Sprintf(`
        location / {
            auth_request /_auth;
            proxy_pass %s;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
        location = /_auth {
            internal;
            proxy_pass http://decider%s;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-Method $request_method;
            proxy_set_header X-Original-URI $request_uri;
            proxy_set_header X-Forwarded-Host $host;
            proxy_set_header X-Forwarded-Proto $scheme;
        }
    }
    upstream decider {
        server %s;
        keepalive 32;`, up.URL, authPath, authAddr)
	}

	b.Run("nginx-regoguard", func(b *testing.B) {
		bin := buildRegoguard(b)
		addr := freeAddr(b)
		args := []string{"serve", "--forward-auth", "--listen", addr, "--trusted-proxy", "127.0.0.1/32",
			"--policy", filepath.Join("testdata", "forwardauth"), "--oidc-well-known", iss.URL, "--oidc-client-id", iss.ClientID,
			"--log-level", "warn"}
		if a := os.Getenv("BENCH_ADMIN"); a != "" {
			args = append(args, "--admin-listen", a, "--admin-pprof")
		}
		pid := startProcess(b, addr, bin, args...)
		run(b, testnginx.Start(b, conf(addr, "/")), pid)
	})
	b.Run("nginx-oauth2-proxy", func(b *testing.B) {
		bin := os.Getenv("OAUTH2_PROXY_BIN")
		if bin == "" {
			var err error
			if bin, err = exec.LookPath("oauth2-proxy"); err != nil {
				b.Skip("oauth2-proxy is not installed (go install github.com/oauth2-proxy/oauth2-proxy/v7@latest; or OAUTH2_PROXY_BIN)")
			}
		}
		addr := freeAddr(b)
		pid := startProcess(b, addr, bin, "--http-address="+addr, "--provider=oidc", "--oidc-issuer-url="+iss.URL,
			"--client-id="+iss.ClientID, "--client-secret=bench-secret", "--cookie-secret=0123456789abcdef0123456789abcdef",
			"--email-domain=*", "--skip-jwt-bearer-tokens=true", "--upstream=static://202", "--cookie-secure=false",
			"--oidc-groups-claim=groups", "--request-logging=false", "--auth-logging=false", "--standard-logging=false",
			"--reverse-proxy=true")
		run(b, testnginx.Start(b, conf(addr, "/oauth2/auth?allowed_groups=staff")), pid)
	})
}

// buildRegoguard builds the command once per benchmark run.
func buildRegoguard(b *testing.B) string {
	b.Helper()
	bin := filepath.Join(b.TempDir(), "regoguard")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = filepath.Join("..", "cmd", "regoguard")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("building regoguard: %v\n%s", err, out)
	}
	return bin
}

func freeAddr(b *testing.B) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// processCPU is the CPU time (user and system) process pid has used.
func processCPU(b *testing.B, pid int) time.Duration {
	b.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command name, which ends with ")": utime and stime
	// are the 12th and 13th, in clock ticks (100 per second on Linux).
	f := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+2:]))
	var ticks int64
	for _, s := range f[11:13] {
		var n int64
		fmt.Sscan(s, &n)
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}

// startProcess starts bin, waits until addr accepts connections, kills it
// at the end of the benchmark, and returns its process ID.
func startProcess(b *testing.B, addr, bin string, args ...string) int {
	b.Helper()
	var log bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
			return cmd.Process.Pid
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s did not listen on %s:\n%s", filepath.Base(bin), addr, log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
