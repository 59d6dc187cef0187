package main_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/open-policy-agent/opa/v1/bundle"
)

// serveBundle serves a bundle built by OPA's own bundle writer.
func serveBundle(t *testing.T, revision string, modules map[string]string) *httptest.Server {
	t.Helper()
	roots := []string{"httpapi", "system"}
	b := bundle.Bundle{Manifest: bundle.Manifest{Revision: revision, Roots: &roots}, Data: map[string]any{}}
	for name, src := range modules {
		b.Modules = append(b.Modules, bundle.ModuleFile{URL: "/" + name, Path: "/" + name, Raw: []byte(src)})
	}
	var buf bytes.Buffer
	if err := bundle.NewWriter(&buf).Write(b); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/gzip")
		_, _ = w.Write(buf.Bytes())
	}))
	t.Cleanup(srv.Close)
	return srv
}

// logCollector is a decision-log collector: it decodes OPA's gzip uploads.
type logCollector struct {
	*httptest.Server
	mu     sync.Mutex
	events []map[string]any
}

func newLogCollector(t *testing.T) *logCollector {
	c := &logCollector{}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		data, _ := io.ReadAll(zr)
		var batch []map[string]any
		if err := json.Unmarshal(data, &batch); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		c.mu.Lock()
		c.events = append(c.events, batch...)
		c.mu.Unlock()
	}))
	t.Cleanup(c.Close)
	return c
}

func TestServeBundleFromAServerWithDecisionLogs(t *testing.T) {
	bundles := serveBundle(t, "rev-7", map[string]string{
		"authz.rego": "package httpapi.authz\n\ndefault allow := false\n\nallow if input.user.sub == \"alice\"\n",
		// OPA's masking rule, shipped in the bundle: the email never reaches the collector.
		"mask.rego": "package system.log\n\nmask contains \"/input/user/claims/email\"\n",
	})
	logs := newLogCollector(t)
	up := newUpstream(t)
	keys := writeFile(t, "keys.yaml", keysFile)
	s := startServe(t, nil, "--listen", "127.0.0.1:0", "--upstream", up.URL, "--api-keys", keys,
		"--bundle", bundles.URL+"/bundles/authz.tar.gz", "--decision-log-url", logs.URL+"/logs", "--admin-listen", "127.0.0.1:0")
	admin := s.logs.wait(t, adminLine, nil)

	// Until the bundle is activated requests fail closed; wait for readiness.
	waitReady(t, "http://"+admin+"/readyz")
	status, _, _ := s.get(t, "GET", "/x", map[string]string{"X-API-Key": "alice-key-0123456789"})
	if status != 200 {
		t.Fatalf("alice: %d", status)
	}
	status, _, body := s.get(t, "GET", "/x", map[string]string{"X-API-Key": "bob-key-0123456789"})
	if status != 403 {
		t.Fatalf("bob: %d", status)
	}
	var refusal struct {
		DecisionID string `json:"decision_id"`
	}
	_ = json.Unmarshal([]byte(body), &refusal)

	// SIGTERM flushes the decision logs.
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	if err := <-s.done; err != nil {
		t.Fatalf("exit: %v", err)
	}
	logs.mu.Lock()
	defer logs.mu.Unlock()
	if len(logs.events) != 2 {
		t.Fatalf("collector got %d events, want 2: %v", len(logs.events), logs.events)
	}
	var found bool
	for _, ev := range logs.events {
		if ev["decision_id"] == refusal.DecisionID {
			found = true
			if ev["bundles"].(map[string]any)["authz"].(map[string]any)["revision"] != "rev-7" {
				t.Errorf("event names bundles %v, want authz at rev-7", ev["bundles"])
			}
		}
	}
	if !found {
		t.Errorf("no event with the refusal's decision id %s", refusal.DecisionID)
	}
	all, _ := json.Marshal(logs.events)
	for _, leak := range []string{"alice@example.com", "alice-key-0123456789", "bob-key-0123456789"} {
		if strings.Contains(string(all), leak) {
			t.Errorf("decision logs contain %q", leak)
		}
	}
	if !strings.Contains(string(all), `"/input/user/claims/email"`) {
		t.Errorf("decision logs do not record the masked field: %s", all)
	}
}

func waitReady(t *testing.T, url string) {
	t.Helper()
	for range 600 {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		sleep()
	}
	t.Fatalf("%s never ready", url)
}
