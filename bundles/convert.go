package bundles

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"

	"github.com/regoguard/regoguard/policy"
)

// ReadOptions configure how a bundle is read.
type ReadOptions struct {
	// Verification, when set, requires a valid .signatures.json; build one
	// with bundle.NewVerificationConfig.
	Verification *bundle.VerificationConfig
	// SizeLimitBytes limits the size of each file; zero is OPA's default.
	SizeLimitBytes int64
}

// parserRegoVersion is the Rego version of modules in bundles whose manifest
// has no rego_version.
const parserRegoVersion = ast.RegoV1

// ReadFile reads a bundle from a directory or a .tar.gz file, as `opa build`
// makes it, with OPA's bundle loader, verifying its signature when
// opts.Verification is set.
func ReadFile(pathname string, opts ReadOptions) (*bundle.Bundle, error) {
	info, err := os.Stat(pathname)
	if err != nil {
		return nil, fmt.Errorf("bundles: read %s: %w", pathname, err)
	}
	var dl bundle.DirectoryLoader
	if info.IsDir() {
		dl = bundle.NewDirectoryLoader(pathname)
	} else {
		f, err := os.Open(pathname)
		if err != nil {
			return nil, fmt.Errorf("bundles: read %s: %w", pathname, err)
		}
		defer f.Close()
		dl = bundle.NewTarballLoaderWithBaseURL(f, pathname)
	}
	if opts.SizeLimitBytes > 0 {
		dl = dl.WithSizeLimitBytes(opts.SizeLimitBytes)
	}
	b, err := read(bundle.NewCustomReader(dl), opts)
	if err != nil {
		return nil, fmt.Errorf("bundles: read %s: %w", pathname, err)
	}
	return b, nil
}

// Read reads a bundle in .tar.gz form from r with OPA's bundle reader,
// verifying its signature when opts.Verification is set.
func Read(r io.Reader, opts ReadOptions) (*bundle.Bundle, error) {
	b, err := read(bundle.NewReader(r), opts)
	if err != nil {
		return nil, fmt.Errorf("bundles: read: %w", err)
	}
	return b, nil
}

func read(br *bundle.Reader, opts ReadOptions) (*bundle.Bundle, error) {
	br = br.WithRegoVersion(parserRegoVersion).
		WithProcessAnnotations(true).
		WithBundleVerificationConfig(opts.Verification)
	if opts.SizeLimitBytes > 0 {
		br = br.WithSizeLimitBytes(opts.SizeLimitBytes)
	}
	b, err := br.Read()
	if err != nil {
		return nil, err
	}
	if err := check(&b); err != nil {
		return nil, err
	}
	return &b, nil
}

// check rejects bundles that the in-process engine cannot serve.
func check(b *bundle.Bundle) error {
	switch {
	case b.Type() == bundle.DeltaBundleType:
		return errors.New("delta bundles are not supported; serve snapshot bundles")
	case len(b.WasmModules) > 0 || len(b.PlanModules) > 0:
		return errors.New("bundles with Wasm or plan modules are not supported; build the bundle without --target wasm/plan")
	case len(b.Modules) == 0 && len(b.Data) == 0:
		return errors.New("bundle is empty (no .rego modules and no data)")
	}
	return nil
}

// ToPolicy turns active bundles, by name, into one policy for
// [policy.Engine.Load]. Their manifest roots must be disjoint, as OPA
// requires. The policy's revision is the revision of the single bundle, or
// name=revision pairs sorted by name for several; Policy.Bundles gives each
// bundle's revision.
func ToPolicy(bundles map[string]*bundle.Bundle) (*policy.Policy, error) {
	if len(bundles) == 0 {
		return nil, errors.New("bundles: no bundles to activate")
	}
	names := slices.Sorted(maps.Keys(bundles))
	if err := checkRoots(names, bundles); err != nil {
		return nil, err
	}
	p := &policy.Policy{
		Modules: map[string]*ast.Module{},
		Data:    map[string]any{},
		Bundles: make(map[string]string, len(bundles)),
	}
	revisions := make([]string, 0, len(names))
	for _, name := range names {
		b := bundles[name]
		for _, m := range b.Modules {
			key := path.Join(name, strings.TrimPrefix(m.Path, "/"))
			if m.Parsed == nil {
				return nil, fmt.Errorf("bundles: bundle %q: module %s was not parsed", name, m.Path)
			}
			p.Modules[key] = m.Parsed
		}
		if err := mergeData(p.Data, b.Data, ""); err != nil {
			return nil, fmt.Errorf("bundles: bundle %q data: %w", name, err)
		}
		p.Bundles[name] = b.Manifest.Revision
		revisions = append(revisions, name+"="+b.Manifest.Revision)
	}
	switch {
	case len(names) == 1:
		p.Revision = bundles[names[0]].Manifest.Revision
	default:
		p.Revision = strings.Join(revisions, ",")
	}
	return p, nil
}

// checkRoots reports overlapping manifest roots between bundles, with OPA's
// own rule (bundle.RootPathsOverlap). A bundle without roots owns all of data.
func checkRoots(names []string, bundles map[string]*bundle.Bundle) error {
	roots := func(b *bundle.Bundle) []string {
		if b.Manifest.Roots == nil {
			return []string{""}
		}
		return *b.Manifest.Roots
	}
	for i, a := range names {
		for _, b := range names[i+1:] {
			for _, ra := range roots(bundles[a]) {
				for _, rb := range roots(bundles[b]) {
					if bundle.RootPathsOverlap(ra, rb) {
						return fmt.Errorf("bundles: bundles %q and %q have overlapping roots %q and %q", a, b, ra, rb)
					}
				}
			}
		}
	}
	return nil
}

// mergeData merges src into dst. With disjoint roots two bundles' data only
// meet in objects above their roots, so any other collision is an error.
func mergeData(dst, src map[string]any, at string) error {
	for k, v := range src {
		here := at + "/" + k
		old, ok := dst[k]
		if !ok {
			dst[k] = v
			continue
		}
		om, ok1 := old.(map[string]any)
		nm, ok2 := v.(map[string]any)
		if !ok1 || !ok2 {
			return fmt.Errorf("conflicting documents at %s", here)
		}
		merged := maps.Clone(om)
		if err := mergeData(merged, nm, here); err != nil {
			return err
		}
		dst[k] = merged
	}
	return nil
}
