package channels

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ErrMap is the sentinel of a mapping failure that none of the others
// explains (the system error is in Error.Cause).
var ErrMap = errors.New("cannot map the file")

// mapping is one channel file mapped MAP_SHARED into this process. The
// file descriptor is closed once mapped; the mapping keeps the file alive.
type mapping struct {
	mem      []byte // the whole file, from unix.Mmap
	path     string
	dev, ino uint64 // identity of the mapped file, for Replaced
	created  bool   // this open wrote the header (new or zeroed file)
	huge     bool
	// The mapped range, kept to attribute a memory fault (faulted).
	base, size uintptr
	// detached: the file was dropped after a fault; mem is a private
	// header (see detach) and is not unmapped.
	detached bool

	// Pointers into mem. Each is 8-byte aligned (mem is page aligned and
	// every offset is a multiple of 128), as sync/atomic requires.
	tail, head, producerHB, consumerHB *atomic.Uint64
	recs                               unsafe.Pointer // &mem[HeaderSize]
}

// word returns the atomic u64 at byte offset off of the mapping.
// REQUIRES: off%8 == 0 and off+8 <= HeaderSize.
func (m *mapping) word(off int) *atomic.Uint64 {
	return (*atomic.Uint64)(unsafe.Pointer(&m.mem[off]))
}

// metaWord returns the atomic u64 at metadata offset off.
// REQUIRES: 0 <= off <= MetaSize-8 and off%8 == 0; it panics otherwise,
// as a misuse by the caller (offsets are constants of the caller's code).
func (m *mapping) metaWord(off int) *atomic.Uint64 {
	if off < 0 || off > MetaSize-8 || off%8 != 0 {
		panic(fmt.Sprintf("channels: BUG: metadata offset %d not in 0..%d or not a multiple of 8", off, MetaSize-8))
	}
	return m.word(offMeta + off)
}

// unmap releases the mapping; it is safe to call twice.
func (m *mapping) unmap() error {
	if m.mem == nil {
		return nil
	}
	var err error
	if !m.detached {
		err = unix.Munmap(m.mem)
	}
	m.mem = nil
	m.tail, m.head, m.producerHB, m.consumerHB, m.recs = nil, nil, nil, nil, nil
	if err != nil {
		return &Error{Path: m.path, Op: "close", Err: ErrMap, Detail: "munmap failed", Cause: err}
	}
	return nil
}

// replaced reports whether m.path now names a different file than the
// mapped one, or no file at all. It makes one stat system call.
func (m *mapping) replaced() bool {
	var st unix.Stat_t
	if err := unix.Stat(m.path, &st); err != nil {
		return errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR)
	}
	return uint64(st.Dev) != m.dev || st.Ino != m.ino
}

// checkSpec validates a spec and the options' names before any file is
// touched.
func checkSpec(o Options, s Spec, op string) error {
	path := o.Path(s.Name)
	if s.Name == "" || strings.ContainsRune(o.Prefix+s.Name, '/') || strings.ContainsRune(o.Prefix+s.Name, 0) {
		return &Error{Path: path, Op: op, Err: ErrInvalid, Detail: fmt.Sprintf("bad file name %q", o.Prefix+s.Name), Remedy: remedyInvalidPrefix}
	}
	if !isPow2(s.Capacity) || s.Capacity < 2 {
		// Capacity 1 leaves no slot that is safe to read while the
		// producer writes the next one.
		return &Error{Path: path, Op: op, Err: ErrInvalid, Detail: fmt.Sprintf("capacity %d of %s is not a power of two ≥ 2", s.Capacity, s.Name)}
	}
	if s.MinSize() == 0 {
		return &Error{Path: path, Op: op, Err: ErrInvalid, Detail: fmt.Sprintf("capacity %d × record size %d of %s is out of range", s.Capacity, s.RecordSize, s.Name)}
	}
	return nil
}

// openMapping opens, checks and maps the channel file of s. With create,
// it creates a missing file and initialises one whose magic is 0 (the
// producer's create-or-join); without, the file must exist and be
// initialised (the consumer's join). op names the operation in errors.
func openMapping(o Options, s Spec, create bool, op string) (m *mapping, err error) {
	if err := checkSpec(o, s, op); err != nil {
		return nil, err
	}
	path := o.Path(s.Name)
	fail := func(sentinel error, detail, remedy string, cause error) error {
		return &Error{Path: path, Op: op, Err: sentinel, Detail: detail, Remedy: remedy, Cause: cause}
	}

	minSize := s.MinSize()
	page := int64(os.Getpagesize())
	if o.HugePages {
		hp, err := hugetlbfsPageSize(o.Dir(), op)
		if err != nil {
			return nil, err
		}
		page = hp
	}
	// A file on huge pages is a whole number of pages; one on /dev/shm is
	// exactly the ring, but a peer that rounds it up to a page is accepted.
	maxSize := roundUp(minSize, page)
	newSize := minSize
	if o.HugePages {
		newSize = maxSize
	}

	mode := os.FileMode(0o600)
	gid := -1
	if create && o.Group != "" {
		mode = 0o660
		if gid, err = lookupGroup(o.Group); err != nil {
			return nil, fail(ErrGroup, fmt.Sprintf("group %q", o.Group), remedyGroup, err)
		}
	}

	f, err := os.OpenFile(path, os.O_RDWR, 0)
	created := false
	if err != nil && create && errors.Is(err, fs.ErrNotExist) {
		f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, mode)
		if err == nil {
			created = true
		} else if errors.Is(err, fs.ErrExist) { // lost a race with another creator
			f, err = os.OpenFile(path, os.O_RDWR, 0)
		}
	}
	if err != nil {
		return nil, openError(path, op, err)
	}
	defer f.Close() // the mapping outlives the descriptor
	if created {
		defer func() {
			if err != nil {
				_ = os.Remove(path) // leave nothing half-made behind
			}
		}()
		// The umask may have cleared bits of mode: set it explicitly.
		if err := f.Chmod(mode); err != nil {
			return nil, fail(ErrPermission, "chmod "+mode.String(), remedyPermission, err)
		}
		if gid >= 0 {
			if err := f.Chown(-1, gid); err != nil {
				return nil, fail(ErrPermission, fmt.Sprintf("chgrp to %s", o.Group), "run as root or as a member of group "+o.Group, err)
			}
		}
	}

	fi, err := f.Stat()
	if err != nil {
		return nil, fail(ErrMap, "stat failed", "", err)
	}
	size := fi.Size()
	if size == 0 && create {
		// A new (or empty) file: give it its size. On hugetlbfs check the
		// free pages first, to name the shortfall instead of failing later.
		if o.HugePages {
			if err := checkFreeHugePages(path, op, newSize, page); err != nil {
				return nil, err
			}
		}
		if err := f.Truncate(newSize); err != nil {
			return nil, fail(ErrFileSize, fmt.Sprintf("cannot set the size to %d bytes", newSize), "", err)
		}
		size = newSize
	} else {
		if err := checkHeader(f, s, size, create, path, op); err != nil {
			return nil, err
		}
		if size < minSize || size > maxSize {
			return nil, fail(ErrFileSize,
				fmt.Sprintf("file is %d bytes, channel %s needs %d (%d-byte header + %d records of %d bytes%s)",
					size, s.Name, minSize, HeaderSize, s.Capacity, s.RecordSize, pageNote(o.HugePages, page)),
				remedyRecreate, nil)
		}
	}

	flags := unix.MAP_SHARED | unix.MAP_POPULATE // populate: fault every page in now, not on the hot path
	if o.HugePages {
		// Only accepted on a hugetlbfs file: a second guard that the
		// mapping really is on huge pages.
		flags |= unix.MAP_HUGETLB
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ|unix.PROT_WRITE, flags)
	if err != nil {
		switch {
		case o.HugePages && errors.Is(err, unix.ENOMEM):
			return nil, hugePagesError(path, op, size, page, err)
		case errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM):
			return nil, fail(ErrPermission, "mmap read-write", remedyPermission, err)
		}
		return nil, fail(ErrMap, fmt.Sprintf("mmap %d bytes", size), "", err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	m = &mapping{mem: mem, path: path, dev: uint64(st.Dev), ino: st.Ino, huge: o.HugePages,
		base: uintptr(unsafe.Pointer(unsafe.SliceData(mem))), size: uintptr(len(mem))}
	m.tail = m.word(offTail)
	m.head = m.word(offHead)
	m.producerHB = m.word(offProducerHB)
	m.consumerHB = m.word(offConsumerHB)
	m.recs = unsafe.Pointer(&mem[HeaderSize])

	// Check again on the mapping, with atomic loads: the header may have
	// changed since it was read (a producer initialising it meanwhile).
	// The magic is loaded first; the initialiser stores it last, so
	// seeing Magic means the capacity stored before it is visible too.
	// The file may also shrink meanwhile: a fault here is an error.
	var magic, capacity uint64
	if ferr := m.guard(op, func() {
		magic = m.word(offMagic).Load()
		if magic == 0 && create {
			// Initialise: counters and capacity first, magic last (see
			// above).
			m.tail.Store(0)
			m.head.Store(0)
			m.producerHB.Store(0)
			m.consumerHB.Store(0)
			m.word(offCapacity).Store(s.Capacity)
			m.word(offMagic).Store(Magic)
			m.created = true
			return
		}
		capacity = m.word(offCapacity).Load()
	}); ferr != nil {
		_ = m.unmap()
		return nil, ferr
	}
	switch {
	case m.created:
	case magic == 0:
		_ = m.unmap()
		return nil, fail(ErrNotInitialised, "", remedyNotInit, nil)
	case magic != Magic:
		_ = m.unmap()
		return nil, fail(ErrCorrupt, fmt.Sprintf("magic 0x%016x, expected 0x%016x (\"TEMPORAL\")", magic, Magic), remedyCorrupt, nil)
	case capacity != s.Capacity:
		_ = m.unmap()
		return nil, fail(ErrCapacity, fmt.Sprintf("file has capacity %d, channel %s expects %d", capacity, s.Name, s.Capacity), remedyRecreate, nil)
	}
	return m, nil
}

// checkHeader reads the header of an existing file with pread and checks
// its magic and capacity, before the file is mapped. A consumer refuses a
// file whose magic is 0; a producer will initialise it.
func checkHeader(f *os.File, s Spec, size int64, create bool, path, op string) error {
	fail := func(sentinel error, detail, remedy string) error {
		return &Error{Path: path, Op: op, Err: sentinel, Detail: detail, Remedy: remedy}
	}
	if size < HeaderSize {
		if size == 0 {
			return fail(ErrNotInitialised, "file is empty", remedyNotInit)
		}
		return fail(ErrFileSize, fmt.Sprintf("file is %d bytes, smaller than the %d-byte header", size, HeaderSize), remedyRecreate)
	}
	var hdr [HeaderSize]byte
	if _, err := f.ReadAt(hdr[:], 0); err != nil {
		return &Error{Path: path, Op: op, Err: ErrMap, Detail: "reading the header", Cause: err}
	}
	magic := binary.LittleEndian.Uint64(hdr[offMagic:])
	capacity := binary.LittleEndian.Uint64(hdr[offCapacity:])
	switch {
	case magic == 0 && create:
		return nil
	case magic == 0:
		return fail(ErrNotInitialised, "", remedyNotInit)
	case magic != Magic:
		return fail(ErrCorrupt, fmt.Sprintf("magic 0x%016x, expected 0x%016x (\"TEMPORAL\")", magic, Magic), remedyCorrupt)
	case capacity != s.Capacity:
		return fail(ErrCapacity, fmt.Sprintf("file has capacity %d, channel %s expects %d", capacity, s.Name, s.Capacity), remedyRecreate)
	}
	return nil
}

func pageNote(huge bool, page int64) string {
	if huge {
		return fmt.Sprintf(", rounded up to %d-byte huge pages", page)
	}
	return ""
}

// openError classifies an error from opening a channel file.
func openError(path, op string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return &Error{Path: path, Op: op, Err: ErrNotExist, Remedy: remedyNotExist, Cause: err}
	case errors.Is(err, fs.ErrPermission):
		return &Error{Path: path, Op: op, Err: ErrPermission, Remedy: remedyPermission, Cause: err}
	}
	return &Error{Path: path, Op: op, Err: ErrMap, Detail: "open failed", Cause: err}
}

// lookupGroup resolves a group name or numeric id.
func lookupGroup(name string) (int, error) {
	if id, err := strconv.Atoi(name); err == nil && id >= 0 {
		return id, nil
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		return -1, err
	}
	return strconv.Atoi(g.Gid)
}

// hugetlbfsPageSize checks that dir is a hugetlbfs mount and returns its
// page size.
func hugetlbfsPageSize(dir, op string) (int64, error) {
	remedy := fmt.Sprintf("as root: mkdir -p %s && mount -t hugetlbfs -o pagesize=2M none %s", dir, dir)
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		if errors.Is(err, unix.EACCES) {
			return 0, &Error{Path: dir, Op: op, Err: ErrPermission, Detail: "cannot reach the hugetlbfs directory", Remedy: remedyPermission, Cause: err}
		}
		return 0, &Error{Path: dir, Op: op, Err: ErrHugetlbfs, Detail: "cannot read the directory", Remedy: remedy, Cause: err}
	}
	if uint32(st.Type) != uint32(unix.HUGETLBFS_MAGIC) {
		return 0, &Error{Path: dir, Op: op, Err: ErrHugetlbfs,
			Detail: fmt.Sprintf("%s is on %s, not hugetlbfs", dir, fsName(uint32(st.Type))), Remedy: remedy}
	}
	page := int64(st.Bsize)
	if page <= 0 || page&(page-1) != 0 {
		page = hugePageSize2M
	}
	return page, nil
}

// fsName names a few common file-system types by their statfs magic.
func fsName(magic uint32) string {
	switch magic {
	case unix.TMPFS_MAGIC:
		return "tmpfs"
	case unix.EXT4_SUPER_MAGIC:
		return "ext2/3/4"
	case unix.OVERLAYFS_SUPER_MAGIC:
		return "overlayfs"
	case unix.XFS_SUPER_MAGIC:
		return "xfs"
	case unix.BTRFS_SUPER_MAGIC:
		return "btrfs"
	}
	return fmt.Sprintf("a file system of type 0x%x", magic)
}

// CheckHugePages checks, before creating channels on huge pages, that the
// hugetlbfs mount exists and that enough pages are free for every channel
// of specs whose file does not exist yet. The error names the total
// needed and the command that reserves them.
func CheckHugePages(o Options, specs []Spec) error {
	if !o.HugePages {
		return nil
	}
	page, err := hugetlbfsPageSize(o.Dir(), "create")
	if err != nil {
		return err
	}
	var need int64
	var names []string
	for _, s := range specs {
		if err := checkSpec(o, s, "create"); err != nil {
			return err
		}
		if _, err := os.Stat(o.Path(s.Name)); err == nil {
			continue // existing files already hold (or will reserve) their pages
		}
		need += roundUp(s.MinSize(), page)
		names = append(names, s.Name)
	}
	if need == 0 {
		return nil
	}
	if c, err := ReadHugePages(page); err != nil || need/page <= c.Available() {
		return nil
	}
	e := hugePagesError(o.Dir(), "create", need, page, nil).(*Error)
	e.Detail = fmt.Sprintf("%d channels (%s): %s", len(names), strings.Join(names, ", "), e.Detail)
	return e
}

// HugePageCounts are the kernel's counters of one huge-page size.
type HugePageCounts struct {
	PageSize int64 // bytes
	Total    int64 // nr_hugepages
	Free     int64 // free_hugepages (includes reserved ones)
	Reserved int64 // resv_hugepages: promised to mappings, not yet faulted
}

// Available returns the pages a new mapping can still reserve.
func (c HugePageCounts) Available() int64 {
	if a := c.Free - c.Reserved; a > 0 {
		return a
	}
	return 0
}

// ReadHugePages reads the counters of the given huge-page size from
// /sys/kernel/mm/hugepages.
func ReadHugePages(pageSize int64) (HugePageCounts, error) {
	c := HugePageCounts{PageSize: pageSize}
	dir := fmt.Sprintf("/sys/kernel/mm/hugepages/hugepages-%dkB/", pageSize>>10)
	for _, x := range []struct {
		name string
		v    *int64
	}{{"nr_hugepages", &c.Total}, {"free_hugepages", &c.Free}, {"resv_hugepages", &c.Reserved}} {
		b, err := os.ReadFile(dir + x.name)
		if err != nil {
			return c, err
		}
		n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil {
			return c, fmt.Errorf("parse %s%s: %w", dir, x.name, err)
		}
		*x.v = n
	}
	return c, nil
}

// nrHugePagesFile is where the pool of the given size is set.
func nrHugePagesFile(pageSize int64) string {
	if pageSize == hugePageSize2M {
		return "/proc/sys/vm/nr_hugepages"
	}
	return fmt.Sprintf("/sys/kernel/mm/hugepages/hugepages-%dkB/nr_hugepages", pageSize>>10)
}

// checkFreeHugePages fails with ErrHugePages when fewer pages are free
// than a file of size bytes needs.
func checkFreeHugePages(path, op string, size, page int64) error {
	c, err := ReadHugePages(page)
	if err != nil {
		return nil // no counters to read: let mmap decide
	}
	if size/page <= c.Available() {
		return nil
	}
	return hugePagesError(path, op, size, page, nil)
}

// hugePagesError builds the ErrHugePages error for a file of size bytes,
// naming the pages needed and the command that reserves them.
func hugePagesError(path, op string, size, page int64, cause error) error {
	need := size / page
	c, err := ReadHugePages(page)
	detail := fmt.Sprintf("needs %d huge pages of %d MiB", need, page>>20)
	remedy := fmt.Sprintf("as root: echo N > %s with N at least %d more than now", nrHugePagesFile(page), need)
	if err == nil {
		detail += fmt.Sprintf(", %d available (nr_hugepages %d, free %d, reserved %d)", c.Available(), c.Total, c.Free, c.Reserved)
		want := c.Total + need - c.Available()
		remedy = fmt.Sprintf("as root: echo %d > %s", want, nrHugePagesFile(page))
	}
	return &Error{Path: path, Op: op, Err: ErrHugePages, Detail: detail, Remedy: remedy, Cause: cause}
}

// Create creates and initialises the channel file of s if it is missing
// (or exists but was never initialised), and otherwise checks that it is a
// valid channel of that spec, changing nothing. created reports whether
// this call wrote the header.
func Create(o Options, s Spec) (created bool, err error) {
	m, err := openMapping(o, s, true, "create")
	if err != nil {
		return false, err
	}
	created = m.created
	return created, m.unmap()
}

// Remove deletes the channel file of s. A missing file is an *Error with
// ErrNotExist.
func Remove(o Options, s Spec) error {
	if err := checkSpec(o, s, "remove"); err != nil {
		return err
	}
	path := o.Path(s.Name)
	if err := os.Remove(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return &Error{Path: path, Op: "remove", Err: ErrNotExist, Cause: err}
		}
		return openError(path, "remove", err)
	}
	return nil
}

// Status is a snapshot of a channel file's header, for people.
type Status struct {
	Spec              Spec
	Path              string
	FileSize          int64
	Mode              fs.FileMode
	UID, GID          uint32
	Magic             uint64
	Capacity          uint64
	Tail              uint64
	Head              uint64
	ProducerHeartbeat uint64
	ConsumerHeartbeat uint64
	Meta              [MetaSize]byte
	// State is "ok" or, when Inspect returns an error, its sentinel's text.
	State string
}

// Lag returns how many published records the consumer has not read, as
// far as the (periodically stored) head tells; 0 if head is ahead.
func (s *Status) Lag() uint64 {
	if s.Tail < s.Head {
		return 0
	}
	return s.Tail - s.Head
}

// MetaWord returns the little-endian u64 at metadata offset off, or 0 for
// an offset outside the metadata.
func (s *Status) MetaWord(off int) uint64 {
	if off < 0 || off > MetaSize-8 {
		return 0
	}
	return binary.LittleEndian.Uint64(s.Meta[off:])
}

// Inspect reads the header of the channel file of s without mapping or
// changing it (read-only access suffices). It returns the fields it could
// read together with an *Error when the file is missing, not initialised,
// corrupt, or does not match the spec.
//
// The header is read with one pread: each field is a recent value, but the
// fields are not one atomic snapshot of the ring.
func Inspect(o Options, s Spec) (Status, error) {
	st := Status{Spec: s, Path: o.Path(s.Name)}
	setState := func(err error) (Status, error) {
		st.State = "ok"
		var e *Error
		if errors.As(err, &e) {
			st.State = e.Err.Error()
		}
		return st, err
	}
	if err := checkSpec(o, s, "inspect"); err != nil {
		return setState(err)
	}
	f, err := os.Open(st.Path)
	if err != nil {
		return setState(openError(st.Path, "inspect", err))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return setState(&Error{Path: st.Path, Op: "inspect", Err: ErrMap, Detail: "stat failed", Cause: err})
	}
	st.FileSize = fi.Size()
	st.Mode = fi.Mode()
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.UID, st.GID = sys.Uid, sys.Gid
	}
	if st.FileSize >= HeaderSize {
		var hdr [HeaderSize]byte
		if _, err := f.ReadAt(hdr[:], 0); err == nil {
			le := binary.LittleEndian
			st.Tail = le.Uint64(hdr[offTail:])
			st.Head = le.Uint64(hdr[offHead:])
			st.ProducerHeartbeat = le.Uint64(hdr[offProducerHB:])
			st.ConsumerHeartbeat = le.Uint64(hdr[offConsumerHB:])
			copy(st.Meta[:], hdr[offMeta:offCapacity])
			st.Capacity = le.Uint64(hdr[offCapacity:])
			st.Magic = le.Uint64(hdr[offMagic:])
		}
	}
	if err := checkHeader(f, s, st.FileSize, false, st.Path, "inspect"); err != nil {
		return setState(err)
	}
	page := int64(os.Getpagesize())
	if o.HugePages {
		page = hugePageSize2M
		var sfs unix.Statfs_t
		if unix.Fstatfs(int(f.Fd()), &sfs) == nil && sfs.Bsize > 0 {
			page = int64(sfs.Bsize)
		}
	}
	if minSize := s.MinSize(); st.FileSize < minSize || st.FileSize > roundUp(minSize, page) {
		return setState(&Error{Path: st.Path, Op: "inspect", Err: ErrFileSize,
			Detail: fmt.Sprintf("file is %d bytes, channel %s needs %d", st.FileSize, s.Name, minSize), Remedy: remedyRecreate})
	}
	return setState(nil)
}
