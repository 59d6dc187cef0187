package policy

import (
	"runtime"
	"syscall"
	"testing"
)

// TestLowPriority: f runs on a thread at backgroundNice, the
// caller's own thread keeps its priority, and a panic in f reaches the
// caller.
func TestLowPriority(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	mine, err := syscall.Getpriority(syscall.PRIO_PROCESS, syscall.Gettid())
	if err != nil {
		t.Skip("getpriority:", err)
	}
	var inside int
	lowPriority(func() { inside, _ = syscall.Getpriority(syscall.PRIO_PROCESS, syscall.Gettid()) })
	// The raw syscall returns 20 - nice.
	if 20-inside != backgroundNice {
		t.Errorf("nice inside lowPriority = %d, want %d", 20-inside, backgroundNice)
	}
	if after, _ := syscall.Getpriority(syscall.PRIO_PROCESS, syscall.Gettid()); after != mine {
		t.Errorf("the caller's priority changed: %d -> %d", mine, after)
	}
	defer func() {
		if r := recover(); r != "boom" {
			t.Errorf("recovered %v, want the panic of f", r)
		}
	}()
	lowPriority(func() { panic("boom") })
}
