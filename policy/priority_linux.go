package policy

import (
	"runtime"
	"syscall"
)

// backgroundNice is the nice value of the threads that build a new revision
// while one serves. Linux schedules the threads of a process group (an
// autogroup, a container's cgroup) fairly against other groups, and by nice
// value within it: a building thread at nice 10 gets about a tenth of the CPU
// that a thread deciding a request gets, whenever one is runnable, but keeps
// the group's share when none is.
const backgroundNice = 10

// lowPriority runs f on an operating-system thread of its own at
// backgroundNice and waits for it. The thread is discarded afterwards
// (its goroutine ends locked to it): a thread's nice value cannot be lowered
// back without privilege, and it must not go on to run requests.
func lowPriority(f func()) {
	done := make(chan struct{})
	var panicked any
	go func() {
		defer close(done)
		// A panic in f goes on in the caller's goroutine, where the caller
		// may recover it, as if f had run there.
		defer func() { panicked = recover() }()
		runtime.LockOSThread()
		// Best effort: on failure f runs at the usual priority.
		_ = syscall.Setpriority(syscall.PRIO_PROCESS, syscall.Gettid(), backgroundNice)
		f()
	}()
	<-done
	if panicked != nil {
		panic(panicked)
	}
}
