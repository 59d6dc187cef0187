package bundles

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/open-policy-agent/opa/v1/bundle"
)

// persistedName is the file a remote bundle is kept in under PersistDir.
const persistedName = "bundle.tar.gz"

// persistPath returns where the bundle called name is persisted: a directory
// per bundle, its name made safe for any file system.
func persistPath(dir, name string) string {
	safe := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '_'
	}, name)
	if strings.Trim(safe, ".") == "" {
		safe = "_" + safe
	}
	return filepath.Join(dir, safe, persistedName)
}

// saveAtomically writes the raw bundle to file so that a reader sees either
// the old file or the complete new one: it writes a temporary file in the
// same directory, syncs it, renames it over the old one and syncs the
// directory.
func saveAtomically(file string, raw io.Reader) (err error) {
	dir := filepath.Dir(file)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("bundles: persist: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".bundle-*.tar.gz")
	if err != nil {
		return fmt.Errorf("bundles: persist: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	n, err := io.Copy(tmp, raw)
	if err != nil {
		return fmt.Errorf("bundles: persist: %w", err)
	}
	if n == 0 {
		return errors.New("bundles: persist: the downloaded bundle's raw bytes are empty")
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("bundles: persist: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("bundles: persist: %w", err)
	}
	if err := os.Rename(tmp.Name(), file); err != nil {
		return fmt.Errorf("bundles: persist: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // best effort: not every file system syncs directories
		d.Close()
	}
	return nil
}

// loadPersisted reads a persisted bundle, verifying it again. It returns
// nil, nil when there is none.
func loadPersisted(file string, opts ReadOptions) (*bundle.Bundle, error) {
	f, err := os.Open(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("bundles: persisted bundle: %w", err)
	}
	defer f.Close()
	b, err := Read(f, opts)
	if err != nil {
		return nil, fmt.Errorf("persisted bundle %s: %w", file, err)
	}
	return b, nil
}
