package model

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/cespare/xxhash/v2"
)

// The model file, little-endian throughout:
//
//	offset  size  field
//	     0     8  magic "QOSMODEL"
//	     8     4  format version (FormatVersion)
//	    12     4  reserved, zero
//	    16    64  params: BatchSize, MinObservations (u64), Alpha,
//	              ExecutedMultiplier (f64 bits), AssumedExecNanos (u64),
//	              PenaltyFactor (f64 bits), MaxIPs, MaxSigners (u64)
//	    80    48  counters: observations, learns, penalties, penalized-new,
//	              pruned IPs, pruned signers (u64)
//	   128    24  number of IP entries, signer entries, pending observations
//	   152        IP entries:      16-byte key, f64 score    (24 bytes each)
//	              signer entries:  32-byte key, f64 score    (40 bytes each)
//	              pending:         IP 16, signer 32, fee u64, exec ns u64 (64)
//	   end-8   8  XXH64 (seed 0) of every byte before it
//
// Entries are sorted by key bytes, strictly ascending; scores are finite
// and not negative; IP keys are canonical. The encoding of a model is
// therefore unique: equal models give equal bytes.
const (
	fileMagic     = "QOSMODEL"
	FormatVersion = 1

	headerSize    = 152
	ipRecSize     = 16 + 8
	signerRecSize = 32 + 8
	obsRecSize    = 16 + 32 + 8 + 8
	sumSize       = 8
)

// Why a model file was refused; errors.Is works on Load's errors. A missing
// file is errors.Is(err, fs.ErrNotExist).
var (
	ErrForeign   = errors.New("not a qos model file")
	ErrVersion   = errors.New("unsupported model file format version")
	ErrTruncated = errors.New("model file truncated")
	ErrChecksum  = errors.New("model file checksum mismatch")
	ErrCorrupt   = errors.New("model file corrupt")
)

// encodedSize is the size of the file for the given counts.
func encodedSize(nIPs, nSigners, nPending uint64) uint64 {
	return headerSize + nIPs*ipRecSize + nSigners*signerRecSize + nPending*obsRecSize + sumSize
}

// AppendBinary appends m's file encoding to b. It never fails.
func (m *IPSigner) AppendBinary(b []byte) ([]byte, error) {
	s := m.Snapshot()
	le := binary.LittleEndian
	size := encodedSize(uint64(len(s.IPs)), uint64(len(s.Signers)), uint64(len(s.Pending)))
	b = slicesGrow(b, int(size))
	start := len(b)
	b = append(b, fileMagic...)
	b = le.AppendUint32(b, FormatVersion)
	b = le.AppendUint32(b, 0)
	p := s.Params
	for _, v := range [8]uint64{
		uint64(p.BatchSize), uint64(p.MinObservations),
		math.Float64bits(p.Alpha), math.Float64bits(p.ExecutedMultiplier),
		p.AssumedExecNanos, math.Float64bits(p.PenaltyFactor),
		uint64(p.MaxIPs), uint64(p.MaxSigners),
	} {
		b = le.AppendUint64(b, v)
	}
	st := s.Stats
	for _, v := range [9]uint64{
		st.Observations, st.Learns, st.Penalties, st.PenalizedNew, st.PrunedIPs, st.PrunedSigners,
		uint64(len(s.IPs)), uint64(len(s.Signers)), uint64(len(s.Pending)),
	} {
		b = le.AppendUint64(b, v)
	}
	for _, e := range s.IPs {
		b = append(b, e.IP[:]...)
		b = le.AppendUint64(b, math.Float64bits(e.Score))
	}
	for _, e := range s.Signers {
		b = append(b, e.Signer[:]...)
		b = le.AppendUint64(b, math.Float64bits(e.Score))
	}
	for _, o := range s.Pending {
		b = append(b, o.IP[:]...)
		b = append(b, o.Signer[:]...)
		b = le.AppendUint64(b, o.Fee)
		b = le.AppendUint64(b, o.ExecNanos)
	}
	b = le.AppendUint64(b, xxhash.Sum64(b[start:]))
	return b, nil
}

func slicesGrow(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b
	}
	nb := make([]byte, len(b), len(b)+n)
	copy(nb, b)
	return nb
}

// checkHeader checks what the first bytes of a file of the given size say
// and returns the size the file must have. head holds the first
// min(size, headerSize) bytes. Only absolute limits are checked here; the
// rest waits for the checksum.
func checkHeader(head []byte, size int64) (uint64, error) {
	if len(head) < len(fileMagic) {
		if strings.HasPrefix(fileMagic, string(head)) {
			return 0, fmt.Errorf("%w: %d bytes, shorter than the magic", ErrTruncated, size)
		}
		return 0, fmt.Errorf("%w: %d bytes, no %q magic", ErrForeign, size, fileMagic)
	}
	if string(head[:8]) != fileMagic {
		return 0, fmt.Errorf("%w: magic %q, want %q", ErrForeign, head[:8], fileMagic)
	}
	if len(head) < 16 {
		return 0, fmt.Errorf("%w: %d bytes, no version", ErrTruncated, size)
	}
	le := binary.LittleEndian
	switch v := le.Uint32(head[8:]); {
	case v > FormatVersion:
		return 0, fmt.Errorf("%w: version %d was written by a newer qos; this build reads version %d",
			ErrVersion, v, FormatVersion)
	case v != FormatVersion:
		return 0, fmt.Errorf("%w: version %d; this build reads version %d", ErrVersion, v, FormatVersion)
	}
	if r := le.Uint32(head[12:]); r != 0 {
		return 0, fmt.Errorf("%w: reserved header field is %#x, want 0", ErrCorrupt, r)
	}
	if len(head) < headerSize {
		return 0, fmt.Errorf("%w: %d bytes, header needs %d", ErrTruncated, size, headerSize)
	}
	nIPs, nSigners, nPending := le.Uint64(head[128:]), le.Uint64(head[136:]), le.Uint64(head[144:])
	if nIPs > 2*MaxTableSize || nSigners > 2*MaxTableSize || nPending > MaxBatchSize {
		return 0, fmt.Errorf("%w: header counts %d IPs, %d signers, %d pending exceed the limits",
			ErrCorrupt, nIPs, nSigners, nPending)
	}
	want := encodedSize(nIPs, nSigners, nPending)
	switch {
	case uint64(size) < want:
		return 0, fmt.Errorf("%w: %d bytes, header says %d", ErrTruncated, size, want)
	case uint64(size) > want:
		return 0, fmt.Errorf("%w: %d bytes, header says %d (trailing bytes)", ErrCorrupt, size, want)
	}
	return want, nil
}

// Decode parses a model file's bytes. Any input gives either a model or an
// error (one of ErrForeign, ErrVersion, ErrTruncated, ErrChecksum,
// ErrCorrupt), never both and never a panic.
func Decode(data []byte) (*IPSigner, error) {
	if _, err := checkHeader(data[:min(len(data), headerSize)], int64(len(data))); err != nil {
		return nil, err
	}
	le := binary.LittleEndian
	body := data[:len(data)-sumSize]
	if got, want := xxhash.Sum64(body), le.Uint64(data[len(body):]); got != want {
		return nil, fmt.Errorf("%w: stored %#016x, computed %#016x", ErrChecksum, want, got)
	}
	u := func(off int) uint64 { return le.Uint64(data[off:]) }
	f := func(off int) float64 { return math.Float64frombits(le.Uint64(data[off:])) }
	p := Params{
		BatchSize:          toInt(u(16)),
		MinObservations:    toInt(u(24)),
		Alpha:              f(32),
		ExecutedMultiplier: f(40),
		AssumedExecNanos:   u(48),
		PenaltyFactor:      f(56),
		MaxIPs:             toInt(u(64)),
		MaxSigners:         toInt(u(72)),
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("%w: parameters: %v", ErrCorrupt, err)
	}
	s := Snapshot{
		Params: p,
		Stats: Stats{
			Observations: u(80), Learns: u(88), Penalties: u(96),
			PenalizedNew: u(104), PrunedIPs: u(112), PrunedSigners: u(120),
		},
	}
	nIPs, nSigners, nPending := int(u(128)), int(u(136)), int(u(144))
	if nIPs > 2*p.MaxIPs || nSigners > 2*p.MaxSigners || nPending >= p.BatchSize {
		return nil, fmt.Errorf("%w: %d IPs, %d signers, %d pending do not fit max IPs %d, max signers %d, batch size %d",
			ErrCorrupt, nIPs, nSigners, nPending, p.MaxIPs, p.MaxSigners, p.BatchSize)
	}
	off := headerSize
	s.IPs = make([]IPScore, nIPs)
	for i := range s.IPs {
		e := &s.IPs[i]
		e.IP, e.Score = IP(data[off:off+16]), f(off+16)
		if e.IP.canonical() != e.IP {
			return nil, fmt.Errorf("%w: IP entry %d: key %x is not a canonical IPv4 or /64 key", ErrCorrupt, i, e.IP[:])
		}
		if i > 0 && s.IPs[i-1].IP.compare(e.IP) >= 0 {
			return nil, fmt.Errorf("%w: IP entry %d: keys not strictly ascending", ErrCorrupt, i)
		}
		if !finite(e.Score) {
			return nil, fmt.Errorf("%w: IP entry %d (%s): score %v", ErrCorrupt, i, e.IP, e.Score)
		}
		off += ipRecSize
	}
	s.Signers = make([]SignerScore, nSigners)
	for i := range s.Signers {
		e := &s.Signers[i]
		e.Signer, e.Score = Signer(data[off:off+32]), f(off+32)
		if i > 0 && s.Signers[i-1].Signer.compare(e.Signer) >= 0 {
			return nil, fmt.Errorf("%w: signer entry %d: keys not strictly ascending", ErrCorrupt, i)
		}
		if !finite(e.Score) {
			return nil, fmt.Errorf("%w: signer entry %d (%s): score %v", ErrCorrupt, i, e.Signer, e.Score)
		}
		off += signerRecSize
	}
	s.Pending = make([]Observation, nPending)
	for i := range s.Pending {
		o := &s.Pending[i]
		o.IP, o.Signer = IP(data[off:off+16]), Signer(data[off+16:off+48])
		o.Fee, o.ExecNanos = u(off+48), u(off+56)
		if o.IP.canonical() != o.IP {
			return nil, fmt.Errorf("%w: pending observation %d: IP %x is not canonical", ErrCorrupt, i, o.IP[:])
		}
		off += obsRecSize
	}
	m := New(p)
	m.restore(s)
	return m, nil
}

// toInt converts a stored count, mapping absurd values to -1 so that
// Validate refuses them.
func toInt(v uint64) int {
	if v > 1<<40 {
		return -1
	}
	return int(v)
}

// Save writes m to path atomically (WriteFileAtomic).
func (m *IPSigner) Save(path string) error {
	data, _ := m.AppendBinary(nil)
	if err := WriteFileAtomic(path, data); err != nil {
		return fmt.Errorf("model: save %s: %w", path, err)
	}
	return nil
}

// Load reads a model file written by Save. A missing file is an error
// satisfying errors.Is(err, fs.ErrNotExist), so a caller can start fresh;
// any other problem (foreign, truncated, corrupt, newer version) is an
// error naming the file — never an empty model.
func Load(path string) (*IPSigner, error) {
	m, err := load(path)
	if err != nil {
		return nil, fmt.Errorf("model: load %s: %w", path, err)
	}
	return m, nil
}

func load(path string) (*IPSigner, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: not a regular file (%s)", ErrForeign, st.Mode())
	}
	size := st.Size()
	head := make([]byte, min(size, headerSize))
	if _, err := io.ReadFull(f, head); err != nil {
		return nil, fmt.Errorf("read header: %w", err)
	}
	if _, err := checkHeader(head, size); err != nil {
		return nil, err
	}
	data := make([]byte, size)
	copy(data, head)
	if _, err := io.ReadFull(f, data[len(head):]); err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	return Decode(data)
}

// WriteFileAtomic replaces path with data so that a crash leaves either the
// old file or the new one, never a mix: it writes a temporary file in the
// same directory, syncs it, renames it over path and syncs the directory.
// The file is created with mode 0600.
func WriteFileAtomic(path string, data []byte) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err = d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}
