package shaq

import (
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Futex operations without FUTEX_PRIVATE_FLAG: the word lives in memory
// shared between processes, and shaq 4.0 (src/futex.rs) uses the shared
// variants too, so its wakes and ours reach each other's waiters.
const (
	futexWaitOp = 0 // FUTEX_WAIT
	futexWakeOp = 1 // FUTEX_WAKE
)

// futexWake wakes up to n waiters sleeping on the low half of w.
func futexWake(w *atomic.Uint64, n int) {
	// An error (EFAULT cannot happen on a live mapping) only means nobody
	// was woken; the waiter's timeout bounds the damage.
	_, _, _ = unix.Syscall6(unix.SYS_FUTEX, futexAddr(w), futexWakeOp, uintptr(n), 0, 0, 0)
}

// futexWait sleeps while the low half of w equals val, at most d. It may
// return early (wake, EAGAIN, EINTR, spurious); the caller re-checks.
func futexWait(w *atomic.Uint64, val uint32, d time.Duration) {
	ts := unix.NsecToTimespec(int64(d))
	_, _, _ = unix.Syscall6(unix.SYS_FUTEX, futexAddr(w), futexWaitOp, uintptr(val), uintptr(unsafe.Pointer(&ts)), 0, 0)
}
