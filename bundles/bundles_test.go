package bundles_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/bundle"

	"github.com/regoguard/regoguard/bundles"
	"github.com/regoguard/regoguard/policy"
)

func TestLocalTarballAndDirectory(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	tarball := filepath.Join(dir, "authz.tar.gz")
	if err := os.WriteFile(tarball, authzBundle(t, "rev-tar", authzV1, nil), 0o600); err != nil {
		t.Fatal(err)
	}
	// The same policy as a directory, as `opa build` takes it.
	bdir := filepath.Join(dir, "authz")
	for name, content := range map[string]string{
		".manifest":          `{"revision": "rev-dir", "roots": ["httpapi"], "rego_version": 1}`,
		"httpapi/authz.rego": authzV2,
		"httpapi/data.json":  `{"admins": ["alice"]}`,
	} {
		p := filepath.Join(bdir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	for _, tc := range []struct{ path, revision, rules string }{
		{tarball, "rev-tar", "v1"},
		{bdir, "rev-dir", "v2"},
	} {
		e := newEngine(t)
		m, err := bundles.New(bundles.Config{Engine: e, Bundles: []bundles.Source{bundles.SourceFor("authz", tc.path)}, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		if m.Ready() {
			t.Fatal("ready before Start")
		}
		if err := m.Start(ctx); err != nil {
			t.Fatalf("%s: %v", tc.path, err)
		}
		if !m.Ready() {
			t.Fatalf("%s: not ready after Start", tc.path)
		}
		d := mustEval(t, e, "DELETE", "alice")
		if !d.Allow || d.Revision != tc.revision || d.Bundles["authz"] != tc.revision || rules(t, d) != tc.rules {
			t.Errorf("%s: admin DELETE: got %+v, want allow at revision %s with rules %s", tc.path, d, tc.revision, tc.rules)
		}
		if d := mustEval(t, e, "DELETE", "bob"); d.Allow {
			t.Errorf("%s: bob DELETE allowed", tc.path)
		}
		st := m.Status()
		if !st.Ready || st.Revision != tc.revision || st.Bundles[0].Revision != tc.revision || st.Bundles[0].ActivatedAt.IsZero() {
			t.Errorf("%s: status %+v", tc.path, st)
		}
	}
}

func TestSeveralBundlesWithDisjointRoots(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	rulesPath := filepath.Join(dir, "rules.tar.gz")
	dataPath := filepath.Join(dir, "data.tar.gz")
	write := func(p string, b []byte) {
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(rulesPath, build(t, spec{revision: "r1", roots: []string{"httpapi/authz"}, modules: map[string]string{"authz.rego": authzV1}}))
	write(dataPath, build(t, spec{revision: "d7", roots: []string{"httpapi/admins"}, data: map[string]any{"httpapi": map[string]any{"admins": []any{"carol"}}}}))

	e := newEngine(t)
	m, err := bundles.New(bundles.Config{Engine: e, Logger: quiet, Bundles: []bundles.Source{
		{Name: "rules", Path: rulesPath}, {Name: "data", Path: dataPath},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	d := mustEval(t, e, "DELETE", "carol")
	if !d.Allow || d.Bundles["rules"] != "r1" || d.Bundles["data"] != "d7" || d.Revision != "data=d7,rules=r1" {
		t.Errorf("carol DELETE: got %+v, want allow with both bundles' revisions", d)
	}

	// Overlapping roots are refused, with OPA's rule.
	overlapping := map[string]*bundle.Bundle{}
	for name, root := range map[string]string{"a": "httpapi", "b": "httpapi/authz"} {
		roots := []string{root}
		overlapping[name] = &bundle.Bundle{Manifest: bundle.Manifest{Roots: &roots}}
	}
	if _, err := bundles.ToPolicy(overlapping); err == nil || !strings.Contains(err.Error(), "overlapping roots") {
		t.Errorf("overlapping roots: got %v, want an error", err)
	}
}

func TestDownloadThenNotModified(t *testing.T) {
	ctx := context.Background()
	srv := newBundleServer(t, authzBundle(t, "rev1", authzV1, nil), `"etag-1"`)
	srv.token = "s3cret"
	e := newEngine(t)
	m, err := bundles.New(remote(t, e, srv, "", nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if m.Ready() {
		t.Fatal("ready before the first download")
	}
	if err := m.Trigger(ctx); err != nil {
		t.Fatalf("first download: %v", err)
	}
	if !m.Ready() || m.Check() != nil {
		t.Fatalf("not ready after the first download: %v", m.Check())
	}
	if d := mustEval(t, e, "GET", "bob"); !d.Allow || d.Revision != "rev1" {
		t.Errorf("GET after download: %+v", d)
	}
	if err := m.Trigger(ctx); err != nil {
		t.Fatalf("second download: %v", err)
	}
	seen := srv.seen()
	if len(seen) != 2 {
		t.Fatalf("server saw %d requests, want 2: %+v", len(seen), seen)
	}
	if seen[0].status != http.StatusOK || seen[0].ifNoneMatch != "" || seen[0].authorization != "Bearer s3cret" {
		t.Errorf("first request %+v, want 200 without If-None-Match, with the bearer token", seen[0])
	}
	if seen[1].status != http.StatusNotModified || seen[1].ifNoneMatch != `"etag-1"` {
		t.Errorf("second request %+v, want If-None-Match \"etag-1\" answered 304", seen[1])
	}
	st := m.Status().Bundles[0]
	if st.NotModified != 1 || st.Activations != 1 || st.ETag != `"etag-1"` || st.Revision != "rev1" || st.LastError != nil {
		t.Errorf("status %+v", st)
	}
}

func TestLongPollingIsRequested(t *testing.T) {
	ctx := context.Background()
	srv := newBundleServer(t, authzBundle(t, "rev1", authzV1, nil), `"e1"`)
	srv.longPoll = true
	e := newEngine(t)
	cfg := remote(t, e, srv, "", nil, nil)
	cfg.Bundles[0].Polling.LongPollingTimeout = 30e9
	m, err := bundles.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := m.Trigger(ctx); err != nil {
			t.Fatal(err)
		}
	}
	seen := srv.seen()
	if len(seen) != 2 || !strings.Contains(seen[0].prefer, "wait=30") || !strings.Contains(seen[1].prefer, "wait=30") ||
		seen[1].status != http.StatusNotModified {
		t.Errorf("requests %+v: want both to ask the server to wait 30s, the second answered 304", seen)
	}
}

func TestNewRevisionUnderConcurrentEvaluations(t *testing.T) {
	ctx := context.Background()
	srv := newBundleServer(t, authzBundle(t, "rev1", authzV1, nil), `"e1"`)
	e := newEngine(t)
	m, err := bundles.New(remote(t, e, srv, "", nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Trigger(ctx); err != nil {
		t.Fatal(err)
	}

	var evals, failures atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				d, err := e.Eval(ctx, input("GET", "bob"))
				evals.Add(1)
				if err != nil || !d.Allow || (d.Revision != "rev1" && d.Revision != "rev2" && d.Revision != "rev3") {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, errors.Join(err, errors.New(d.Revision)))
				}
			}
		}()
	}
	for i, rev := range []string{"rev2", "rev3"} {
		src := authzV2
		if i == 1 {
			src = authzV1
		}
		srv.set(authzBundle(t, rev, src, nil), `"e-`+rev+`"`)
		if err := m.Trigger(ctx); err != nil {
			t.Fatal(err)
		}
		if d := mustEval(t, e, "POST", "bob"); d.Revision != rev || d.Allow != (rev == "rev2") {
			t.Errorf("after swapping in %s: POST %+v", rev, d)
		}
	}
	close(stop)
	wg.Wait()
	if failures.Load() != 0 {
		t.Errorf("%d of %d evaluations failed during the swaps; first: %v", failures.Load(), evals.Load(), firstErr.Load())
	}
	if n := m.Status().Bundles[0].Activations; n != 3 {
		t.Errorf("activations %d, want 3", n)
	}
}

func TestBadBundlesAreRejectedAndTheOldRevisionServes(t *testing.T) {
	ctx := context.Background()
	good, other := newSigner(t), newSigner(t)
	srv := newBundleServer(t, authzBundle(t, "rev1", authzV1, &good), `"e1"`)
	e := newEngine(t)
	keys := map[string]bundles.Key{"test-key": {Algorithm: "ES256", Key: good.public}}
	m, err := bundles.New(remote(t, e, srv, "", &bundles.Signing{}, keys))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Trigger(ctx); err != nil {
		t.Fatalf("signed bundle: %v", err)
	}

	broken := build(t, spec{revision: "rev-broken", modules: map[string]string{"authz.rego": "package httpapi.authz\n\nallow if { input.method == \"GET\"\n"}, sign: &good})
	undefined := build(t, spec{revision: "rev-undefined", modules: map[string]string{"authz.rego": "package httpapi.authz\n\nallow if input.x == y\n"}, sign: &good})
	for _, tc := range []struct {
		name string
		body []byte
		want string
	}{
		{"corrupt", []byte("\x1f\x8b this is not a gzip stream"), "gzip"},
		{"truncated", authzBundle(t, "rev-truncated", authzV2, &good)[:200], ""},
		{"wrongly signed", authzBundle(t, "rev-other-key", authzV2, &other), "verify"},
		{"unsigned", authzBundle(t, "rev-unsigned", authzV2, nil), ".signatures.json"},
		{"unparsable rego", broken, ""},
		{"non-compiling rego", undefined, "rego_unsafe_var_error"},
	} {
		srv.set(tc.body, `"e-`+tc.name+`"`)
		err := m.Trigger(ctx)
		if err == nil {
			t.Errorf("%s bundle accepted", tc.name)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s bundle: error %q does not mention %q", tc.name, err, tc.want)
		}
		if d := mustEval(t, e, "GET", "bob"); !d.Allow || d.Revision != "rev1" || rules(t, d) != "v1" {
			t.Errorf("after the %s bundle: %+v, want rev1 still serving", tc.name, d)
		}
		st := m.Status().Bundles[0]
		if st.LastError == nil || st.Revision != "rev1" {
			t.Errorf("after the %s bundle: status %+v, want rev1 with an error", tc.name, st)
		}
	}
	var ce *policy.CompileError
	srv.set(undefined, `"e-undefined-again"`)
	if err := m.Trigger(ctx); !errors.As(err, &ce) || len(ce.Problems) == 0 || ce.Problems[0].Line != 3 {
		t.Errorf("non-compiling bundle: %v, want a *policy.CompileError at line 3", err)
	}
	// A rejected bundle is fetched again on the next poll (OPA's downloader
	// keeps the ETag of the active bundle), and a good one then activates.
	srv.set(authzBundle(t, "rev2", authzV2, &good), `"e2"`)
	if err := m.Trigger(ctx); err != nil {
		t.Fatal(err)
	}
	if d := mustEval(t, e, "POST", "bob"); !d.Allow || d.Revision != "rev2" {
		t.Errorf("after a good bundle: %+v", d)
	}
	if m.Status().Bundles[0].LastError != nil {
		t.Error("error not cleared by a successful activation")
	}
}

func TestPersistedBundleServesWhenTheServerIsDown(t *testing.T) {
	ctx := context.Background()
	key := newSigner(t)
	keys := map[string]bundles.Key{"test-key": {Algorithm: "ES256", Key: key.public}}
	persist := t.TempDir()
	srv := newBundleServer(t, authzBundle(t, "rev1", authzV1, &key), `"e1"`)

	first, err := bundles.New(remote(t, newEngine(t), srv, persist, &bundles.Signing{}, keys))
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Trigger(ctx); err != nil {
		t.Fatal(err)
	}
	srv.Close() // the bundle server goes down, and regoguard restarts

	e := newEngine(t)
	second, err := bundles.New(remote(t, e, srv, persist, &bundles.Signing{}, keys))
	if err != nil {
		t.Fatal(err)
	}
	if err := second.Start(ctx); err != nil {
		t.Fatalf("start from the persisted bundle: %v", err)
	}
	if !second.Ready() {
		t.Fatal("not ready with a persisted bundle")
	}
	if err := second.Trigger(ctx); err == nil {
		t.Fatal("download from a closed server succeeded")
	}
	if d := mustEval(t, e, "GET", "bob"); !d.Allow || d.Revision != "rev1" {
		t.Errorf("serving from disk: %+v", d)
	}
	st := second.Status().Bundles[0]
	if !st.FromDisk || st.Revision != "rev1" || st.LastError == nil {
		t.Errorf("status %+v, want rev1 from disk with the download error", st)
	}

	// The persisted copy is verified again: a tampered file is refused.
	var file string
	_ = filepath.WalkDir(persist, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Name() == "bundle.tar.gz" {
			file = p
		}
		return err
	})
	if file == "" {
		t.Fatal("no persisted bundle.tar.gz")
	}
	if err := os.WriteFile(file, authzBundle(t, "rev-evil", authzV2, nil), 0o600); err != nil {
		t.Fatal(err)
	}
	e3 := newEngine(t)
	third, err := bundles.New(remote(t, e3, srv, persist, &bundles.Signing{}, keys))
	if err != nil {
		t.Fatal(err)
	}
	if err := third.Start(ctx); err == nil || third.Ready() {
		t.Errorf("tampered persisted bundle: Start %v, ready %v", err, third.Ready())
	}
}

func TestServerDownAndNothingPersistedFailsClosed(t *testing.T) {
	ctx := context.Background()
	srv := newBundleServer(t, authzBundle(t, "rev1", authzV1, nil), `"e1"`)
	srv.Close()
	e := newEngine(t)
	m, err := bundles.New(remote(t, e, srv, t.TempDir(), nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.Trigger(ctx); err == nil {
		t.Fatal("download from a closed server succeeded")
	}
	if m.Ready() || m.Status().Ready {
		t.Error("ready without any bundle")
	}
	if err := m.Check(); err == nil || !strings.Contains(err.Error(), "waiting for authz") || !strings.Contains(err.Error(), "download") {
		t.Errorf("Check: %v, want the missing bundle and the download error", err)
	}
	d, err := e.Eval(ctx, input("GET", "alice"))
	if !errors.Is(err, policy.ErrNoPolicy) || d.Allow {
		t.Errorf("Eval without a bundle: %+v, %v; want ErrNoPolicy and no allow", d, err)
	}
	wctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := m.WaitReady(wctx); err == nil || !strings.Contains(err.Error(), "download") {
		t.Errorf("WaitReady: %v, want the download error", err)
	}
}

// TestRegoV0Bundle serves a bundle whose manifest declares rego_version 0,
// as bundles built for OPA 0.x are.
func TestRegoV0Bundle(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		".manifest":  `{"revision": "old", "roots": ["httpapi"], "rego_version": 0}`,
		"authz.rego": "package httpapi.authz\n\ndefault allow = false\n\nallow { input.method == \"GET\" }\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	e := newEngine(t)
	m, err := bundles.New(bundles.Config{Engine: e, Logger: quiet, Bundles: []bundles.Source{{Name: "old", Path: dir}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := mustEval(t, e, "GET", "bob"); !d.Allow || d.Revision != "old" {
		t.Errorf("GET: %+v", d)
	}
	if d := mustEval(t, e, "PUT", "bob"); d.Allow {
		t.Errorf("PUT allowed: %+v", d)
	}
}

// TestPeriodicPolling starts OPA's polling loop, waits for the first
// activation and stops the loop.
func TestPeriodicPolling(t *testing.T) {
	ctx := context.Background()
	srv := newBundleServer(t, authzBundle(t, "rev1", authzV1, nil), `"e1"`)
	e := newEngine(t)
	cfg := remote(t, e, srv, "", nil, nil)
	cfg.Bundles[0].Polling = bundles.Polling{MinDelay: time.Hour, MaxDelay: time.Hour}
	m, err := bundles.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := m.WaitReady(wctx); err != nil {
		t.Fatal(err)
	}
	m.Stop(ctx)
	if d := mustEval(t, e, "GET", "bob"); !d.Allow || d.Revision != "rev1" {
		t.Errorf("GET: %+v", d)
	}
}

// TestSignedLocalBundle verifies a local bundle's signature.
func TestSignedLocalBundle(t *testing.T) {
	ctx := context.Background()
	good, other := newSigner(t), newSigner(t)
	keys := map[string]bundles.Key{"test-key": {Algorithm: "ES256", Key: good.public}}
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		sign *signer
		ok   bool
	}{{"good", &good, true}, {"other", &other, false}, {"unsigned", nil, false}} {
		path := filepath.Join(dir, tc.name+".tar.gz")
		if err := os.WriteFile(path, authzBundle(t, tc.name, authzV1, tc.sign), 0o600); err != nil {
			t.Fatal(err)
		}
		e := newEngine(t)
		m, err := bundles.New(bundles.Config{Engine: e, Logger: quiet, Keys: keys,
			Bundles: []bundles.Source{{Name: "authz", Path: path, Signing: &bundles.Signing{KeyID: "test-key"}}}})
		if err != nil {
			t.Fatal(err)
		}
		err = m.Start(ctx)
		if (err == nil) != tc.ok || m.Ready() != tc.ok || e.Ready() != tc.ok {
			t.Errorf("%s: Start %v, ready %v; want ok=%v", tc.name, err, m.Ready(), tc.ok)
		}
	}
}

// TestSizeLimit rejects a bundle with a file above the configured limit.
func TestSizeLimit(t *testing.T) {
	ctx := context.Background()
	srv := newBundleServer(t, authzBundle(t, "rev1", authzV1, nil), `"e1"`)
	e := newEngine(t)
	cfg := remote(t, e, srv, "", nil, nil)
	cfg.Bundles[0].SizeLimitBytes = 64
	m, err := bundles.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Trigger(ctx); err == nil || !strings.Contains(err.Error(), "size") || m.Ready() {
		t.Errorf("bundle above the size limit: %v, ready %v", err, m.Ready())
	}
	cfg.Bundles[0].SizeLimitBytes = 1 << 20
	m, err = bundles.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Trigger(ctx); err != nil || !m.Ready() {
		t.Errorf("bundle below the size limit: %v", err)
	}
}

// TestServiceFromOPAConfig takes a service as written in an OPA
// configuration file.
func TestServiceFromOPAConfig(t *testing.T) {
	ctx := context.Background()
	srv := newBundleServer(t, authzBundle(t, "rev1", authzV1, nil), `"e1"`)
	srv.token = "from-opa-config"
	e := newEngine(t)
	cfg := remote(t, e, srv, "", nil, nil)
	cfg.Services["acme"] = bundles.Service{OPAConfig: []byte(`{"url": "` + srv.URL + `",
		"credentials": {"bearer": {"token": "from-opa-config"}}}`)}
	m, err := bundles.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Trigger(ctx); err != nil {
		t.Fatal(err)
	}
	if loc := m.Status().Bundles[0].Location; loc != srv.URL+"/bundles/authz.tar.gz" {
		t.Errorf("location %q", loc)
	}
	if seen := srv.seen(); len(seen) != 1 || seen[0].authorization != "Bearer from-opa-config" || !m.Ready() {
		t.Errorf("requests %+v, ready %v", seen, m.Ready())
	}
}

func TestConfigErrors(t *testing.T) {
	e := newEngine(t)
	src := bundles.Source{Name: "a", Path: "a.tar.gz"}
	for name, cfg := range map[string]bundles.Config{
		"no engine":         {Bundles: []bundles.Source{src}},
		"no bundles":        {Engine: e},
		"unnamed":           {Engine: e, Bundles: []bundles.Source{{Path: "x"}}},
		"twice":             {Engine: e, Bundles: []bundles.Source{src, src}},
		"path and URL":      {Engine: e, Bundles: []bundles.Source{{Name: "a", Path: "x", URL: "http://127.0.0.1/b"}}},
		"unknown service":   {Engine: e, Bundles: []bundles.Source{{Name: "a", Service: "nope"}}},
		"relative URL":      {Engine: e, Bundles: []bundles.Source{{Name: "a", URL: "bundles/a.tar.gz"}}},
		"signing, no keys":  {Engine: e, Bundles: []bundles.Source{{Name: "a", Path: "x", Signing: &bundles.Signing{}}}},
		"signing, bad key":  {Engine: e, Keys: map[string]bundles.Key{"k": {Algorithm: "ES256", Key: "not a key"}}, Bundles: []bundles.Source{{Name: "a", Path: "x", Signing: &bundles.Signing{KeyID: "k"}}}},
		"signing, no keyid": {Engine: e, Keys: map[string]bundles.Key{"k": {Key: "secret", Algorithm: "HS256"}}, Bundles: []bundles.Source{{Name: "a", Path: "x", Signing: &bundles.Signing{KeyID: "other"}}}},
	} {
		if _, err := bundles.New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
