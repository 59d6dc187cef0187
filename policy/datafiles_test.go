package policy

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/open-policy-agent/opa/v1/loader"
)

// TestLoaderDataLikeOPA: the data the loaders parse into the flat form is
// the data OPA's own loader reads from the same paths (directories giving
// keys, a data prefix, YAML beside JSON, a file given twice, hidden files and
// tests skipped), and what OPA's loader refuses is refused.
func TestLoaderDataLikeOPA(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("ok/authz.rego", "package httpapi.authz\n\nallow if data.roles\n")
	write("ok/data.json", `{"top": {"a": 1, "n": 1.50}, "dup": 1, "dup": 2}`)
	write("ok/roles/data.json", `{"admin": ["x", "y"], "esc": "\u00e9\n"}`)
	write("ok/roles/more.json", `{"viewer": []}`)
	write("ok/roles/deep/data.yaml", "k: v\nn: 3\n")
	write("ok/list/data.json", `[1, 2, {"a": null}]`)
	write("ok/.hidden/data.json", `{"never": true}`)
	write("ok/top/b/data.json", `{"c": true}`)
	write("extra.json", `{"extra": {"from": "file"}}`)
	write("conflict/authz.rego", "package x\n")
	write("conflict/data.json", `{"roles": 1}`)
	write("conflict/roles/data.json", `{"a": 1}`)
	write("scalar/authz.rego", "package x\n")
	write("scalar/data.json", `[1]`)
	write("bad/authz.rego", "package x\n")
	write("bad/data.json", `{"a": 01}`)
	ok := filepath.Join(dir, "ok")
	extra := filepath.Join(dir, "extra.json")
	for _, paths := range [][]string{
		{ok},
		{ok, extra},
		{ok, "pre.fix:" + extra},
		{ok, extra, extra},
		{filepath.Join(dir, "conflict")},
		{filepath.Join(dir, "scalar")},
		{filepath.Join(dir, "bad")},
	} {
		res, werr := loader.NewFileLoader().Filtered(paths, skipTests)
		p, gerr := LoadFiles(paths...)
		if (werr == nil) != (gerr == nil) {
			t.Errorf("%v: error %v, OPA's loader %v", paths, gerr, werr)
			continue
		}
		if werr != nil {
			continue
		}
		got, err := p.Document()
		if err != nil {
			t.Fatal(err)
		}
		want := res.Documents
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%v:\ngot  %#v\nwant %#v", paths, got, want)
		}
	}
}
