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

// The model file (format version 2), little-endian throughout:
//
//	offset  size  field
//	     0     8  magic "QOSMODEL"
//	     8     4  format version (FormatVersion)
//	    12     4  reserved, zero
//	    16    72  params: BatchSize, MinObservations (u64), Alpha,
//	              ExecutedMultiplier (f64 bits), AssumedExecNanos (u64),
//	              PenaltyFactor (f64 bits), MaxIPs, MaxSigners (u64),
//	              MinScore (f64 bits)
//	    88    48  counters: observations, learns, penalties, penalized-new,
//	              pruned IPs, pruned signers (u64)
//	   136    32  number of learned IP entries, penalty-only IP entries,
//	              signer entries, pending observations
//	   168        learned IPs:     16-byte key, f64 score    (24 bytes each)
//	              penalty-only:    16-byte key, f64 mult     (24 bytes each)
//	              signer entries:  32-byte key, f64 score    (40 bytes each)
//	              pending:         IP 16, signer 32, fee u64, exec ns u64 (64)
//	   end-8   8  XXH64 (seed 0) of every byte before it
//
// Entries are sorted by key bytes, strictly ascending; no IP is both
// learned and penalty-only; scores are finite and at least MinScore;
// multipliers are in [0, 1]; IP keys are canonical. The encoding of a
// model is therefore unique: equal models give equal bytes.
//
// Version 1 (before penalty-only entries) had 8 params (no MinScore), the
// counters at 80, three counts at 128 (IPs, signers, pending) and entries
// from 152, without the penalty-only section. Decode still reads it: every
// IP entry is learned, MinScore is the default, and scores below it are
// raised to it.
const (
	fileMagic     = "QOSMODEL"
	FormatVersion = 2

	headerSize    = 168 // of the current version; the largest
	ipRecSize     = 16 + 8
	penRecSize    = 16 + 8
	signerRecSize = 32 + 8
	obsRecSize    = 16 + 32 + 8 + 8
	sumSize       = 8
)

// layout is where a format version keeps its header fields.
type layout struct {
	header   int // header size: where the entries start
	counters int // offset of the six counters
	counts   int // offset of the entry counts
	pen      bool
}

var layouts = [FormatVersion + 1]layout{
	1: {header: 152, counters: 80, counts: 128},
	2: {header: headerSize, counters: 88, counts: 136, pen: true},
}

// Why a model file was refused; errors.Is works on Load's errors. A missing
// file is errors.Is(err, fs.ErrNotExist).
var (
	ErrForeign   = errors.New("not a qos model file")
	ErrVersion   = errors.New("unsupported model file format version")
	ErrTruncated = errors.New("model file truncated")
	ErrChecksum  = errors.New("model file checksum mismatch")
	ErrCorrupt   = errors.New("model file corrupt")
)

// encodedSize is the size of a file with layout l and the given counts.
func encodedSize(l layout, nIPs, nPen, nSigners, nPending uint64) uint64 {
	return uint64(l.header) + nIPs*ipRecSize + nPen*penRecSize + nSigners*signerRecSize +
		nPending*obsRecSize + sumSize
}

// AppendBinary appends m's file encoding (the current version) to b. It
// never fails.
func (m *IPSigner) AppendBinary(b []byte) ([]byte, error) {
	s := m.Snapshot()
	le := binary.LittleEndian
	size := encodedSize(layouts[FormatVersion], uint64(len(s.IPs)), uint64(len(s.Penalized)),
		uint64(len(s.Signers)), uint64(len(s.Pending)))
	b = slicesGrow(b, int(size))
	start := len(b)
	b = append(b, fileMagic...)
	b = le.AppendUint32(b, FormatVersion)
	b = le.AppendUint32(b, 0)
	p := s.Params
	for _, v := range [9]uint64{
		uint64(p.BatchSize), uint64(p.MinObservations),
		math.Float64bits(p.Alpha), math.Float64bits(p.ExecutedMultiplier),
		p.AssumedExecNanos, math.Float64bits(p.PenaltyFactor),
		uint64(p.MaxIPs), uint64(p.MaxSigners), math.Float64bits(p.MinScore),
	} {
		b = le.AppendUint64(b, v)
	}
	st := s.Stats
	for _, v := range [10]uint64{
		st.Observations, st.Learns, st.Penalties, st.PenalizedNew, st.PrunedIPs, st.PrunedSigners,
		uint64(len(s.IPs)), uint64(len(s.Penalized)), uint64(len(s.Signers)), uint64(len(s.Pending)),
	} {
		b = le.AppendUint64(b, v)
	}
	for _, e := range s.IPs {
		b = append(b, e.IP[:]...)
		b = le.AppendUint64(b, math.Float64bits(e.Score))
	}
	for _, e := range s.Penalized {
		b = append(b, e.IP[:]...)
		b = le.AppendUint64(b, math.Float64bits(e.Mult))
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

// entryCounts returns the entry counts a header of layout l holds: learned IPs,
// penalty-only IPs, signers, pending. REQUIRES: len(head) ≥ l.header.
func (l layout) entryCounts(head []byte) (nIPs, nPen, nSigners, nPending uint64) {
	le := binary.LittleEndian
	c := l.counts
	if !l.pen {
		return le.Uint64(head[c:]), 0, le.Uint64(head[c+8:]), le.Uint64(head[c+16:])
	}
	return le.Uint64(head[c:]), le.Uint64(head[c+8:]), le.Uint64(head[c+16:]), le.Uint64(head[c+24:])
}

// checkHeader checks what the first bytes of a file of the given size say
// and returns its layout. head holds the first min(size, headerSize) bytes.
// Only absolute limits are checked here; the rest waits for the checksum.
func checkHeader(head []byte, size int64) (layout, error) {
	if len(head) < len(fileMagic) {
		if strings.HasPrefix(fileMagic, string(head)) {
			return layout{}, fmt.Errorf("%w: %d bytes, shorter than the magic", ErrTruncated, size)
		}
		return layout{}, fmt.Errorf("%w: %d bytes, no %q magic", ErrForeign, size, fileMagic)
	}
	if string(head[:8]) != fileMagic {
		return layout{}, fmt.Errorf("%w: magic %q, want %q", ErrForeign, head[:8], fileMagic)
	}
	if len(head) < 16 {
		return layout{}, fmt.Errorf("%w: %d bytes, no version", ErrTruncated, size)
	}
	le := binary.LittleEndian
	switch v := le.Uint32(head[8:]); {
	case v > FormatVersion:
		return layout{}, fmt.Errorf("%w: version %d was written by a newer qos; this build reads versions 1 to %d",
			ErrVersion, v, FormatVersion)
	case v < 1:
		return layout{}, fmt.Errorf("%w: version %d; this build reads versions 1 to %d", ErrVersion, v, FormatVersion)
	}
	l := layouts[le.Uint32(head[8:])]
	if r := le.Uint32(head[12:]); r != 0 {
		return layout{}, fmt.Errorf("%w: reserved header field is %#x, want 0", ErrCorrupt, r)
	}
	if len(head) < l.header {
		return layout{}, fmt.Errorf("%w: %d bytes, header needs %d", ErrTruncated, size, l.header)
	}
	nIPs, nPen, nSigners, nPending := l.entryCounts(head)
	if nIPs > 2*MaxTableSize || nPen > 2*MaxTableSize || nSigners > 2*MaxTableSize || nPending > MaxBatchSize {
		return layout{}, fmt.Errorf("%w: header counts %d IPs, %d penalty-only IPs, %d signers, %d pending exceed the limits",
			ErrCorrupt, nIPs, nPen, nSigners, nPending)
	}
	want := encodedSize(l, nIPs, nPen, nSigners, nPending)
	switch {
	case uint64(size) < want:
		return layout{}, fmt.Errorf("%w: %d bytes, header says %d", ErrTruncated, size, want)
	case uint64(size) > want:
		return layout{}, fmt.Errorf("%w: %d bytes, header says %d (trailing bytes)", ErrCorrupt, size, want)
	}
	return l, nil
}

// Decode parses a model file's bytes (format version 1 or 2). Any input
// gives either a model or an error (one of ErrForeign, ErrVersion,
// ErrTruncated, ErrChecksum, ErrCorrupt), never both and never a panic.
func Decode(data []byte) (*IPSigner, error) {
	l, err := checkHeader(data[:min(len(data), headerSize)], int64(len(data)))
	if err != nil {
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
		MinScore:           DefaultParams().MinScore,
	}
	if l.pen {
		p.MinScore = f(80)
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("%w: parameters: %v", ErrCorrupt, err)
	}
	c := l.counters
	s := Snapshot{
		Params: p,
		Stats: Stats{
			Observations: u(c), Learns: u(c + 8), Penalties: u(c + 16),
			PenalizedNew: u(c + 24), PrunedIPs: u(c + 32), PrunedSigners: u(c + 40),
		},
	}
	n1, n2, n3, n4 := l.entryCounts(data)
	nIPs, nPen, nSigners, nPending := int(n1), int(n2), int(n3), int(n4)
	if nIPs > 2*p.MaxIPs || nPen > penCapacity(p) || nSigners > 2*p.MaxSigners || nPending >= p.BatchSize {
		return nil, fmt.Errorf("%w: %d IPs, %d penalty-only IPs, %d signers, %d pending do not fit max IPs %d, max signers %d, batch size %d",
			ErrCorrupt, nIPs, nPen, nSigners, nPending, p.MaxIPs, p.MaxSigners, p.BatchSize)
	}
	off := l.header
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
		if e.Score < p.MinScore {
			if l.pen {
				return nil, fmt.Errorf("%w: IP entry %d (%s): score %v below the min score %v",
					ErrCorrupt, i, e.IP, e.Score, p.MinScore)
			}
			e.Score = p.MinScore // version 1 had no floor
		}
		off += ipRecSize
	}
	s.Penalized = make([]IPPenalty, nPen)
	for i := range s.Penalized {
		e := &s.Penalized[i]
		e.IP, e.Mult = IP(data[off:off+16]), f(off+16)
		if e.IP.canonical() != e.IP {
			return nil, fmt.Errorf("%w: penalty-only IP entry %d: key %x is not a canonical IPv4 or /64 key", ErrCorrupt, i, e.IP[:])
		}
		if i > 0 && s.Penalized[i-1].IP.compare(e.IP) >= 0 {
			return nil, fmt.Errorf("%w: penalty-only IP entry %d: keys not strictly ascending", ErrCorrupt, i)
		}
		if !finite(e.Mult) || e.Mult > 1 {
			return nil, fmt.Errorf("%w: penalty-only IP entry %d (%s): multiplier %v", ErrCorrupt, i, e.IP, e.Mult)
		}
		off += penRecSize
	}
	if ip, ok := commonIP(s.IPs, s.Penalized); ok {
		return nil, fmt.Errorf("%w: IP %s is both learned and penalty-only", ErrCorrupt, ip)
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
		if e.Score < p.MinScore {
			if l.pen {
				return nil, fmt.Errorf("%w: signer entry %d (%s): score %v below the min score %v",
					ErrCorrupt, i, e.Signer, e.Score, p.MinScore)
			}
			e.Score = p.MinScore
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

// commonIP returns a key present in both sorted lists, if any.
func commonIP(a []IPScore, b []IPPenalty) (IP, bool) {
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch c := a[i].IP.compare(b[j].IP); {
		case c < 0:
			i++
		case c > 0:
			j++
		default:
			return a[i].IP, true
		}
	}
	return IP{}, false
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
