package policy

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"

	"github.com/open-policy-agent/opa/v1/loader"
	"github.com/open-policy-agent/opa/v1/loader/extension"

	"github.com/regoguard/regoguard/policy/internal/flatstore"
)

// jsonFiles collects, as OPA's loader walks the paths, the JSON data files
// it would have decoded into Go values, with where each goes under data,
// so that they are parsed straight into the flat form instead.
type jsonFiles struct {
	paths []string // as given, with their optional "a.b:" data prefix
	next  int      // which of paths the walk is in
	root  string   // that path, as the loader cleaned it
	pre   []string // its data prefix
	files []jsonFile
	seen  map[string]bool
}

type jsonFile struct {
	path  string
	under []string // keys under data
}

// filter is the loader's filter: skipTests, and JSON files set aside.
func (j *jsonFiles) filter(path string, info fs.FileInfo, depth int) bool {
	if skipTests(path, info, depth) {
		return true
	}
	if depth == 0 {
		// The loader visits the paths in order, each first at depth 0.
		j.root, j.pre = path, nil
		if j.next < len(j.paths) {
			j.pre, _ = loader.SplitPrefix(j.paths[j.next])
		}
		j.next++
	}
	if info.IsDir() || filepath.Ext(path) != ".json" || extension.FindExtension(".json") != nil {
		return false
	}
	under := append([]string(nil), j.pre...)
	if depth > 0 {
		if rel, err := filepath.Rel(j.root, path); err == nil {
			if dir := filepath.Dir(rel); dir != "." {
				under = append(under, strings.Split(filepath.ToSlash(dir), "/")...)
			}
		}
	}
	// The same file given twice at the same place is read once, as OPA does.
	key := strings.Join(under, "\x00") + "\x01" + filepath.Clean(path)
	if j.seen == nil {
		j.seen = map[string]bool{}
	}
	if !j.seen[key] {
		j.seen[key] = true
		j.files = append(j.files, jsonFile{path: path, under: under})
	}
	return true
}

// parseFile parses one JSON file into b. A large file is mapped rather than
// read (see mapFile); should it shrink while being parsed (rewritten in
// place), the fault is an error, not a crash.
func parseFile(b *flatstore.Builder, fsys fs.FS, path string) (v flatstore.Value, err error) {
	if fsys != nil {
		bs, err := fs.ReadFile(fsys, path)
		if err != nil {
			return v, err
		}
		return b.ParseJSON(bs)
	}
	bs, unmap, err := mapFile(path)
	if err != nil {
		return v, err
	}
	if bs == nil {
		if bs, err = os.ReadFile(path); err != nil {
			return v, err
		}
		return b.ParseJSON(bs)
	}
	defer unmap()
	return parseMapped(b, bs)
}

// parseMapped parses a mapped file: a fault (the file truncated under the
// mapping) is an error, not a crash.
func parseMapped(b *flatstore.Builder, bs []byte) (v flatstore.Value, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("the file changed while it was read: %v", r)
		}
	}()
	return b.ParseJSON(bs)
}

// read parses the JSON files set aside and merges them, and the documents
// OPA's loader read (YAML files), into one flat document.
func (j *jsonFiles) read(fsys fs.FS, others map[string]any) (*flatstore.Doc, error) {
	b := flatstore.NewBuilder()
	b.Yield = true // a reload gives way to the requests being served
	acc := b.Empty()
	for _, f := range j.files {
		v, err := parseFile(b, fsys, f.path)
		if err != nil {
			return nil, fmt.Errorf("policy: %s: %w", f.path, err)
		}
		if len(f.under) == 0 && !b.IsObject(v) {
			return nil, fmt.Errorf("policy: %s: bad document type: data at the root must be an object", f.path)
		}
		if acc, err = b.Merge(acc, b.Under(f.under, v)); err != nil {
			return nil, fmt.Errorf("policy: %s: %w", f.path, err)
		}
	}
	if len(others) > 0 {
		v, err := b.FromGo(others)
		if err != nil {
			return nil, fmt.Errorf("policy: data: %w", err)
		}
		if acc, err = b.Merge(acc, v); err != nil {
			return nil, fmt.Errorf("policy: data files: %w", err)
		}
	}
	doc, err := b.Doc(acc)
	if err != nil {
		return nil, fmt.Errorf("policy: data: %w", err)
	}
	return doc, nil
}
