//go:build unix

package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/regoguard/regoguard/policy/internal/flatstore"
)

// TestMappedFileTruncated: a data file truncated while mapped (rewritten in
// place during a reload) makes the load fail with an error, not crash the
// process.
func TestMappedFileTruncated(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data.json")
	big := `{"a": "` + strings.Repeat("x", 3<<20) + `"}`
	if err := os.WriteFile(path, []byte(big), 0o600); err != nil {
		t.Fatal(err)
	}
	bs, unmap, err := mapFile(path)
	if err != nil || bs == nil {
		t.Skipf("not mapped: %v", err)
	}
	defer unmap()
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	_, err = parseMapped(flatstore.NewBuilder(), bs)
	if err == nil || !strings.Contains(err.Error(), "changed while it was read") {
		t.Errorf("err = %v, want the file reported changed", err)
	}
}
