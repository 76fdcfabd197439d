// Package shm creates, maps and bounds-checks shared-memory regions passed
// between processes by file descriptor: anonymous memfd files (2 MiB huge
// pages when the kernel has them, else standard pages), as Agave's
// scheduler-bindings handshake server creates them, and files received over
// a unix socket with SCM_RIGHTS. Everything above sees byte slices and typed
// atomics at checked offsets; no raw pointer leaves this package's callers
// under channels/.
package shm

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	// HugePageSize is the huge-page size asked of memfd_create (MFD_HUGE_2MB).
	HugePageSize = 2 << 20
	// PageSize is the standard page size files are rounded to without huge
	// pages (Agave's align_file_size uses 4096 too).
	PageSize = 4096

	// hugetlbfsMagic is HUGETLBFS_MAGIC from linux/magic.h: the f_type of
	// fstatfs on a memfd created with MFD_HUGETLB.
	hugetlbfsMagic = 0x958458f6
)

// Errors, matched with errors.Is.
var (
	// ErrBounds: an offset or length outside the mapping, or misaligned for
	// an atomic.
	ErrBounds = errors.New("shm: offset outside the mapped region")
	// ErrClosed: the region was closed.
	ErrClosed = errors.New("shm: region closed")
	// ErrSize: a size that cannot be mapped (zero, negative, too large).
	ErrSize = errors.New("shm: invalid region size")
)

// Region is one shared file mapped MAP_SHARED read/write. It owns the file
// and the mapping; Close releases both. A Region is not safe for concurrent
// Close with other use; the views it hands out die with the mapping.
type Region struct {
	name        string
	f           *os.File
	data        []byte
	huge        bool
	hugeRefused error
}

// Create makes an anonymous memfd called name of at least size bytes and
// maps it. With hugePages it first asks for 2 MiB huge pages
// (MFD_HUGETLB|MFD_HUGE_2MB, size rounded up to 2 MiB) and, if the kernel
// refuses (no hugetlb support, no free huge pages: the mmap reservation
// fails), falls back to standard pages with the size rounded to 4 KiB;
// Huge reports which one was used and HugeRefused why huge pages were not.
// This mirrors Agave's handshake server (scheduling-utils/src/handshake/
// server.rs create_shmem/align_file_size, read at anza-xyz/agave 091bee17).
func Create(name string, size int, hugePages bool) (*Region, error) {
	if size <= 0 || size > 1<<40 {
		return nil, fmt.Errorf("shm: create %q: size %d: %w", name, size, ErrSize)
	}
	var refused error
	if hugePages {
		r, err := create(name, roundUp(size, HugePageSize), true)
		if err == nil {
			return r, nil
		}
		refused = err
	}
	r, err := create(name, roundUp(size, PageSize), false)
	if err != nil {
		return nil, err
	}
	r.hugeRefused = refused
	return r, nil
}

func create(name string, size int, huge bool) (*Region, error) {
	flags := unix.MFD_CLOEXEC
	if huge {
		flags |= unix.MFD_HUGETLB | unix.MFD_HUGE_2MB
	}
	fd, err := unix.MemfdCreate(name, flags)
	if err != nil {
		return nil, fmt.Errorf("shm: memfd_create %q (huge=%v): %w", name, huge, err)
	}
	f := os.NewFile(uintptr(fd), name)
	if err := unix.Ftruncate(fd, int64(size)); err != nil {
		f.Close()
		return nil, fmt.Errorf("shm: size memfd %q to %d bytes (huge=%v): %w", name, size, huge, err)
	}
	data, err := unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		f.Close()
		if huge {
			return nil, fmt.Errorf("shm: map %q with 2 MiB huge pages (are any reserved in /proc/sys/vm/nr_hugepages?): %w", name, err)
		}
		return nil, fmt.Errorf("shm: map %q (%d bytes): %w", name, size, err)
	}
	return &Region{name: name, f: f, data: data, huge: huge}, nil
}

// MapFile maps a shared file received from another process (typically by
// SCM_RIGHTS) over its whole length, taken from fstat. The Region takes
// ownership of f and closes it on Close; callers may close it earlier with
// CloseFile once mapped, as the mapping stays valid.
func MapFile(f *os.File) (*Region, error) {
	if f == nil {
		return nil, fmt.Errorf("shm: map nil file: %w", ErrSize)
	}
	var st unix.Stat_t
	fd := int(f.Fd())
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("shm: fstat %s: %w", f.Name(), err)
	}
	if st.Size <= 0 || st.Size > 1<<40 {
		return nil, fmt.Errorf("shm: map %s: file size %d (an empty or truncated shared-memory file; the sender did not size it): %w", f.Name(), st.Size, ErrSize)
	}
	data, err := unix.Mmap(fd, 0, int(st.Size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("shm: map %s (%d bytes): %w", f.Name(), st.Size, err)
	}
	huge := false
	var fs unix.Statfs_t
	if unix.Fstatfs(fd, &fs) == nil && uint32(fs.Type) == hugetlbfsMagic {
		huge = true
	}
	return &Region{name: f.Name(), f: f, data: data, huge: huge}, nil
}

// Name is the memfd or file name, for error messages.
func (r *Region) Name() string { return r.name }

// Len is the mapped length in bytes (the file size).
func (r *Region) Len() int { return len(r.data) }

// File is the backing file, to pass to another process; nil after
// CloseFile or Close.
func (r *Region) File() *os.File { return r.f }

// Huge reports whether the file lives on 2 MiB huge pages.
func (r *Region) Huge() bool { return r.huge }

// HugeRefused is why Create fell back to standard pages when huge pages
// were asked for; nil otherwise.
func (r *Region) HugeRefused() error { return r.hugeRefused }

// CloseFile closes the backing file but keeps the mapping (a client may
// close received fds once everything is mapped).
func (r *Region) CloseFile() error {
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	return err
}

// Close unmaps the region and closes the file. Views taken from it must
// not be used afterwards.
func (r *Region) Close() error {
	var errs []error
	if r.data != nil {
		if err := unix.Munmap(r.data); err != nil {
			errs = append(errs, fmt.Errorf("shm: unmap %s: %w", r.name, err))
		}
		r.data = nil
	}
	if err := r.CloseFile(); err != nil {
		errs = append(errs, fmt.Errorf("shm: close %s: %w", r.name, err))
	}
	return errors.Join(errs...)
}

// Bytes is the whole mapping. Callers under channels/ build their views
// from it; it is nil after Close.
func (r *Region) Bytes() []byte { return r.data }

// Slice returns the n bytes at off, or ErrBounds when any of them lies
// outside the mapping.
func (r *Region) Slice(off, n int) ([]byte, error) {
	if r.data == nil {
		return nil, fmt.Errorf("shm: %s: %w", r.name, ErrClosed)
	}
	if off < 0 || n < 0 || off > len(r.data) || n > len(r.data)-off {
		return nil, fmt.Errorf("shm: %s: [%d, +%d) of %d bytes: %w", r.name, off, n, len(r.data), ErrBounds)
	}
	return r.data[off : off+n : off+n], nil
}

// Uint64 returns the 8-byte word at off as an atomic. off must be 8-aligned
// and inside the mapping (mmap returns page-aligned memory, so file offsets
// and addresses agree on alignment). Go's atomics are sequentially
// consistent, which is at least as strong as the Acquire/Release/AcqRel the
// Rust peers use; each caller states what its accesses order.
func (r *Region) Uint64(off int) (*atomic.Uint64, error) {
	b, err := r.Slice(off, 8)
	if err != nil {
		return nil, err
	}
	if off%8 != 0 {
		return nil, fmt.Errorf("shm: %s: 8-byte word at %d is misaligned: %w", r.name, off, ErrBounds)
	}
	return (*atomic.Uint64)(unsafe.Pointer(&b[0])), nil
}

// Uint32 returns the 4-byte word at off (4-aligned) as an atomic.
func (r *Region) Uint32(off int) (*atomic.Uint32, error) {
	b, err := r.Slice(off, 4)
	if err != nil {
		return nil, err
	}
	if off%4 != 0 {
		return nil, fmt.Errorf("shm: %s: 4-byte word at %d is misaligned: %w", r.name, off, ErrBounds)
	}
	return (*atomic.Uint32)(unsafe.Pointer(&b[0])), nil
}

func roundUp(n, to int) int { return (n + to - 1) / to * to }

// RoundSize is size rounded up as Create would round it (2 MiB with huge
// pages, 4 KiB without).
func RoundSize(size int, huge bool) int {
	if huge {
		return roundUp(size, HugePageSize)
	}
	return roundUp(size, PageSize)
}
