//go:build unix

package policy

import (
	"fmt"
	"os"
	"syscall"
)

// mapFile maps a large file into memory read-only instead of reading it
// onto the heap: once parsed and unmapped, its pages leave the process at
// once, where a heap buffer of the same size would stay resident until the
// runtime returns it. It returns nil, nil for a small file (read it) or when
// mapping fails.
func mapFile(path string) ([]byte, func(), error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() || st.Size() < 1<<20 || st.Size() != int64(int(st.Size())) {
		return nil, nil, nil
	}
	b, err := syscall.Mmap(int(f.Fd()), 0, int(st.Size()), syscall.PROT_READ, syscall.MAP_PRIVATE)
	if err != nil {
		return nil, nil, nil
	}
	return b, func() {
		if err := syscall.Munmap(b); err != nil {
			panic(fmt.Sprintf("policy: munmap: %v", err)) // cannot happen on a mapping of ours
		}
	}, nil
}
