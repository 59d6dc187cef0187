// Package policy compiles Rego policies once and evaluates them in-process,
// with no network hop to an OPA server.
//
// A [Policy] is a set of Rego modules and data documents, loaded from files
// and directories ([LoadFiles]), from an [io/fs.FS] such as an embedded
// directory ([LoadFS]), or from strings ([Parse]). An [Engine] compiles a
// Policy into an OPA prepared query for one decision path and evaluates it
// concurrently. [Engine.Load] compiles a new Policy off to the side and swaps
// it in atomically: a policy that fails to parse or compile never replaces
// the one that is serving.
//
// [New] is the one constructor: New(ctx, cfg, nil) gives an Engine that
// refuses every evaluation with [ErrNoPolicy] until a policy is loaded (as a
// bundles.Manager does). [Engine.ReloadFiles] and [Engine.WatchFiles] reload
// from files; [Engine.Status] reports the revision served and the last failed
// load.
//
// [Engine.Plan] names the revision being served and tells which input fields
// it reads ([Plan], [InputFields]), so that a caller builds only those:
// package authz builds its inputs this way (and checks, by the revision a
// decision names, that no reload came in between), and its decision cache
// keys on the revision and those fields.
// [Engine.DecisionRef] names the decision document, and a [DecisionLogger]
// receives each decision as a [DecisionEvent] (package bundles writes them in
// OPA's format).
//
// Policies are Rego v1 by default; a [Loader] and [Config.RegoVersion] read
// Rego v0. [Config.Store] trades memory and load time against the cost of
// reading data ([Store]). The package knows nothing of HTTP: its input is an
// OPA [ast.Value] and its output a [Decision].
package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io/fs"
	"maps"
	"path/filepath"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/loader"

	"github.com/regoguard/regoguard/policy/internal/flatstore"
)

// Policy is a set of parsed Rego modules and the data documents they read,
// ready to compile. A Policy is not modified once built; share it freely.
type Policy struct {
	// Modules are the parsed Rego modules, by file name.
	Modules map[string]*ast.Module
	// Data is the base document given as Go values, available to the policy
	// under data. The loaders ([LoadFiles], [LoadFS], [Loader]) leave it nil:
	// they keep the data files they read in the flat form of [StoreFlat],
	// without building Go values, and [Policy.Document] returns them as Go
	// values. When both are present they are merged, as two data files are.
	Data map[string]any
	// Revision names this version of the policy; when empty, a hash of its
	// contents is used.
	Revision string
	// Bundles gives the revision of each OPA bundle the policy was built
	// from, by bundle name; nil when it was not built from bundles. It is
	// reported in every Decision made with this policy, for decision logs.
	Bundles map[string]string

	// jsonData is set when Data holds only what JSON decoding produces:
	// the compact store then shares it without a check.
	jsonData bool
	// doc is the data the loaders read, in flat form.
	doc *flatstore.Doc
}

// LoadFiles reads Rego modules (.rego) and data documents (data.json,
// data.yaml) from files and directories, recursively. A data document in a
// subdirectory is placed under that directory's path: dir/roles/data.json is
// data.roles. Rego unit tests (*_test.rego) are skipped: they are run by the
// check command, not served.
func LoadFiles(paths ...string) (*Policy, error) {
	return Loader{}.LoadFiles(paths...)
}

// LoadFS is [LoadFiles] on a file system, for example a directory embedded
// with //go:embed. paths are slash-separated and relative to fsys; "." is the
// whole file system.
func LoadFS(fsys fs.FS, paths ...string) (*Policy, error) {
	return Loader{}.LoadFS(fsys, paths...)
}

func load(fsys fs.FS, paths []string, version ast.RegoVersion) (*Policy, error) {
	if len(paths) == 0 {
		return nil, errors.New("policy: no files to load")
	}
	fl := loader.NewFileLoader()
	if fsys != nil {
		fl = fl.WithFS(fsys)
	}
	// OPA's loader reads the Rego modules and every other file; JSON data
	// files are set aside and parsed straight into the flat form.
	jf := &jsonFiles{paths: paths}
	res, err := fl.WithRegoVersion(version).
		WithProcessAnnotation(true).
		Filtered(paths, jf.filter)
	if err != nil {
		return nil, locate(err)
	}
	p := &Policy{Modules: make(map[string]*ast.Module, len(res.Modules))}
	for name, f := range res.Modules {
		p.Modules[name] = f.Parsed
	}
	if len(p.Modules) == 0 {
		return nil, fmt.Errorf("policy: no .rego files in %s", strings.Join(paths, ", "))
	}
	// Parsing large data is most of a reload's work: it gives way to the
	// decisions being made.
	lowPriority(func() { p.doc, err = jf.read(fsys, res.Documents) })
	if err != nil {
		return nil, err
	}
	return p, nil
}

// skipTests is a loader filter that leaves out Rego unit tests and hidden
// files, such as editors' swap files.
func skipTests(_ string, info fs.FileInfo, depth int) bool {
	name := info.Name()
	if depth > 0 && strings.HasPrefix(name, ".") {
		return true
	}
	return !info.IsDir() && strings.HasSuffix(name, "_test.rego")
}

// Parse builds a Policy from Rego sources keyed by file name, for policies
// kept in strings. Errors name the file, line and column.
func Parse(modules map[string]string, data map[string]any) (*Policy, error) {
	return Loader{}.Parse(modules, data)
}

func parse(modules map[string]string, data map[string]any, version ast.RegoVersion) (*Policy, error) {
	p := &Policy{Modules: make(map[string]*ast.Module, len(modules)), Data: data}
	for _, name := range slices.Sorted(maps.Keys(modules)) {
		m, err := ast.ParseModuleWithOpts(name, modules[name], ast.ParserOptions{
			RegoVersion:       version,
			ProcessAnnotation: true,
		})
		if err != nil {
			return nil, locate(err)
		}
		p.Modules[name] = m
	}
	if len(p.Modules) == 0 {
		return nil, errors.New("policy: no modules")
	}
	return p, nil
}

// MustParse is [Parse] for policies known to be valid, such as those
// compiled into a program; it panics on error.
func MustParse(modules map[string]string, data map[string]any) *Policy {
	p, err := Parse(modules, data)
	if err != nil {
		panic(err)
	}
	return p
}

// revision returns p.Revision, or a short hash of the modules and data, and
// whether p.Data is known to hold only what JSON decoding produces. It fails
// on data nested too deep to hash (a cycle).
func (p *Policy) revision() (string, bool, error) {
	if p.Revision != "" {
		return p.Revision, p.jsonData, nil
	}
	h := p.moduleHash()
	// Map keys are sorted, so equal data hashes equally.
	shaped, err := hashData(h, p.Data)
	if errors.Is(err, errDataDepth) {
		return "", false, err
	}
	// Another error is a value with no JSON form: the store says so.
	return "sha256:" + hex.EncodeToString(h.Sum(nil))[:12], err == nil && (shaped || p.jsonData), nil
}

// moduleHash returns a hash that has taken in p's modules, sorted by name,
// for the revision hash to take in the data next.
func (p *Policy) moduleHash() hash.Hash {
	h := sha256.New()
	for _, name := range slices.Sorted(maps.Keys(p.Modules)) {
		fmt.Fprintf(h, "%s\x00%s\x00", filepath.ToSlash(name), p.Modules[name].String())
	}
	return h
}

// Document returns the policy's data documents as Go values (what JSON
// decoding with UseNumber gives): Data, merged with what the loaders read.
// It builds new values at each call; prefer reading data through a policy.
func (p *Policy) Document() (map[string]any, error) {
	if p.doc == nil {
		return p.Data, nil
	}
	doc, err := p.flatDoc()
	if err != nil {
		return nil, err
	}
	return doc.Root(), nil
}

// flatDoc returns the data the loaders read merged with Data, in flat form.
func (p *Policy) flatDoc() (*flatstore.Doc, error) {
	if len(p.Data) == 0 {
		return p.doc, nil
	}
	b := flatstore.NewBuilder()
	read, err := b.FromGo(p.doc.Root())
	if err != nil {
		return nil, fmt.Errorf("policy: data: %w", err)
	}
	given, err := b.FromGo(p.Data)
	if err != nil {
		return nil, fmt.Errorf("policy: data: %w", err)
	}
	merged, err := b.Merge(read, given)
	if err != nil {
		return nil, fmt.Errorf("policy: Policy.Data and the data files: %w", err)
	}
	doc, err := b.Doc(merged)
	if err != nil {
		return nil, fmt.Errorf("policy: data: %w", err)
	}
	return doc, nil
}
