//go:build !linux

package policy

// lowPriority runs f: only Linux gives a thread a priority of its own.
func lowPriority(f func()) { f() }
