package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// serveResult is what the driver measures of a `regoguard serve` process
// with its defaults, on the same directory as the OPA server.
type serveResult struct {
	ReadySeconds float64 `json:"ready_s"` // from exec until GET /readyz answers 200
	CPUSeconds   float64 `json:"cpu_s"`   // user and system CPU time by then
	RSSBytes     int64   `json:"rss"`
	HWMBytes     int64   `json:"hwm"`
	P50Nanos     float64 `json:"p50_ns"` // GET /documents/ID through the proxy, allowed
	P99Nanos     float64 `json:"p99_ns"`
	Correct      int     `json:"correct"` // decisions checked: allowed and refused as the data says
	OPAError     string  `json:"opa_error,omitempty"`
}

// servePoint measures `regoguard serve --policy DIR` (every other setting
// its default, the flat store among them) against `opa run --server DIR`.
// The request goes through the whole proxy: API key, input, decision, and
// the upstream (a loopback handler that answers 204).
func (m measurer) servePoint(size int) (point, error) {
	fmt.Fprintf(os.Stderr, "curves: serve %d (load %s)\n", size, loadavg())
	c, err := m.gen("serve", size, 0)
	if err != nil {
		return point{}, err
	}
	defer os.RemoveAll(c.dir)
	p := point{Curve: "serve", Size: size, Store: "default", Bytes: c.bytes}
	mid := size / 2
	reader := fmt.Sprintf("user%d", (mid+13)%100)
	owner := fmt.Sprintf("user%d", mid%100)
	stranger := fmt.Sprintf("user%d", (mid+50)%100)
	keys := filepath.Join(m.tmp, fmt.Sprintf("keys-%d.yaml", size))
	if err := os.WriteFile(keys, fmt.Appendf(nil, "keys:\n  - key: reader-key-0123456789\n    subject: %s\n  - key: owner-key-01234567890\n    subject: %s\n  - key: stranger-key-01234567\n    subject: %s\n",
		reader, owner, stranger), 0o600); err != nil {
		return p, err
	}
	defer os.Remove(keys)
	up, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return p, err
	}
	defer up.Close()
	go http.Serve(up, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })) //nolint:errcheck // ends with the listener
	port, err := freePort()
	if err != nil {
		return p, err
	}
	admin, err := freePort()
	if err != nil {
		return p, err
	}
	cmd := exec.Command(m.regoguard, "serve", "--listen", "127.0.0.1:"+port, "--admin-listen", "127.0.0.1:"+admin,
		"--upstream", "http://"+up.Addr().String(), "--policy", c.dir, "--api-keys", keys, "--log-level", "error")
	cmd.Stderr = os.Stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return p, err
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	var r serveResult
	for {
		if time.Since(start) > 5*time.Minute {
			return p, fmt.Errorf("serve on %s not ready after 5 minutes", c.dir)
		}
		resp, err := http.Get("http://127.0.0.1:" + admin + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				r.ReadySeconds, r.CPUSeconds = time.Since(start).Seconds(), procCPU(cmd.Process.Pid)
				break
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	get := func(doc, key string) (int, error) {
		req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:"+port+"/documents/"+doc, nil)
		req.Header.Set("X-API-Key", key)
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	docID := fmt.Sprintf("doc%d", mid)
	for _, check := range []struct {
		doc, key string
		want     int
	}{
		{docID, "reader-key-0123456789", http.StatusNoContent},
		{docID, "owner-key-01234567890", http.StatusNoContent},
		{docID, "stranger-key-01234567", http.StatusForbidden},
		{"doc1", "reader-key-0123456789", http.StatusForbidden},                     // user13 reads doc0, not doc1
		{fmt.Sprintf("doc%d", size), "owner-key-01234567890", http.StatusForbidden}, // no such document
	} {
		code, err := get(check.doc, check.key)
		if err != nil || code != check.want {
			return p, fmt.Errorf("serve %d: GET /documents/%s as %s: %d %v, want %d", size, check.doc, strings.Split(check.key, "-")[0], code, err, check.want)
		}
		r.Correct++
	}
	lat := make([]float64, 0, m.opaN)
	for i := range m.opaN + m.opaN/10 {
		s := time.Now()
		code, err := get(docID, "reader-key-0123456789")
		el := time.Since(s)
		if err != nil || code != http.StatusNoContent {
			return p, fmt.Errorf("serve decision: %d %v", code, err)
		}
		if i >= m.opaN/10 {
			lat = append(lat, float64(el.Nanoseconds()))
		}
	}
	r.P50Nanos, r.P99Nanos = quantile(lat, 0.5), quantile(lat, 0.99)
	r.RSSBytes, r.HWMBytes = procMemory(cmd.Process.Pid)
	cmd.Process.Kill()
	cmd.Wait()
	p.Serve = &r
	if p.OPA, err = m.opaPoint(c, "compact"); err != nil {
		// Kept: OPA may not fit in memory at the largest sizes (stopped
		// by the operator); serve's figures stand on their own.
		fmt.Fprintf(os.Stderr, "curves: serve %d: opa: %v\n", size, err)
		r.OPAError = err.Error()
	}
	return p, nil
}
