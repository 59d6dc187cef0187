package policy

import (
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
)

// Loader loads policies with options. The zero Loader is what [LoadFiles],
// [LoadFS] and [Parse] use: Rego v1.
type Loader struct {
	// RegoVersion is the syntax the modules are written in: ast.RegoV1 (the
	// default, when zero) or ast.RegoV0 for policies written before OPA 1.0,
	// such as most fastapi-opa policies (allow { ... } without if, no
	// import rego.v1). v0 modules are compiled with OPA's v0 compatibility,
	// as `opa run --v0-compatible` does. Give the Engine the same version
	// (Config.RegoVersion) so that its reloads read the files the same way.
	RegoVersion ast.RegoVersion
}

func (l Loader) version() ast.RegoVersion {
	if l.RegoVersion == ast.RegoUndefined {
		return ast.RegoV1
	}
	return l.RegoVersion
}

// LoadFiles is [LoadFiles] in l's Rego version.
func (l Loader) LoadFiles(paths ...string) (*Policy, error) {
	return l.read(func(v ast.RegoVersion) (*Policy, error) { return load(nil, paths, v) })
}

// LoadFS is [LoadFS] in l's Rego version.
func (l Loader) LoadFS(fsys fs.FS, paths ...string) (*Policy, error) {
	if len(paths) == 0 {
		paths = []string{"."}
	}
	return l.read(func(v ast.RegoVersion) (*Policy, error) { return load(fsys, paths, v) })
}

// Parse is [Parse] in l's Rego version.
func (l Loader) Parse(modules map[string]string, data map[string]any) (*Policy, error) {
	return l.read(func(v ast.RegoVersion) (*Policy, error) { return parse(modules, data, v) })
}

// read reads a policy in l's Rego version. When Rego v1 fails, it tries v0,
// and a policy that reads as v0 is a [V0SyntaxError] holding the v1 error.
func (l Loader) read(in func(ast.RegoVersion) (*Policy, error)) (*Policy, error) {
	p, err := in(l.version())
	if err != nil && l.version() == ast.RegoV1 {
		if _, v0err := in(ast.RegoV0); v0err == nil {
			return nil, &V0SyntaxError{Err: err}
		}
	}
	return p, err
}

// V0SyntaxError is returned when a policy read as Rego v1 fails to parse but
// parses as Rego v0: it was written for OPA before 1.0. Its message says so
// and how to go on: convert the files with `opa fmt --v0-v1 -w`, or load them
// as v0 (Loader.RegoVersion, --rego-version v0).
type V0SyntaxError struct {
	// Err is the Rego v1 parse error (a *CompileError naming each problem).
	Err error
}

// Error names the files, the conversion command and the v1 parser's error.
func (e *V0SyntaxError) Error() string {
	files := []string{}
	var ce *CompileError
	if errors.As(e.Err, &ce) {
		seen := map[string]bool{}
		for _, p := range ce.Problems {
			if p.File != "" && !seen[p.File] {
				seen[p.File] = true
				files = append(files, p.File)
			}
		}
	}
	target := "FILES"
	if len(files) > 0 {
		target = strings.Join(slices.Sorted(slices.Values(files)), " ")
	}
	return fmt.Sprintf("policy: this is Rego v0 syntax (written for OPA before 1.0), and regoguard reads Rego v1 by default: "+
		"convert it with `opa fmt --v0-v1 -w %s`, or load it as v0 (--rego-version v0; policy.Loader.RegoVersion and "+
		"policy.Config.RegoVersion = ast.RegoV0). The v1 parser said: %v", target, e.Err)
}

// Unwrap returns the Rego v1 parse error, so that [errors.As] finds its
// *CompileError.
func (e *V0SyntaxError) Unwrap() error { return e.Err }

// regoVersion is the version an Engine compiles with and reloads files in.
func (c Config) regoVersion() ast.RegoVersion {
	return Loader{RegoVersion: c.RegoVersion}.version()
}
