package channels

import (
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ErrTruncated is the sentinel of a channel file that shrank under this
// process's mapping: touching the part past its new end raised a memory
// fault (SIGBUS).
var ErrTruncated = errors.New("file shrank under the mapping (memory fault)")

const remedyTruncated = "another process shrank the channel file: a peer built for another capacity or record size (check with `qos-cli inspect`), a `truncate`, or re-creating the file in place; " +
	"the mapping was dropped, and the channel can be joined again once the file is a valid channel of this layout"

// FaultAddr reports whether r, a value recovered from a panic, is a memory
// fault that debug.SetPanicOnFault turned into a panic, and returns the
// faulting address: 0 when the system did not report one (qemu-user does
// not, for SIGBUS; Go also reports none below 4096, where a nil pointer
// dereference faults).
func FaultAddr(r any) (addr uintptr, ok bool) {
	re, ok := r.(runtime.Error)
	if !ok {
		return 0, false
	}
	if a, ok := re.(interface{ Addr() uintptr }); ok {
		return a.Addr(), true
	}
	// The runtime's panicmem, without an address (runtime/panic.go).
	return 0, re.Error() == "runtime error: invalid memory address or nil pointer dereference"
}

// faulted reports whether a memory fault at addr (0: unknown) hit m: addr
// lies in the mapped file, or, with no address, the file at m.path is
// still the mapped one and now shorter than the mapping (one stat).
func (m *mapping) faulted(addr uintptr) bool {
	if m.size == 0 || m.detached || m.mem == nil {
		return false
	}
	if addr != 0 {
		return addr-m.base < m.size
	}
	var st unix.Stat_t
	if err := unix.Stat(m.path, &st); err != nil {
		return false
	}
	return uint64(st.Dev) == m.dev && st.Ino == m.ino && st.Size < int64(m.size)
}

// faultError describes a fault at addr (0: unknown) in m, with the
// file's size now.
func (m *mapping) faultError(op string, addr uintptr) *Error {
	now := "gone"
	var st unix.Stat_t
	if err := unix.Stat(m.path, &st); err == nil {
		now = fmt.Sprintf("%d bytes", st.Size)
		if uint64(st.Dev) != m.dev || st.Ino != m.ino {
			now += " (another file now)"
		}
	}
	at := "at an unreported address"
	if addr != 0 {
		at = fmt.Sprintf("at byte %d", addr-m.base)
	}
	return &Error{Path: m.path, Op: op, Err: ErrTruncated,
		Detail: fmt.Sprintf("memory fault %s of the %d-byte mapping; the file is now %s", at, m.size, now),
		Remedy: remedyTruncated}
}

// privateHeader is the header a detached mapping points at: 8-byte
// aligned, in this process's memory, never truncated.
type privateHeader [HeaderSize / 8]uint64

// detach unmaps the file without touching it and points the header words
// at a private copy whose tail is tail, so every later use of the ring is
// harmless. It allocates (a fault is rare); it is safe to call twice.
func (m *mapping) detach(tail uint64) {
	if m.detached || m.mem == nil {
		return
	}
	_ = unix.Munmap(m.mem) // only fails for a bad range, which this is not
	h := new(privateHeader)
	m.mem = unsafe.Slice((*byte)(unsafe.Pointer(h)), HeaderSize)
	m.detached = true
	m.tail = m.word(offTail)
	m.head = m.word(offHead)
	m.producerHB = m.word(offProducerHB)
	m.consumerHB = m.word(offConsumerHB)
	m.recs = nil
	m.tail.Store(tail) // private: no ordering needed
}

// guard runs f with memory faults turned into panics (restoring the
// goroutine's setting after) and returns the fault as an *Error when it
// hit m; a panic that is not a fault in m goes on.
func (m *mapping) guard(op string, f func()) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			addr, ok := FaultAddr(r)
			if !ok || !m.faulted(addr) {
				panic(r)
			}
			err = m.faultError(op, addr)
		}
	}()
	f()
	return nil
}

// Faulted reports whether a memory fault at addr (from FaultAddr) hit this
// consumer's mapped file: addr lies in it or, when addr is 0 (not
// reported), the file at Path is still the mapped one and now shorter
// than the mapping (one stat system call).
func (c *Consumer[R]) Faulted(addr uintptr) bool { return c.m.faulted(addr) }

// Detach drops the mapping of a consumer whose file faulted at addr (see
// FaultAddr; 0 if unknown) without touching it, and returns the *Error (ErrTruncated)
// that names the file. From then on Pop finds nothing, Beat and Commit go
// nowhere, ProducerAlive is false, the counters keep their values, and
// Close only forgets the consumer: join the file again with OpenConsumer.
// A detached consumer stays detached; Detach again returns the same kind
// of error.
func (c *Consumer[R]) Detach(addr uintptr) error {
	err := c.m.faultError("read", addr)
	c.m.detach(c.next)
	c.tail, c.recs = c.m.tail, nil
	c.headPub = c.next
	c.lastProdB = 0
	return err
}

// Detached reports whether Detach dropped the mapping.
func (c *Consumer[R]) Detached() bool { return c.m.detached }

// Faulted reports whether a memory fault at addr (from FaultAddr) hit this
// producer's mapped file: addr lies in it or, when addr is 0 (not
// reported), the file at Path is still the mapped one and now shorter
// than the mapping (one stat system call).
func (p *Producer[R]) Faulted(addr uintptr) bool { return p.m.faulted(addr) }

// Detach drops the mapping of a producer whose file faulted at addr (see
// FaultAddr; 0 if unknown) without touching it, and returns the *Error (ErrTruncated)
// that names the file. From then on Push writes into one private slot
// that nobody reads (a caller should stop sending), Unread knows nothing,
// ConsumerAlive is false, and Close only forgets the producer: join the
// file again with OpenProducer.
func (p *Producer[R]) Detach(addr uintptr) error {
	err := p.m.faultError("write", addr)
	p.m.detach(p.tail)
	p.tailW = p.m.tail
	p.recs = unsafe.Pointer(unsafe.SliceData(make([]byte, p.recSize)))
	p.mask = 0
	p.published = p.tail
	p.lastConsB = 0
	return err
}

// Detached reports whether Detach dropped the mapping.
func (p *Producer[R]) Detached() bool { return p.m.detached }
