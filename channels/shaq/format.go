package shaq

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
)

// Format is one shaq release's on-disk header.
type Format uint8

const (
	// V1_0_2 is shaq 1.0.2 (Agave 4.0).
	V1_0_2 Format = iota + 1
	// V3 is shaq 3.0.0 (Agave 4.1-4.3).
	V3
	// V4 is shaq 4.0.0 (Agave 4.4): V3 plus futex waiters; it also has MPMC.
	V4
)

// String names the format by its crate release.
func (f Format) String() string {
	switch f {
	case V1_0_2:
		return "shaq 1.0.2"
	case V3:
		return "shaq 3.0.0"
	case V4:
		return "shaq 4.0.0"
	}
	return fmt.Sprintf("shaq format %d", uint8(f))
}

// Valid reports whether f is one of the known formats.
func (f Format) Valid() bool { return f >= V1_0_2 && f <= V4 }

// HeaderSize is the SPSC header size, which is where elements start.
func (f Format) HeaderSize() int {
	switch f {
	case V1_0_2, V3:
		return 192
	case V4:
		return 256
	}
	return 0
}

// MPMCHeaderSize is the shaq 4.0 MPMC header size.
const MPMCHeaderSize = 384

// Header field offsets.
const (
	offV1Write   = 0
	offV1Read    = 64
	offV1Size    = 128
	offV1Version = 136

	offMagic   = 0
	offVersion = 8
	offMask    = 12
	offWrite   = 64
	offRead    = 128
	offWaiters = 192

	offProdRes = 64
	offProdPub = 128
	offConsRes = 192
	offConsRel = 256
	offMWaiter = 320
)

const (
	versionV1 = 1
	versionV3 = 0x0002_0000 // shaq 3.0.0: VERSION_MAJOR 2, PATCH 0
	versionV4 = 0x0003_0000 // shaq 4.0.0: VERSION_MAJOR 3, PATCH 0

	// magicSPSC is u64::from_be_bytes(*b"shaqspsc") stored little-endian.
	magicSPSC = 0x7368_6171_7370_7363
	// magicMPMC is u64::from_be_bytes(*b"shaqmpmc").
	magicMPMC = 0x7368_6171_6d70_6d63
)

// Errors, matched with errors.Is; HeaderError wraps one of the first four.
var (
	ErrMagic    = errors.New("shaq: bad magic")
	ErrVersion  = errors.New("shaq: unsupported version")
	ErrCapacity = errors.New("shaq: capacity does not match the file size")
	ErrFileSize = errors.New("shaq: file too small for a queue")
	ErrFormat   = errors.New("shaq: unknown format")
	ErrElemSize = errors.New("shaq: invalid element size")
	// ErrCorrupt: the peer published an index that cannot be right (the
	// queue holds more than its capacity); this side stops reading.
	ErrCorrupt = errors.New("shaq: peer published an impossible index")
)

// HeaderError says why a queue file was refused.
type HeaderError struct {
	Name  string // the file
	Want  string // what was expected, e.g. "shaq 4.0.0 SPSC"
	Field string // magic, version, capacity, size
	Got   uint64
	Exp   uint64
	Found string // the release the header looks like, if recognised
	Err   error  // ErrMagic, ErrVersion, ErrCapacity or ErrFileSize
}

func (e *HeaderError) Error() string {
	s := fmt.Sprintf("shaq: %s: not a %s queue: %s is %#x, want %#x", e.Name, e.Want, e.Field, e.Got, e.Exp)
	if e.Found != "" {
		s += fmt.Sprintf(" (the header is %s: the validator runs another Agave release; pick the matching ABI profile)", e.Found)
	}
	return s
}

func (e *HeaderError) Unwrap() error { return e.Err }

// capacityFor is shaq's calculate_buffer_size_in_items: the previous power
// of two of the elements that fit after the header, at least 1; formats with
// a u32 mask cap it at 2^32.
func capacityFor(fileSize, header, elemSize int, u32mask bool) (int, bool) {
	if elemSize <= 0 || fileSize < header {
		return 0, false
	}
	n := (fileSize - header) / elemSize
	if n == 0 {
		return 0, false
	}
	c := 1 << (bits.Len(uint(n)) - 1)
	if u32mask && c > 1<<32 {
		return 0, false
	}
	return c, true
}

// Capacity is the capacity a queue of format f gets in a file of fileSize
// bytes with elements of elemSize bytes.
func Capacity(f Format, fileSize, elemSize int) (int, error) {
	if !f.Valid() {
		return 0, fmt.Errorf("%w %d", ErrFormat, f)
	}
	if elemSize <= 0 || elemSize > 1<<20 {
		return 0, fmt.Errorf("%w: %d", ErrElemSize, elemSize)
	}
	c, ok := capacityFor(fileSize, f.HeaderSize(), elemSize, f != V1_0_2)
	if !ok {
		return 0, fmt.Errorf("%w: %d bytes for %d-byte elements after a %d-byte header", ErrFileSize, fileSize, elemSize, f.HeaderSize())
	}
	return c, nil
}

// MinimumFileSize is shaq's minimum_file_size: header plus capacity
// elements. From 3.0.0 the capacity is first rounded up to a power of two;
// 1.0.2 takes it as given. Agave rounds the result up to its page size
// (shm.RoundSize) before creating the file.
func MinimumFileSize(f Format, elemSize, capacity int) int {
	if capacity < 0 {
		capacity = 0
	}
	if f != V1_0_2 && capacity > 0 {
		capacity = 1 << bits.Len(uint(capacity-1))
	}
	return f.HeaderSize() + capacity*elemSize
}

// MinimumMPMCFileSize is shaq 4.0 mpmc::minimum_file_size.
func MinimumMPMCFileSize(elemSize, capacity int) int {
	return MinimumMPMCFileSizeFormat(V4, elemSize, capacity)
}

// MinimumMPMCFileSizeFormat is mpmc::minimum_file_size of shaq release f
// (V3 or V4): header plus capacity rounded up to a power of two.
func MinimumMPMCFileSizeFormat(f Format, elemSize, capacity int) int {
	if capacity > 0 {
		capacity = 1 << bits.Len(uint(capacity-1))
	}
	return MPMCHeaderSizeFor(f) + capacity*elemSize
}

// identify names the shaq release whose header b (at least 192 bytes)
// looks like, or "".
func identify(b []byte) string {
	le := binary.LittleEndian
	if len(b) < 192 {
		return ""
	}
	switch le.Uint64(b[offMagic:]) {
	case magicSPSC:
		switch le.Uint32(b[offVersion:]) {
		case versionV3:
			return "shaq 3.0.0 SPSC (Agave 4.1-4.3)"
		case versionV4:
			return "shaq 4.0.0 SPSC (Agave 4.4)"
		}
		return fmt.Sprintf("shaq SPSC version %#x", le.Uint32(b[offVersion:]))
	case magicMPMC:
		return fmt.Sprintf("shaq MPMC version %#x", le.Uint32(b[offVersion:]))
	}
	if b[offV1Version] == versionV1 {
		return "shaq 1.0.2 (Agave 4.0)"
	}
	return ""
}

// Detect names the SPSC format of the queue header in b (the first bytes
// of a queue file), or reports false: a way to tell which Agave release
// created a queue before joining it.
func Detect(b []byte) (Format, bool) {
	if len(b) < 192 {
		return 0, false
	}
	le := binary.LittleEndian
	if le.Uint64(b[offMagic:]) == magicSPSC {
		switch le.Uint32(b[offVersion:]) {
		case versionV3:
			return V3, true
		case versionV4:
			return V4, true
		}
		return 0, false
	}
	if b[offV1Version] == versionV1 && b[offV1Version+1] == 0 {
		return V1_0_2, true
	}
	return 0, false
}
