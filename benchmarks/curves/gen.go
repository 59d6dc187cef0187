package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// A case is one point of a curve: a policy directory read the same way by
// the engine (policy.LoadFiles) and by opa run, and one input it allows
// after its full work.
type testCase struct {
	dir   string
	input map[string]any
	bytes int64 // size of the policy directory
}

// genRules writes a policy of n rules, each granting one service to one
// role. Rule indexing picks the candidate rule by the first path segment, so
// a decision touches one rule whatever n is; the request matches the last.
// With scan, each rule tests the path with contains instead and has no role
// condition: the rule index can use neither (it does use equality,
// startswith and "x in input.ref"), so a decision evaluates every rule of
// the request's method until the one that matches.
func genRules(dir string, n int, scan bool) (testCase, error) {
	var b strings.Builder
	b.WriteString("package httpapi.authz\n\ndefault allow := false\n")
	for i := range n {
		method := []string{"GET", "POST"}[i%2]
		if scan {
			fmt.Fprintf(&b, "\nallow if {\n\tcontains(input.path, \"/svc%d/\")\n\tinput.method == %q\n}\n", i, method)
			continue
		}
		fmt.Fprintf(&b, "\nallow if {\n\tinput.path_segments[0] == \"svc%d\"\n\tinput.method == %q\n\t\"role%d\" in input.user.roles\n}\n",
			i, method, i)
	}
	if err := os.WriteFile(filepath.Join(dir, "authz.rego"), []byte(b.String()), 0o600); err != nil {
		return testCase{}, err
	}
	last := n - 1
	return testCase{dir: dir, bytes: int64(b.Len()), input: map[string]any{
		"method":        []string{"GET", "POST"}[last%2],
		"path":          fmt.Sprintf("/svc%d/items/7", last),
		"path_segments": []any{fmt.Sprintf("svc%d", last), "items", "7"},
		"user":          map[string]any{"sub": "alice", "roles": []any{"staff", fmt.Sprintf("role%d", last)}},
	}}, nil
}

// largeDataPolicy is benchmarks/testdata/largedata/authz.rego: the readers
// and owner of a document, looked up by id (an indexed lookup).
const largeDataPolicy = `package httpapi.authz

default allow := false

document := data.acl.documents[input.path_segments[1]]

allow if {
	input.path_segments[0] == "documents"
	input.method == "GET"
	input.user.sub in document.readers
}

allow if {
	input.path_segments[0] == "documents"
	document.owner == input.user.sub
}
`

// genData writes the largedata policy and a data.json of n documents, each
// with an owner and two readers (about 61 bytes of JSON a document), streamed
// so that the driver never holds the document. rev changes every owner, for
// a second revision of the same size.
func genData(dir string, n, rev int) (testCase, error) {
	if err := os.WriteFile(filepath.Join(dir, "authz.rego"), []byte(largeDataPolicy), 0o600); err != nil {
		return testCase{}, err
	}
	f, err := os.Create(filepath.Join(dir, "data.json"))
	if err != nil {
		return testCase{}, err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	w.WriteString(`{"acl":{"documents":{`)
	for i := range n {
		if i > 0 {
			w.WriteByte(',')
		}
		fmt.Fprintf(w, `"doc%d":{"owner":"user%d","readers":["user%d","user%d"]}`, i, (i+rev)%100, (i+13)%100, (i+26)%100)
	}
	w.WriteString("}}}\n")
	if err := w.Flush(); err != nil {
		f.Close()
		return testCase{}, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return testCase{}, err
	}
	if err := f.Close(); err != nil {
		return testCase{}, err
	}
	// The document in the middle, read by one of its readers (not its owner):
	// the first allow rule decides.
	mid := n / 2
	return testCase{dir: dir, bytes: st.Size(), input: map[string]any{
		"method":        "GET",
		"path_segments": []any{"documents", fmt.Sprintf("doc%d", mid)},
		"user":          map[string]any{"sub": fmt.Sprintf("user%d", (mid+13)%100)},
	}}, nil
}

func writeJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}
