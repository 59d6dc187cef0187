package main_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/bundle"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/regoguard/regoguard/internal/testopa"
)

// TestMain stamps the test binary with this version, as a release build
// does with -ldflags -X main.version.
const stampedVersion = "v0.0.0-e2e"

func TestVersion(t *testing.T) {
	res := run(t, nil, "version")
	if res.code != 0 {
		t.Fatalf("exit %d\n%s", res.code, res.stderr)
	}
	for _, want := range []string{"regoguard " + stampedVersion + "\n", "go:        " + runtime.Version() + "\n", "opa:       v1.22.3\n", "revision:  ", "built:     "} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("version output lacks %q:\n%s", want, res.stdout)
		}
	}
	flag := run(t, nil, "--version")
	if flag.code != 0 || !regexp.MustCompile(`^regoguard `+regexp.QuoteMeta(stampedVersion)+`( \([0-9a-f]+(-dirty)?, [^)]+\))?, go1\.\S+, OPA v1\.22\.3\n$`).MatchString(flag.stdout) {
		t.Errorf("--version: exit %d, %q", flag.code, flag.stdout)
	}
}

// scrape returns the regoguard_ samples of the admin endpoint's /metrics,
// one "name{labels} value" line each.
func scrape(t *testing.T, admin string) string {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "regoguard_") {
			b.WriteString(sc.Text() + "\n")
		}
	}
	return b.String()
}

// metricValue finds the value of the sample matching name (a regular
// expression of the name and labels).
func hasSample(metrics, sample string) bool {
	return regexp.MustCompile(`(?m)^` + sample + `$`).MatchString(metrics)
}

// readmeMetrics lists the metrics of the README's table.
func readmeMetrics(t *testing.T) []string {
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range regexp.MustCompile("(?m)^\\| `(regoguard_[a-z_]+)` \\|").FindAllStringSubmatch(string(data), -1) {
		names = append(names, m[1])
	}
	if len(names) < 20 {
		t.Fatalf("the README's metrics table has %d rows", len(names))
	}
	return names
}

// controllableBundles is a bundle server that answers 304 to a client that
// has the current ETag, and can be switched to a corrupt bundle.
type controllableBundles struct {
	mu   sync.Mutex
	body []byte
	etag string
}

func (c *controllableBundles) set(body []byte, etag string) {
	c.mu.Lock()
	c.body, c.etag = body, etag
	c.mu.Unlock()
}

func (c *controllableBundles) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	body, etag := c.body, c.etag
	c.mu.Unlock()
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("ETag", etag)
	w.Header().Set("Content-Type", "application/gzip")
	_, _ = w.Write(body)
}

func bundleBytes(t *testing.T, revision, src string) []byte {
	t.Helper()
	roots := []string{"httpapi"}
	b := bundle.Bundle{Manifest: bundle.Manifest{Revision: revision, Roots: &roots}, Data: map[string]any{},
		Modules: []bundle.ModuleFile{{URL: "/p.rego", Path: "/p.rego", Raw: []byte(src)}}}
	var buf bytes.Buffer
	if err := bundle.NewWriter(&buf).Write(b); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// waitFor polls the metrics until every sample is there.
func waitFor(t *testing.T, admin string, samples ...string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		m := scrape(t, admin)
		missing := ""
		for _, s := range samples {
			if !hasSample(m, s) {
				missing = s
				break
			}
		}
		if missing == "" {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("no sample %s in:\n%s", missing, m)
		}
		sleep()
	}
}

// Every metric of the README's table is exported by the real binary and
// moves when what it counts happens; and every regoguard_ metric exported is
// in the table.
// observedPolicy allows alice; for /boom, two reasons conflict, so a refusal
// there fails in the engine (and falls back on the remote OPA).
const observedPolicy = `package httpapi.authz

allow if input.user.sub == "alice"

reason := "one" if input.path == "/boom"

reason := "two" if input.path == "/boom"
`

func TestServeMetricsOfTheREADME(t *testing.T) {
	keys := writeFile(t, "keys.yaml", keysFile)
	alice := map[string]string{"X-API-Key": "alice-key-0123456789"}
	seen := map[string]bool{}
	note := func(metrics string) {
		for _, line := range strings.Split(strings.TrimSpace(metrics), "\n") {
			name, _, _ := strings.Cut(line, " ")
			name, _, _ = strings.Cut(name, "{")
			name = strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")
			seen[name] = true
		}
	}

	// A local policy behind a remote OPA that is down (a closed port), a
	// decision cache, and an upstream that drops a connection.
	up := newUpstream(t)
	dying := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close() // a real fault: the upstream closes without answering
		}
	}))
	t.Cleanup(dying.Close)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "p.rego"), []byte(observedPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	closed := closedPort(t)
	a := startServe(t, nil, "--listen", "127.0.0.1:0", "--upstream", up.URL, "--policy", dir, "--api-keys", keys,
		"--admin-listen", "127.0.0.1:0", "--opa-url", closed,
		"--decision-cache", "100", "--decision-cache-key", "method,path,user")
	admin := a.logs.wait(t, adminLine, nil)
	for range 3 {
		if status, _, _ := a.get(t, "GET", "/x", alice); status != 200 {
			t.Fatalf("allowed request: %d", status)
		}
	}
	bob := map[string]string{"X-API-Key": "bob-key-0123456789"}
	if status, _, _ := a.get(t, "GET", "/y", bob); status != 403 {
		t.Fatalf("denied request: %d", status)
	}
	// The engine fails (two reasons conflict), the remote OPA it falls back
	// on is down: one fallback, refused with 503, nothing cached.
	if status, _, _ := a.get(t, "GET", "/boom", bob); status != 503 {
		t.Fatalf("engine and fallback failing: %d, want 503", status)
	}
	if err := os.WriteFile(filepath.Join(dir, "p.rego"), []byte("package httpapi.authz\nallow := \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	m := waitFor(t, admin,
		`regoguard_build_info\{goversion="go\S+",opa_version="v1\.22\.3",revision="[^"]*",version="v0\.0\.0-e2e"\} 1`,
		`regoguard_policy_info\{revision="sha256:[0-9a-f]+"\} 1`,
		`regoguard_policy_loads_total 1`,
		`regoguard_policy_load_failures_total 1`,
		`regoguard_policy_load_failing 1`,
		`regoguard_policy_last_load_timestamp_seconds \S+`,
		`regoguard_policy_last_load_failure_timestamp_seconds \S+`,
		`regoguard_decision_cache_hits_total 2`,
		`regoguard_decision_cache_misses_total 3`,
		`regoguard_decision_cache_entries 2`,
		`regoguard_fallbacks_total 1`,
		`regoguard_requests_total\{outcome="allow"\} 3`,
		`regoguard_requests_total\{outcome="deny"\} 1`,
		`regoguard_requests_total\{outcome="error"\} 1`,
		`regoguard_decision_duration_seconds_count 5`,
		`regoguard_upstream_errors_total\{reason="error"\} 0`,
	)
	note(m)

	// The upstream failing: one more process, whose upstream drops the
	// connection.
	d := startServe(t, nil, "--listen", "127.0.0.1:0", "--upstream", dying.URL, "--policy", "testdata/policy", "--api-keys", keys,
		"--admin-listen", "127.0.0.1:0")
	if status, _, _ := d.get(t, "GET", "/docs/1", alice); status != 502 {
		t.Fatalf("dying upstream: %d, want 502", status)
	}
	note(waitFor(t, d.logs.wait(t, adminLine, nil), `regoguard_upstream_errors_total\{reason="error"\} 1`))

	// A remote OPA alone, down: evaluator errors.
	r := startServe(t, nil, "--listen", "127.0.0.1:0", "--upstream", up.URL, "--opa-url", closed, "--api-keys", keys,
		"--admin-listen", "127.0.0.1:0")
	if status, _, _ := r.get(t, "GET", "/x", alice); status != 503 {
		t.Fatalf("remote OPA down: %d, want 503", status)
	}
	note(waitFor(t, r.logs.wait(t, adminLine, nil), `regoguard_evaluator_errors_total 1`, `regoguard_requests_total\{outcome="error"\} 1`))

	// A bundle server: activation, 304s, then a corrupt bundle.
	bs := &controllableBundles{}
	bs.set(bundleBytes(t, "rev-1", "package httpapi.authz\nallow := true\n"), `"e1"`)
	srv := httptest.NewServer(bs)
	t.Cleanup(srv.Close)
	b := startServe(t, nil, "--listen", "127.0.0.1:0", "--upstream", up.URL, "--bundle", srv.URL+"/b.tar.gz", "--api-keys", keys,
		"--admin-listen", "127.0.0.1:0", "--bundle-poll-min", "50ms", "--bundle-poll-max", "100ms")
	badmin := b.logs.wait(t, adminLine, nil)
	note(waitFor(t, badmin,
		`regoguard_bundles_ready 1`,
		`regoguard_bundle_info\{bundle="\S+",revision="rev-1"\} 1`,
		`regoguard_bundle_activations_total\{bundle="\S+"\} 1`,
		`regoguard_bundle_last_activation_timestamp_seconds\{bundle="\S+"\} \S+`,
		`regoguard_bundle_last_check_timestamp_seconds\{bundle="\S+"\} \S+`,
		`regoguard_bundle_not_modified_total\{bundle="\S+"\} [1-9]\d*`,
		`regoguard_bundle_failing\{bundle="\S+"\} 0`,
	))
	bs.set([]byte("not a bundle"), `"e2"`)
	note(waitFor(t, badmin,
		`regoguard_bundle_failures_total\{bundle="\S+"\} [1-9]\d*`,
		`regoguard_bundle_failing\{bundle="\S+"\} 1`,
		`regoguard_bundle_last_error_timestamp_seconds\{bundle="\S+"\} \S+`,
	))

	// A rollout: a shadow policy that allows everything beside the live one,
	// in dry-run: the live refusal is let through and counted, and the
	// shadow counts the disagreement.
	shadowDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(shadowDir, "p.rego"), []byte("package httpapi.authz\nallow := true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ro := startServe(t, nil, "--listen", "127.0.0.1:0", "--upstream", up.URL, "--policy", "testdata/policy", "--api-keys", keys,
		"--admin-listen", "127.0.0.1:0", "--shadow-policy", shadowDir, "--dry-run")
	if status, _, _ := ro.get(t, "GET", "/admin", alice); status != 200 {
		t.Fatalf("dry run: %d, want 200 (the refusal let through)", status)
	}
	note(waitFor(t, ro.logs.wait(t, adminLine, nil),
		`regoguard_dry_run_would_refuse_total 1`,
		`regoguard_shadow_decisions_total\{result="deny_to_allow"\} 1`,
		`regoguard_shadow_skipped_total 0`,
	))

	table := map[string]bool{}
	for _, name := range readmeMetrics(t) {
		table[name] = true
		if !seen[name] {
			t.Errorf("the README's metric %s was never exported", name)
		}
	}
	for name := range seen {
		if !table[name] {
			t.Errorf("metric %s is exported but not in the README's table", name)
		}
	}
}

func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// otlpReceiver is an OTLP/HTTP trace receiver on loopback: it decodes the
// protobuf requests the real exporter sends to /v1/traces.
type otlpReceiver struct {
	*httptest.Server
	mu    sync.Mutex
	spans []*tracepb.Span
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	rc := &otlpReceiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
			http.Error(w, "not an OTLP/HTTP protobuf trace export", http.StatusBadRequest)
			return
		}
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = zr
		}
		data, err := io.ReadAll(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var req collectortrace.ExportTraceServiceRequest
		if err := proto.Unmarshal(data, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rc.mu.Lock()
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				rc.spans = append(rc.spans, ss.Spans...)
			}
		}
		rc.mu.Unlock()
		out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	t.Cleanup(rc.Close)
	return rc
}

// wait returns the received spans once every name is among them.
func (rc *otlpReceiver) wait(t *testing.T, names ...string) map[string]*tracepb.Span {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		rc.mu.Lock()
		byName := map[string]*tracepb.Span{}
		for _, s := range rc.spans {
			byName[s.Name] = s
		}
		rc.mu.Unlock()
		complete := true
		for _, n := range names {
			complete = complete && byName[n] != nil
		}
		if complete {
			return byName
		}
		if time.Now().After(deadline) {
			t.Fatalf("spans received %v, want %v", keysOf(byName), names)
		}
		sleep()
	}
}

func keysOf(m map[string]*tracepb.Span) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// One request through the real binary, traced over OTLP/HTTP to a real
// receiver: the client's trace is continued through authentication, the
// decision and the upstream call, and the upstream receives it.
func TestServeTraceEndToEnd(t *testing.T) {
	rc := newOTLPReceiver(t)
	var mu sync.Mutex
	var upstreamTraceparent string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		upstreamTraceparent = r.Header.Get("Traceparent")
		mu.Unlock()
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(up.Close)
	keys := writeFile(t, "keys.yaml", keysFile)
	s := startServe(t, []string{"OTEL_EXPORTER_OTLP_ENDPOINT=" + rc.URL, "OTEL_BSP_SCHEDULE_DELAY=50", "OTEL_SERVICE_NAME=regoguard-e2e"},
		"--listen", "127.0.0.1:0", "--upstream", up.URL, "--policy", "testdata/policy", "--api-keys", keys, "--access-log")
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	status, _, _ := s.get(t, "GET", "/docs/1", map[string]string{
		"X-API-Key": "alice-key-0123456789", "Traceparent": "00-" + traceID + "-00f067aa0ba902b7-01"})
	if status != 200 {
		t.Fatalf("status %d", status)
	}
	spans := rc.wait(t, "regoguard.request", "regoguard.authenticate", "regoguard.input", "regoguard.decision", "upstream GET")
	req := spans["regoguard.request"]
	for name, sp := range spans {
		if hex.EncodeToString(sp.TraceId) != traceID {
			t.Errorf("span %s in trace %x, want the client's %s", name, sp.TraceId, traceID)
		}
	}
	if hex.EncodeToString(req.ParentSpanId) != "00f067aa0ba902b7" || req.Kind != tracepb.Span_SPAN_KIND_SERVER {
		t.Errorf("request span's parent %x kind %v: the client's span was not continued", req.ParentSpanId, req.Kind)
	}
	for _, name := range []string{"regoguard.authenticate", "regoguard.input", "regoguard.decision", "upstream GET"} {
		if !bytes.Equal(spans[name].ParentSpanId, req.SpanId) {
			t.Errorf("span %s is not a child of the request span", name)
		}
	}
	dec := map[string]string{}
	for _, kv := range spans["regoguard.decision"].Attributes {
		dec[kv.Key] = kv.Value.String()
	}
	for _, want := range []string{"regoguard.revision", "regoguard.allowed", "regoguard.decision_id", "regoguard.evaluator"} {
		if dec[want] == "" {
			t.Errorf("decision span lacks %s: %v", want, dec)
		}
	}
	upstream := spans["upstream GET"]
	want := "00-" + traceID + "-" + hex.EncodeToString(upstream.SpanId) + "-01"
	mu.Lock()
	got := upstreamTraceparent
	mu.Unlock()
	if got != want {
		t.Errorf("the upstream received traceparent %q, want %q (the upstream call's span)", got, want)
	}
	// The access-log line carries the same trace ID.
	s.logs.wait(t, regexp.MustCompile(`(msg=request .*trace_id=`+traceID+`)`), nil)
}

// The access log of the real binary has one line per request with the
// upstream's status, and never a credential, whatever the client sends.
func TestServeAccessLogNeverHoldsACredential(t *testing.T) {
	up := newUpstream(t)
	keys := writeFile(t, "keys.yaml", keysFile)
	s := startServe(t, nil, "--listen", "127.0.0.1:0", "--upstream", up.URL, "--policy", "testdata/policy", "--api-keys", keys,
		"--access-log", "--log-format", "json", "--log-decisions")
	secrets := map[string]string{"X-API-Key": "alice-key-0123456789", "Cookie": "session=cookie-secret-42",
		"Authorization": "Bearer bearer-secret-43", "Proxy-Authorization": "Basic cHJveHk6c2VjcmV0"}
	// Whatever the answer to a request with every kind of credential, its
	// line holds none of them.
	s.get(t, "GET", "/docs/1?access_token=query-secret-44", secrets)
	delete(secrets, "Authorization")
	delete(secrets, "Proxy-Authorization")
	if status, _, _ := s.get(t, "GET", "/docs/1?access_token=query-secret-44", secrets); status != 200 {
		t.Fatalf("allowed request: %d", status)
	}
	line := s.logs.wait(t, regexp.MustCompile(`("msg":"request".*"status":200.*)`), nil)
	for _, want := range []string{`"method":"GET"`, `"path":"/docs/1"`, `"user":"apikey:alice"`, `"decision_id":"`, `"latency":`, `"upstream_status":200`} {
		if !strings.Contains(line, want) {
			t.Errorf("access-log line lacks %s: %s", want, line)
		}
	}
	time.Sleep(100 * time.Millisecond)
	logs := s.logs.String()
	for _, secret := range []string{"alice-key-0123456789", "cookie-secret-42", "bearer-secret-43", "cHJveHk6c2VjcmV0", "query-secret-44"} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log holds the credential %q:\n%s", secret, logs)
		}
	}
	if n := strings.Count(logs, `"msg":"request"`); n != 2 {
		t.Errorf("%d access-log lines for 2 requests:\n%s", n, logs)
	}
}

// With a remote OPA, the trace goes on to it: the real OPA server, reached
// through a loopback relay that records what it was sent, receives the
// traceparent of the remote call's span.
func TestServeTraceReachesARemoteOPA(t *testing.T) {
	opa := testopa.Start(t, "testdata/policy")
	target, err := url.Parse(opa.URL)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var sent []string
	proxy := httputil.NewSingleHostReverseProxy(target)
	relay := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		sent = append(sent, r.Header.Get("Traceparent"))
		mu.Unlock()
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(relay.Close)
	rc := newOTLPReceiver(t)
	up := newUpstream(t)
	keys := writeFile(t, "keys.yaml", keysFile)
	s := startServe(t, []string{"OTEL_EXPORTER_OTLP_ENDPOINT=" + rc.URL, "OTEL_BSP_SCHEDULE_DELAY=50"},
		"--listen", "127.0.0.1:0", "--upstream", up.URL, "--opa-url", relay.URL, "--api-keys", keys)
	const traceID = "6bf92f3577b34da6a3ce929d0e0e4738"
	if status, _, _ := s.get(t, "GET", "/docs/1", map[string]string{
		"X-API-Key": "alice-key-0123456789", "Traceparent": "00-" + traceID + "-00f067aa0ba902b7-01"}); status != 200 {
		t.Fatalf("status %d", status)
	}
	spans := rc.wait(t, "regoguard.decision", "regoguard.remote_opa")
	remote, decision := spans["regoguard.remote_opa"], spans["regoguard.decision"]
	if hex.EncodeToString(remote.TraceId) != traceID || !bytes.Equal(remote.ParentSpanId, decision.SpanId) {
		t.Errorf("remote span in trace %x with parent %x, want %s under the decision span %x", remote.TraceId, remote.ParentSpanId, traceID, decision.SpanId)
	}
	want := "00-" + traceID + "-" + hex.EncodeToString(remote.SpanId) + "-01"
	mu.Lock()
	defer mu.Unlock()
	if len(sent) != 1 || sent[0] != want {
		t.Errorf("the OPA server received traceparent %q, want [%s]", sent, want)
	}
}
