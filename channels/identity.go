package channels

import (
	"errors"

	"golang.org/x/sys/unix"
)

// FileID identifies a channel file by device and inode, so a watcher can
// tell that the file at a path was replaced without touching the mapping.
type FileID struct{ Dev, Ino uint64 }

// FileID returns the identity of the file this consumer mapped.
func (c *Consumer[R]) FileID() FileID { return FileID{c.m.dev, c.m.ino} }

// StatFileID returns the identity of the file at path now. A missing file
// is an *Error matching ErrNotExist. It may be called from any goroutine.
func StatFileID(path string) (FileID, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
			return FileID{}, &Error{Path: path, Op: "stat", Err: ErrNotExist, Remedy: remedyNotExist}
		}
		return FileID{}, openError(path, "stat", err)
	}
	return FileID{uint64(st.Dev), st.Ino}, nil
}

// Unread returns how many pushed records the consumer has not read, as far
// as its published head tells, and whether the head tells anything at
// all: a consumer that has never stored its head (0) says nothing, and the
// head may trail the consumer by the few hundred records between its
// stores. Unread ≥ Window means a consumer reading now loses records: the
// next Push makes it skip some (see Window).
func (p *Producer[R]) Unread() (n uint64, known bool) {
	// Load: informational; the consumer stores its head with no ordering
	// obligations (see Consumer.storeHead) and nothing here depends on
	// record contents.
	h := p.m.head.Load()
	if h == 0 || h > p.tail {
		return 0, false
	}
	return p.tail - h, true
}

// Capacity returns the number of records the ring holds.
func (p *Producer[R]) Capacity() uint64 { return p.mask + 1 }

// Window returns how many unread records a consumer can be behind the tail
// and still read them all: capacity − capacity/4. The producer may be
// rewriting the quarter of the ring ahead of its published tail, so a
// consumer further behind skips to the oldest slot that is surely intact.
func (p *Producer[R]) Window() uint64 { return p.Capacity() - burst(p.Capacity()) }
