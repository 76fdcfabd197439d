package channels

import (
	"path/filepath"
	"unsafe"
)

// Direction says which side produces into a channel.
type Direction uint8

const (
	// ToQoS channels are produced by the validator and consumed by qos.
	ToQoS Direction = iota
	// FromQoS channels are produced by qos and consumed by the validator.
	FromQoS
)

// String returns "validator→qos" or "qos→validator".
func (d Direction) String() string {
	switch d {
	case ToQoS:
		return "validator→qos"
	case FromQoS:
		return "qos→validator"
	}
	return "unknown"
}

// Spec describes one named channel: its file name (without prefix), its
// capacity in records (a power of two), the size of one record and who
// produces into it.
type Spec struct {
	Name       string
	Capacity   uint64
	RecordSize int
	Direction  Direction
}

// Names of the eight channels shared with the validator.
const (
	TPU           = "tpu_to_qos"
	FWD           = "fwd_to_qos"
	RE1           = "re1_to_qos"
	RE2           = "re2_to_qos"
	QoSToSig      = "qos_to_sig"
	SigToQoS      = "sig_to_qos"
	SchToQoS      = "sch_to_qos"
	TxStatusCache = "tx_status_cache"
)

// SeedMetaOffset is the metadata offset (file offset 512) of the
// little-endian u64 xxhash seed published in sch_to_qos.
const SeedMetaOffset = 0

// Table lists every channel qos shares with the validator, in the order
// the CLI prints them.
var Table = [8]Spec{
	{Name: TPU, Capacity: 32768, RecordSize: PacketSize, Direction: ToQoS},
	{Name: FWD, Capacity: 32768, RecordSize: PacketSize, Direction: ToQoS},
	{Name: RE1, Capacity: 32768, RecordSize: PacketSize, Direction: ToQoS},
	{Name: RE2, Capacity: 32768, RecordSize: PacketSize, Direction: ToQoS},
	{Name: QoSToSig, Capacity: 32768, RecordSize: PacketSize, Direction: FromQoS},
	{Name: SigToQoS, Capacity: 32768, RecordSize: PacketSize, Direction: ToQoS},
	{Name: SchToQoS, Capacity: 32768, RecordSize: RemainingMetaSize, Direction: ToQoS},
	{Name: TxStatusCache, Capacity: 1048576, RecordSize: SignatureSize, Direction: ToQoS},
}

// Lookup returns the Table entry with the given name.
func Lookup(name string) (Spec, bool) {
	for _, s := range Table {
		if s.Name == name {
			return s, true
		}
	}
	return Spec{}, false
}

// MinSize returns the bytes the ring needs: the 640-byte header and
// Capacity records. Files on huge pages are larger (rounded up to whole
// pages). It returns 0 for a capacity or record size so large that the
// size overflows.
func (s Spec) MinSize() int64 {
	if s.RecordSize <= 0 || s.Capacity > maxCapacity {
		return 0
	}
	n := s.Capacity * uint64(s.RecordSize)
	if n/uint64(s.RecordSize) != s.Capacity || n > maxRingBytes {
		return 0
	}
	return int64(HeaderSize + n)
}

// RecordKind names the record layout of the spec: "packet", "remaining
// meta", "signature", or "N-byte record".
func (s Spec) RecordKind() string {
	switch s.RecordSize {
	case PacketSize:
		return "packet"
	case RemainingMetaSize:
		return "remaining meta"
	case SignatureSize:
		return "signature"
	}
	return "record"
}

// Record is any of the channel record types. Each is a plain byte array
// with no pointers, so a ring slot is the record's exact memory image.
type Record interface {
	Packet | RemainingMeta | Signature
}

// recordSize returns the size in bytes of the record type R.
func recordSize[R Record]() int {
	var r R
	return int(unsafe.Sizeof(r))
}

// Default directories of the channel files.
const (
	DefaultShmDir       = "/dev/shm"
	DefaultHugetlbfsDir = "/mnt/hugepages"
)

// Options say where channel files live and how they are created.
type Options struct {
	// Prefix is prepended to every channel's file name, so that several
	// instances (or tests) can live side by side. It must not contain '/'.
	Prefix string
	// ShmDir is the directory of standard-page files; "" means /dev/shm.
	ShmDir string
	// HugePages puts the files on a hugetlbfs mount instead.
	HugePages bool
	// HugetlbfsDir is the hugetlbfs mount point; "" means /mnt/hugepages.
	HugetlbfsDir string
	// Group, when set, makes created files mode 0660 and owned by that
	// group (a name or a numeric id), so that the validator and qos may run
	// as different users. When empty, files are created mode 0600.
	Group string
}

// Dir returns the directory that holds the channel files.
func (o Options) Dir() string {
	if o.HugePages {
		if o.HugetlbfsDir == "" {
			return DefaultHugetlbfsDir
		}
		return o.HugetlbfsDir
	}
	if o.ShmDir == "" {
		return DefaultShmDir
	}
	return o.ShmDir
}

// Path returns the file of the named channel: Dir()/Prefix+name.
func (o Options) Path(name string) string {
	return filepath.Join(o.Dir(), o.Prefix+name)
}
