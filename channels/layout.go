package channels

import "encoding/binary"

// Byte offsets of the ring header. Every counter sits alone on its own
// 128-byte line so that the producer's and the consumer's writes never
// share a cache line (nor an adjacent-line prefetch pair).
const (
	offTail       = 0   // u64, written by the producer only
	offHead       = 128 // u64, written by the consumer only
	offProducerHB = 256 // u64, incremented by the producer only
	offConsumerHB = 384 // u64, incremented by the consumer only
	offMeta       = 512 // MetaSize free bytes
	offCapacity   = 624 // u64, written once at initialisation
	offMagic      = 632 // u64, written last at initialisation

	// HeaderSize is the size of the ring header; records start there.
	HeaderSize = 640
	// MetaSize is the number of metadata bytes at file offset 512.
	MetaSize = offCapacity - offMeta
)

// Magic is the 8 ASCII bytes "TEMPORAL" read as a little-endian u64: an
// initialised ring has it at offset 632.
var Magic = binary.LittleEndian.Uint64([]byte("TEMPORAL"))

const (
	// maxCapacity bounds the capacity accepted in a Spec (2^32 records).
	maxCapacity = 1 << 32
	// maxRingBytes bounds a ring's record area (1 TiB); larger sizes are
	// refused as invalid rather than risking overflow.
	maxRingBytes = 1 << 40
	// hugePageSize2M is the huge-page size assumed when a mount does not
	// say otherwise.
	hugePageSize2M = 2 << 20
)

// burst returns how many records the producer may write before it must
// publish its tail: a quarter of the ring, at least one.
func burst(capacity uint64) uint64 {
	if b := capacity / 4; b > 0 {
		return b
	}
	return 1
}

// isPow2 reports whether n is a power of two (and not zero).
func isPow2(n uint64) bool { return n != 0 && n&(n-1) == 0 }

// roundUp rounds n up to a multiple of page (a power of two).
func roundUp(n, page int64) int64 { return (n + page - 1) &^ (page - 1) }
