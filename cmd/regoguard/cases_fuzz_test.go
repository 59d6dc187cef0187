package main

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzReadCases parses arbitrary cases files: errors, never a panic, and
// every accepted case can be turned into a request.
func FuzzReadCases(f *testing.F) {
	for _, seed := range []string{
		"cases:\n  - name: a\n    request: {method: GET, path: \"/x?y=1\"}\n    expect: {allow: true}\n",
		"cases:\n  - request: {path: /x, body: {a: 1}, query: {q: [1, 2]}}\n    identity: {sub: s, claims: {g: [a]}}\n",
		"cases:\n  - request: {path: x}\n", "cases:\n  - request: {method: \"G ET\", path: \"/x y\"}\n", "cases: []\n", "cases:\n  - request: {path: /x}\n    expect: {}\n", "", ":",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "cases.yaml")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		cases, err := readCases(path)
		if err != nil {
			return
		}
		for _, c := range cases {
			if _, err := c.httpRequest(); err != nil {
				continue
			}
			_ = c.identity()
		}
	})
}

// FuzzReadHAR parses arbitrary HAR archives the same way.
func FuzzReadHAR(f *testing.F) {
	for _, seed := range []string{
		`{"log": {"entries": [{"request": {"method": "GET", "url": "https://a/x?y=1", "headers": [{"name": ":path", "value": "/"}]}}]}}`,
		`{"log": {"entries": [{"request": {"method": "POST", "url": "/rel", "postData": {"mimeType": "application/json", "text": "{}"}}}]}}`,
		`{"log": {"entries": []}}`, `{"log": {"entries": [{"request": {"url": "%zz"}}]}}`, `[]`, ``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "s.har")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		cases, err := readHAR(path, &caseIdentity{Sub: "a"})
		if err != nil {
			return
		}
		for _, c := range cases {
			_, _ = c.httpRequest()
		}
	})
}
