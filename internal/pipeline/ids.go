package pipeline

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"sync/atomic"
)

// IDs makes decision IDs that are unique across processes (a random
// prefix) and cheap per decision (a counter), instead of reading the
// system's random source for every decision. It is safe for concurrent use.
type IDs struct {
	prefix string
	n      atomic.Uint64
}

// NewIDs returns a source of decision IDs with a fresh random prefix.
func NewIDs() *IDs {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return &IDs{prefix: hex.EncodeToString(b) + "-"}
}

// Next returns a new decision ID.
func (s *IDs) Next() string {
	// One allocation: the prefix and the counter are put together on the
	// stack and copied once.
	var buf [48]byte
	return string(strconv.AppendUint(append(buf[:0], s.prefix...), s.n.Add(1), 36))
}
