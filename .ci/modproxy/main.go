// Command modproxy adds one module version, read from a directory, to a
// file-based Go module proxy (GOPROXY=file://DIR), laid out as the GOPROXY
// protocol says: MODULE/@v/list, VERSION.info, VERSION.mod, VERSION.zip.
// .ci/release uses it to rehearse a release without publishing anything.
//
//	go run ./.ci/modproxy -module github.com/regoguard/regoguard -version v0.0.0-rehearsal -dir . -proxy /tmp/proxy
//
// The zip holds what the go command puts in a module zip: every regular file
// of the directory, without nested modules (a subdirectory holding a go.mod),
// vendor directories and version control metadata. It imports only the
// standard library, so that the library module's go.mod stays as it is.
package main

import (
	"archive/zip"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode"
)

func main() {
	module := flag.String("module", "", "module path")
	version := flag.String("version", "", "version, such as v1.2.3")
	dir := flag.String("dir", ".", "the module's directory (holding its go.mod)")
	proxy := flag.String("proxy", "", "the proxy's directory")
	flag.Parse()
	if *module == "" || *version == "" || *proxy == "" {
		flag.Usage()
		os.Exit(2)
	}
	if err := add(*module, *version, *dir, *proxy); err != nil {
		log.Fatalf("modproxy: %s@%s: %v", *module, *version, err)
	}
}

func add(module, version, dir, proxy string) error {
	gomod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return err
	}
	if first, _, _ := strings.Cut(string(gomod), "\n"); strings.TrimSpace(strings.TrimPrefix(first, "module")) != module {
		return fmt.Errorf("%s/go.mod declares %q, not module %s", dir, first, module)
	}
	enc, err := escapePath(module)
	if err != nil {
		return err
	}
	at := filepath.Join(proxy, filepath.FromSlash(enc), "@v")
	if err := os.MkdirAll(at, 0o755); err != nil {
		return err
	}
	info, err := json.Marshal(struct{ Version, Time string }{version, time.Now().UTC().Format(time.RFC3339)})
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(at, version+".info"), info, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(at, version+".mod"), gomod, 0o644); err != nil {
		return err
	}
	if err := writeZip(filepath.Join(at, version+".zip"), module+"@"+version, dir); err != nil {
		return err
	}
	list := filepath.Join(at, "list")
	old, err := os.ReadFile(list)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	versions := strings.Fields(string(old))
	if !slices.Contains(versions, version) {
		versions = append(versions, version)
	}
	return os.WriteFile(list, []byte(strings.Join(versions, "\n")+"\n"), 0o644)
}

// writeZip writes the module zip of dir, each file under prefix/.
func writeZip(name, prefix, dir string) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	zw := zip.NewWriter(f)
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel == "." {
				return nil
			}
			switch d.Name() {
			case ".git", ".hg", ".svn", ".bzr", "vendor":
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(p, "go.mod")); err == nil {
				return filepath.SkipDir // a nested module: not part of this one
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil // symbolic links and the like are left out, as the go command does
		}
		w, err := zw.Create(path.Join(prefix, rel))
		if err != nil {
			return err
		}
		src, err := os.Open(p)
		if err != nil {
			return err
		}
		defer src.Close()
		_, err = io.Copy(w, src)
		return err
	})
	if cerr := zw.Close(); err == nil {
		err = cerr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// escapePath is the proxy's case encoding of a module path: each upper-case
// letter becomes '!' and its lower-case form.
func escapePath(p string) (string, error) {
	var b strings.Builder
	for _, r := range p {
		switch {
		case r == '!' || r > unicode.MaxASCII:
			return "", fmt.Errorf("module path %q: unsupported character %q", p, r)
		case unicode.IsUpper(r):
			b.WriteByte('!')
			b.WriteRune(unicode.ToLower(r))
		default:
			b.WriteRune(r)
		}
	}
	return b.String(), nil
}
