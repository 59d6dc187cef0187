package main_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/coreos/go-oidc/v3/oidc/oidctest"
	"github.com/open-policy-agent/opa/v1/bundle"

	"github.com/regoguard/regoguard/internal/testopa"
)

// These tests put a real `regoguard serve` under a bounded load loop on
// loopback while one fault happens, and count every outcome: no request the
// policy refuses may be let through, and no request that a working policy
// answers may get a 5xx.

const faultPolicy = `package httpapi.authz

default allow := false

allow if {
	input.method == "GET"
	input.path_segments[0] == "docs"
}

reason := "docs only" if not allow
`

// probe is a request and the status the working policy gives it.
type probe struct {
	method, path string
	headers      map[string]string
	want         int
}

func apiKeyProbes() []probe {
	key := map[string]string{"X-API-Key": "alice-key-0123456789"}
	return []probe{
		{"GET", "/docs/1", key, 200},
		{"GET", "/admin", key, 403},
		{"DELETE", "/docs/1", key, 403},
		{"GET", "/docs/1", nil, 401},
	}
}

// tally counts outcomes.
type tally struct {
	mu       sync.Mutex
	byStatus map[int]int
	wrong    []string // a status other than the policy's
}

func (t *tally) add(p probe, got int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.byStatus[got]++
	if got != p.want && len(t.wrong) < 20 {
		t.wrong = append(t.wrong, p.method+" "+p.path+": "+http.StatusText(got))
	}
}

// underLoad sends the probes round-robin from 4 workers: a third of the
// requests before the fault, then during it, then as many again after it.
// It fails the test on any answer that differs from the working policy's.
func underLoad(t *testing.T, base string, probes []probe, perPhase int, fault func()) {
	t.Helper()
	res := &tally{byStatus: map[int]int{}}
	client := &http.Client{Timeout: 10 * time.Second}
	var sent atomic.Int64
	run := func(n int64, until func() bool) {
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for {
					i := sent.Add(1)
					if i > n && until() {
						return
					}
					p := probes[int(i)%len(probes)]
					req, _ := http.NewRequest(p.method, base+p.path, nil)
					for k, v := range p.headers {
						req.Header.Set(k, v)
					}
					resp, err := client.Do(req)
					if err != nil {
						res.add(p, 0)
						continue
					}
					resp.Body.Close()
					res.add(p, resp.StatusCode)
				}
			})
		}
		wg.Wait()
	}
	always := func() bool { return true }
	run(int64(perPhase), always)
	var done atomic.Bool
	go func() { fault(); done.Store(true) }()
	sent.Store(0)
	run(int64(perPhase), done.Load) // load goes on for as long as the fault takes
	sent.Store(0)
	run(int64(perPhase), always)

	statuses := make([]int, 0, len(res.byStatus))
	total := 0
	for s, n := range res.byStatus {
		statuses = append(statuses, s)
		total += n
	}
	sort.Ints(statuses)
	var summary strings.Builder
	for _, s := range statuses {
		summary.WriteString(" " + http.StatusText(s) + "=" + strconv.Itoa(res.byStatus[s]))
	}
	t.Logf("%d requests:%s", total, summary.String())
	if len(res.wrong) > 0 {
		t.Errorf("answers that differ from the working policy's: %q", res.wrong)
	}
	for s := range res.byStatus {
		if s >= 500 || s == 0 {
			t.Errorf("%d requests got %d (0: no answer)", res.byStatus[s], s)
		}
	}
}

func writePolicyDir(t *testing.T, src string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "authz.rego"), []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestFaultRemoteOPAKilledUnderLoad(t *testing.T) {
	dir := writePolicyDir(t, faultPolicy)
	opa := testopa.Start(t, dir)
	up := newUpstream(t)
	keys := writeFile(t, "keys.yaml", keysFile)
	s := startServe(t, nil, "--listen", "127.0.0.1:0", "--upstream", up.URL, "--api-keys", keys,
		"--opa-url", opa.URL, "--policy", dir, "--remote-first", "--opa-timeout", "500ms")
	underLoad(t, s.addr, apiKeyProbes(), 150, opa.Stop)
}

func TestFaultBrokenPolicyWrittenUnderLoad(t *testing.T) {
	dir := writePolicyDir(t, faultPolicy)
	up := newUpstream(t)
	keys := writeFile(t, "keys.yaml", keysFile)
	s := startServe(t, nil, "--listen", "127.0.0.1:0", "--upstream", up.URL, "--api-keys", keys, "--policy", dir, "--watch")
	underLoad(t, s.addr, apiKeyProbes(), 150, func() {
		if err := os.WriteFile(filepath.Join(dir, "authz.rego"), []byte("package httpapi.authz\n\nallow if {\n"), 0o600); err != nil {
			t.Error(err)
		}
		s.logs.wait(t, regexp.MustCompile(`(policy reload failed)`), nil)
	})
}

// bundleServer serves a bundle, then corrupt bytes, then errors, on demand.
type faultyBundles struct {
	mu    sync.Mutex
	body  []byte
	code  int
	delay time.Duration
	fetch atomic.Int64
}

func (f *faultyBundles) set(body []byte, code int) {
	f.mu.Lock()
	f.body, f.code = body, code
	f.mu.Unlock()
}

func (f *faultyBundles) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	f.fetch.Add(1)
	f.mu.Lock()
	body, code, delay := f.body, f.code, f.delay
	f.mu.Unlock()
	time.Sleep(delay) // a slow server
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

func TestFaultBundleServerSlowCorruptThenDownUnderLoad(t *testing.T) {
	roots := []string{"httpapi"}
	b := bundle.Bundle{Manifest: bundle.Manifest{Revision: "good", Roots: &roots}, Data: map[string]any{},
		Modules: []bundle.ModuleFile{{URL: "/authz.rego", Path: "/authz.rego", Raw: []byte(faultPolicy)}}}
	var buf bytes.Buffer
	if err := bundle.NewWriter(&buf).Write(b); err != nil {
		t.Fatal(err)
	}
	fb := &faultyBundles{}
	fb.set(buf.Bytes(), 200)
	srv := httptest.NewServer(fb)
	t.Cleanup(srv.Close)
	up := newUpstream(t)
	keys := writeFile(t, "keys.yaml", keysFile)
	s := startServe(t, nil, "--listen", "127.0.0.1:0", "--upstream", up.URL, "--api-keys", keys,
		"--bundle", srv.URL+"/authz.tar.gz", "--bundle-poll-min", "1s", "--bundle-poll-max", "1s", "--admin-listen", "127.0.0.1:0")
	waitReady(t, "http://"+s.logs.wait(t, adminLine, nil)+"/readyz")
	underLoad(t, s.addr, apiKeyProbes(), 150, func() {
		fetches := fb.fetch.Load()
		fb.mu.Lock()
		fb.delay = 2 * time.Second // the next checks hang for a while
		fb.mu.Unlock()
		for fb.fetch.Load() < fetches+1 {
			sleep()
		}
		time.Sleep(time.Second) // the slow check is in flight
		fb.mu.Lock()
		fb.delay = 0
		fb.mu.Unlock()
		fetches = fb.fetch.Load()
		fb.set([]byte("this is not a gzip archive"), 200)
		for fb.fetch.Load() < fetches+2 { // the corrupt bundle was downloaded (and refused)
			sleep()
		}
		fb.set([]byte(`{"code": "internal_error"}`), 500)
		for fb.fetch.Load() < fetches+4 {
			sleep()
		}
		srv.CloseClientConnections()
		srv.Config.SetKeepAlivesEnabled(false)
		srv.Close()                         // the server is gone
		time.Sleep(1500 * time.Millisecond) // one more poll fails against nothing
	})
}

func TestFaultIdentityProviderDownUnderLoad(t *testing.T) {
	// go-oidc's own test provider: discovery and keys, as a provider serves
	// them; the token is signed with its key.
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	provider := &oidctest.Server{PublicKeys: []oidctest.PublicKey{{PublicKey: key.Public(), KeyID: "k1", Algorithm: oidc.RS256}}}
	op := httptest.NewServer(provider)
	defer op.Close()
	provider.SetIssuer(op.URL)
	claims, _ := json.Marshal(map[string]any{"iss": op.URL, "aud": "regoguard", "sub": "alice",
		"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()})
	idToken := oidctest.SignIDToken(key, "k1", oidc.RS256, string(claims))
	up := newUpstream(t)
	dir := writePolicyDir(t, faultPolicy)
	s := startServe(t, []string{"OIDC_WELL_KNOWN=" + op.URL, "OIDC_CLIENT_ID=regoguard"},
		"--listen", "127.0.0.1:0", "--upstream", up.URL, "--policy", dir, "--oidc-accept", "id_token")
	bearer := map[string]string{"Authorization": "Bearer " + idToken}
	probes := []probe{
		{"GET", "/docs/1", bearer, 200},
		{"GET", "/admin", bearer, 403},
		{"GET", "/docs/1", map[string]string{"Authorization": "Bearer " + idToken[:len(idToken)-4] + "AAAA"}, 401},
		{"GET", "/docs/1", nil, 401},
	}
	// The first requests fetch the provider's keys; then it goes away, and
	// tokens are still verified with the cached keys.
	underLoad(t, s.addr, probes, 100, op.Close)
}

// freezer is a TCP relay in front of a real OPA server that can stop passing
// bytes, as a stalled network or an overloaded server would. A real OPA
// cannot be made to hang on demand, so this fault is injected in between.
type freezer struct {
	ln     net.Listener
	target string
	frozen atomic.Bool
}

func newFreezer(t *testing.T, target string) *freezer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{ln: ln, target: target}
	t.Cleanup(func() { ln.Close() })
	go f.accept()
	return f
}

func (f *freezer) URL() string { return "http://" + f.ln.Addr().String() }

func (f *freezer) accept() {
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			up, err := net.Dial("tcp", f.target)
			if err != nil {
				return
			}
			defer up.Close()
			go f.relay(up, c)
			f.relay(c, up)
		}()
	}
}

// relay copies src to dst until frozen, then holds the connection silent.
func (f *freezer) relay(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		for f.frozen.Load() {
			time.Sleep(50 * time.Millisecond)
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func TestFaultRemoteOPAStallsUnderLoad(t *testing.T) {
	dir := writePolicyDir(t, faultPolicy)
	opa := testopa.Start(t, dir)
	stall := newFreezer(t, strings.TrimPrefix(opa.URL, "http://"))
	up := newUpstream(t)
	keys := writeFile(t, "keys.yaml", keysFile)
	s := startServe(t, nil, "--listen", "127.0.0.1:0", "--upstream", up.URL, "--api-keys", keys,
		"--opa-url", stall.URL(), "--policy", dir, "--remote-first", "--opa-timeout", "200ms")
	underLoad(t, s.addr, apiKeyProbes(), 100, func() { stall.frozen.Store(true) })
}
