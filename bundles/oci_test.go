package bundles_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/regoguard/regoguard/bundles"
)

// registry is a minimal OCI distribution registry on loopback serving one
// image whose only layer is a bundle, as `oras push` or OPA's tooling
// publish them.
type registry struct {
	mu       sync.Mutex
	blobs    map[string][]byte // by digest
	manifest []byte
	pulls    int
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func (r *registry) publish(t *testing.T, tarball []byte) {
	t.Helper()
	config := []byte("{}")
	manifest, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digestOf(config), "size": len(config)},
		"layers": []any{map[string]any{
			"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digestOf(tarball), "size": len(tarball),
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.blobs = map[string][]byte{digestOf(config): config, digestOf(tarball): tarball}
	r.manifest = manifest
}

func (r *registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	path := strings.TrimPrefix(req.URL.Path, "/v2/policies/authz/")
	var body []byte
	switch {
	case path == "manifests/v1" || path == "manifests/"+digestOf(r.manifest):
		body = r.manifest
		w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
		w.Header().Set("Docker-Content-Digest", digestOf(r.manifest))
		if req.Method == http.MethodHead {
			r.pulls++
		}
	case strings.HasPrefix(path, "blobs/") && r.blobs[strings.TrimPrefix(path, "blobs/")] != nil:
		body = r.blobs[strings.TrimPrefix(path, "blobs/")]
		w.Header().Set("Content-Type", "application/octet-stream")
	default:
		http.NotFound(w, req)
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	if req.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// TestOCIRegistry downloads a bundle from an OCI registry with OPA's OCI
// downloader, then sees the same digest again and keeps the bundle.
func TestOCIRegistry(t *testing.T) {
	ctx := context.Background()
	reg := &registry{}
	reg.publish(t, authzBundle(t, "rev-oci", authzV1, nil))
	srv := httptest.NewServer(reg)
	t.Cleanup(srv.Close)

	e := newEngine(t)
	host := strings.TrimPrefix(srv.URL, "http://")
	m, err := bundles.New(bundles.Config{
		Engine:     e,
		Logger:     quiet,
		PersistDir: t.TempDir(),
		Services:   map[string]bundles.Service{"registry": {URL: srv.URL, Type: "oci"}},
		Bundles: []bundles.Source{{
			Name: "authz", Service: "registry", URL: host + "/policies/authz:v1", Polling: bundles.Polling{Manual: true},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Stop(context.Background()) })
	if err := m.Trigger(ctx); err != nil {
		t.Fatalf("OCI download: %v", err)
	}
	if d := mustEval(t, e, "GET", "bob"); !d.Allow || d.Revision != "rev-oci" {
		t.Errorf("GET: %+v", d)
	}
	if err := m.Trigger(ctx); err != nil {
		t.Fatalf("second OCI download: %v", err)
	}
	st := m.Status().Bundles[0]
	if st.Activations != 1 || st.NotModified != 1 || st.Revision != "rev-oci" || reg.pulls != 2 {
		t.Errorf("status %+v after %d pulls: want one activation, then not modified", st, reg.pulls)
	}

	reg.publish(t, authzBundle(t, "rev-oci-2", authzV2, nil))
	if err := m.Trigger(ctx); err != nil {
		t.Fatal(err)
	}
	if d := mustEval(t, e, "POST", "bob"); !d.Allow || d.Revision != "rev-oci-2" {
		t.Errorf("POST after a new image: %+v", d)
	}
}
