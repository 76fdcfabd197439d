package model

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cespare/xxhash/v2"
)

// The model file (format version 4), little-endian throughout:
//
//	offset  size  field
//	     0     8  magic "QOSMODEL"
//	     8     4  format version (FormatVersion)
//	    12     4  reserved, zero
//	    16    80  params: Window (u64), PriorWeight, UnknownPrior (f64
//	              bits), MinObservations, MaxIPs, MaxPrefixes, MaxSigners
//	              (u64), MinScore, UnpaidFloor, FailTolerance (f64 bits)
//	    96    56  counters: events, observations, paid, penalties,
//	              evicted IPs, evicted prefixes, evicted signers (u64)
//	   152    32  newcomer record: claim, paid, fail, n (f64 bits)
//	   184    32  number of IP, near-prefix, wide-prefix, signer records
//	   216    24  inclusion bar: params BarQuantile, BarStep, then the
//	              bar learnt (f64 bits)
//	   240        IP records:          16-byte key, claim, paid, fail, n, stamp (56 bytes each)
//	              near-prefix records: the same (/24 or /48 keys)
//	              wide-prefix records: the same (/16 or /32 keys)
//	              signer records:      32-byte key, claim, paid, exp, n, stamp (72)
//	   end-8   8  XXH64 (seed 0) of every byte before it
//
// Records are sorted by key bytes, strictly ascending, per table; IP keys
// are canonical and prefix keys have their other bits zero; claim, paid,
// fail and exp are finite and ≥ 0; n in [0, Window]; stamps are unique per table and below
// the event count. The encoding of a model is therefore unique: equal
// models give equal bytes.
//
// Version 3 is version 4 without the inclusion bar (a 216-byte header):
// Decode reads it with BarQuantile and BarStep at their defaults and no
// bar learnt yet, which the next paid outcomes set.
//
// Versions 1 and 2 held the value scores of the model before version 3
// (an EMA of fee per execution time, a median for unknown keys): they
// cannot be turned into pay rates, and Decode refuses them with ErrVersion
// and a message saying how to start fresh or rebuild from the database.
const (
	fileMagic     = "QOSMODEL"
	FormatVersion = 4

	headerSize    = 240 // version 4
	headerSizeV3  = 216
	ipRecSize     = 16 + 5*8
	signerRecSize = 32 + 5*8
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

// encodedSize is the size of a file with a header of hdr bytes and the
// given record counts.
func encodedSize(hdr, nIPs, nNear, nWide, nSigners uint64) uint64 {
	return hdr + (nIPs+nNear+nWide)*ipRecSize + nSigners*signerRecSize + sumSize
}

// headerLen is the header size of format version v (3 or 4).
func headerLen(v uint32) int {
	if v == 3 {
		return headerSizeV3
	}
	return headerSize
}

// AppendBinary appends m's file encoding to b. It never fails.
func (m *IPSigner) AppendBinary(b []byte) ([]byte, error) {
	s := m.Snapshot()
	le := binary.LittleEndian
	size := encodedSize(headerSize, uint64(len(s.IPs)), uint64(len(s.Near)), uint64(len(s.Wide)), uint64(len(s.Signers)))
	b = slicesGrow(b, int(size))
	start := len(b)
	b = append(b, fileMagic...)
	b = le.AppendUint32(b, FormatVersion)
	b = le.AppendUint32(b, 0)
	p := s.Params
	st := s.Stats
	for _, v := range [28]uint64{
		uint64(p.Window), math.Float64bits(p.PriorWeight), math.Float64bits(p.UnknownPrior),
		uint64(p.MinObservations), uint64(p.MaxIPs), uint64(p.MaxPrefixes), uint64(p.MaxSigners),
		math.Float64bits(p.MinScore), math.Float64bits(p.UnpaidFloor), math.Float64bits(p.FailTolerance),
		s.Events, st.Observations, st.Paid, st.Penalties, st.EvictedIPs, st.EvictedPrefixes, st.EvictedSigners,
		math.Float64bits(s.Newcomer.Claim), math.Float64bits(s.Newcomer.Paid), math.Float64bits(s.Newcomer.Fail),
		math.Float64bits(s.Newcomer.N),
		uint64(len(s.IPs)), uint64(len(s.Near)), uint64(len(s.Wide)), uint64(len(s.Signers)),
		math.Float64bits(p.BarQuantile), math.Float64bits(p.BarStep), math.Float64bits(s.Bar),
	} {
		b = le.AppendUint64(b, v)
	}
	for _, t := range [3][]IPRecord{s.IPs, s.Near, s.Wide} {
		for _, e := range t {
			b = append(b, e.IP[:]...)
			b = le.AppendUint64(b, math.Float64bits(e.Claim))
			b = le.AppendUint64(b, math.Float64bits(e.Paid))
			b = le.AppendUint64(b, math.Float64bits(e.Fail))
			b = le.AppendUint64(b, math.Float64bits(e.N))
			b = le.AppendUint64(b, e.Stamp)
		}
	}
	for _, e := range s.Signers {
		b = append(b, e.Signer[:]...)
		b = le.AppendUint64(b, math.Float64bits(e.Claim))
		b = le.AppendUint64(b, math.Float64bits(e.Paid))
		b = le.AppendUint64(b, math.Float64bits(e.Exp))
		b = le.AppendUint64(b, math.Float64bits(e.N))
		b = le.AppendUint64(b, e.Stamp)
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

// recordCounts returns the record counts a header holds. REQUIRES:
// len(head) ≥ headerSizeV3.
func recordCounts(head []byte) (nIPs, nNear, nWide, nSigners uint64) {
	le := binary.LittleEndian
	return le.Uint64(head[184:]), le.Uint64(head[192:]), le.Uint64(head[200:]), le.Uint64(head[208:])
}

// checkHeader checks what the first bytes of a file of the given size say.
// head holds the first min(size, headerSize) bytes. Only absolute limits
// are checked here; the rest waits for the checksum.
func checkHeader(head []byte, size int64) error {
	if len(head) < len(fileMagic) {
		if strings.HasPrefix(fileMagic, string(head)) {
			return fmt.Errorf("%w: %d bytes, shorter than the magic", ErrTruncated, size)
		}
		return fmt.Errorf("%w: %d bytes, no %q magic", ErrForeign, size, fileMagic)
	}
	if string(head[:8]) != fileMagic {
		return fmt.Errorf("%w: magic %q, want %q", ErrForeign, head[:8], fileMagic)
	}
	if len(head) < 16 {
		return fmt.Errorf("%w: %d bytes, no version", ErrTruncated, size)
	}
	le := binary.LittleEndian
	switch v := le.Uint32(head[8:]); {
	case v > FormatVersion:
		return fmt.Errorf("%w: version %d was written by a newer qos; this build reads version %d",
			ErrVersion, v, FormatVersion)
	case v == 1 || v == 2:
		return fmt.Errorf("%w: version %d holds the value scores of the model before pay rates (version %d), "+
			"which cannot be converted: move the file away to start with an empty model, or rebuild one "+
			"from the database with `qos-cli replay`", ErrVersion, v, FormatVersion)
	case v != FormatVersion && v != 3:
		return fmt.Errorf("%w: version %d; this build reads versions 3 and %d", ErrVersion, v, FormatVersion)
	}
	hdr := headerLen(le.Uint32(head[8:]))
	if r := le.Uint32(head[12:]); r != 0 {
		return fmt.Errorf("%w: reserved header field is %#x, want 0", ErrCorrupt, r)
	}
	if len(head) < hdr {
		return fmt.Errorf("%w: %d bytes, header needs %d", ErrTruncated, size, hdr)
	}
	nIPs, nNear, nWide, nSigners := recordCounts(head)
	if nIPs > MaxTableSize || nNear > MaxTableSize || nWide > MaxTableSize || nSigners > MaxTableSize {
		return fmt.Errorf("%w: header counts %d IPs, %d and %d prefixes, %d signers exceed the limits",
			ErrCorrupt, nIPs, nNear, nWide, nSigners)
	}
	want := encodedSize(uint64(hdr), nIPs, nNear, nWide, nSigners)
	switch {
	case uint64(size) < want:
		return fmt.Errorf("%w: %d bytes, header says %d", ErrTruncated, size, want)
	case uint64(size) > want:
		return fmt.Errorf("%w: %d bytes, header says %d (trailing bytes)", ErrCorrupt, size, want)
	}
	return nil
}

// Decode parses a model file's bytes (format version 4, or 3). Any input gives
// either a model or an error (one of ErrForeign, ErrVersion, ErrTruncated,
// ErrChecksum, ErrCorrupt), never both and never a panic.
func Decode(data []byte) (*IPSigner, error) {
	if err := checkHeader(data[:min(len(data), headerSize)], int64(len(data))); err != nil {
		return nil, err
	}
	le := binary.LittleEndian
	body := data[:len(data)-sumSize]
	if got, want := xxhash.Sum64(body), le.Uint64(data[len(body):]); got != want {
		return nil, fmt.Errorf("%w: stored %#016x, computed %#016x", ErrChecksum, want, got)
	}
	u := func(off int) uint64 { return le.Uint64(data[off:]) }
	f := func(off int) float64 { return math.Float64frombits(le.Uint64(data[off:])) }
	hdr := headerLen(le.Uint32(data[8:]))
	d := DefaultParams()
	p := Params{
		Window: toInt(u(16)), PriorWeight: f(24), UnknownPrior: f(32), MinObservations: toInt(u(40)),
		MaxIPs: toInt(u(48)), MaxPrefixes: toInt(u(56)), MaxSigners: toInt(u(64)), MinScore: f(72),
		UnpaidFloor: f(80), FailTolerance: f(88), BarQuantile: d.BarQuantile, BarStep: d.BarStep,
	}
	bar := 0.0
	if hdr == headerSize {
		p.BarQuantile, p.BarStep, bar = f(216), f(224), f(232)
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("%w: parameters: %v", ErrCorrupt, err)
	}
	s := Snapshot{
		Params: p,
		Events: u(96),
		Stats: Stats{Observations: u(104), Paid: u(112), Penalties: u(120),
			EvictedIPs: u(128), EvictedPrefixes: u(136), EvictedSigners: u(144)},
		Newcomer: Record{Claim: f(152), Paid: f(160), Fail: f(168), N: f(176)},
		Bar:      bar,
	}
	if !finite(bar) {
		return nil, fmt.Errorf("%w: inclusion bar %v", ErrCorrupt, bar)
	}
	w := float64(p.Window)
	if !finite(s.Newcomer.Claim) || !finite(s.Newcomer.Paid) || !finite(s.Newcomer.Fail) ||
		!(finite(s.Newcomer.N) && s.Newcomer.N <= w) {
		return nil, fmt.Errorf("%w: newcomer record %+v", ErrCorrupt, s.Newcomer)
	}
	n1, n2, n3, n4 := recordCounts(data)
	if int(n1) > p.MaxIPs || int(n2) > p.MaxPrefixes || int(n3) > p.MaxPrefixes || int(n4) > p.MaxSigners {
		return nil, fmt.Errorf("%w: %d IPs, %d and %d prefixes, %d signers do not fit max IPs %d, max prefixes %d, max signers %d",
			ErrCorrupt, n1, n2, n3, n4, p.MaxIPs, p.MaxPrefixes, p.MaxSigners)
	}
	off := hdr
	var err error
	tables := [3]struct {
		what string
		n    uint64
		out  *[]IPRecord
		key  func(IP) IP
	}{
		{"IP", n1, &s.IPs, IP.canonical},
		{"near prefix", n2, &s.Near, func(ip IP) IP { n, _ := ip.canonical().prefixes(); return n }},
		{"wide prefix", n3, &s.Wide, func(ip IP) IP { _, w := ip.canonical().prefixes(); return w }},
	}
	for _, t := range tables {
		rs := make([]IPRecord, t.n)
		stamps := make([]uint64, t.n)
		for i := range rs {
			e := &rs[i]
			e.IP = IP(data[off : off+16])
			e.Claim, e.Paid, e.Fail, e.N, e.Stamp = f(off+16), f(off+24), f(off+32), f(off+40), u(off+48)
			stamps[i] = e.Stamp
			switch {
			case t.key(e.IP) != e.IP:
				err = fmt.Errorf("%w: %s record %d: key %x is not a canonical key of its table", ErrCorrupt, t.what, i, e.IP[:])
			case i > 0 && rs[i-1].IP.compare(e.IP) >= 0:
				err = fmt.Errorf("%w: %s record %d: keys not strictly ascending", ErrCorrupt, t.what, i)
			case !finite(e.Claim) || !finite(e.Paid) || !finite(e.Fail) || !(finite(e.N) && e.N <= w) || e.Stamp >= s.Events:
				err = fmt.Errorf("%w: %s record %d (%s): claim %v, paid %v, fail %v, n %v, stamp %d (events %d)",
					ErrCorrupt, t.what, i, e.IP, e.Claim, e.Paid, e.Fail, e.N, e.Stamp, s.Events)
			}
			if err != nil {
				return nil, err
			}
			off += ipRecSize
		}
		if err := uniqueStamps(stamps, t.what); err != nil {
			return nil, err
		}
		*t.out = rs
	}
	s.Signers = make([]SignerRecord, n4)
	stamps := make([]uint64, n4)
	for i := range s.Signers {
		e := &s.Signers[i]
		e.Signer = Signer(data[off : off+32])
		e.Claim, e.Paid, e.Exp, e.N, e.Stamp = f(off+32), f(off+40), f(off+48), f(off+56), u(off+64)
		stamps[i] = e.Stamp
		switch {
		case i > 0 && s.Signers[i-1].Signer.compare(e.Signer) >= 0:
			return nil, fmt.Errorf("%w: signer record %d: keys not strictly ascending", ErrCorrupt, i)
		case !finite(e.Claim) || !finite(e.Paid) || !finite(e.Exp) || !(finite(e.N) && e.N <= w) || e.Stamp >= s.Events:
			return nil, fmt.Errorf("%w: signer record %d (%s): claim %v, paid %v, exp %v, n %v, stamp %d (events %d)",
				ErrCorrupt, i, e.Signer, e.Claim, e.Paid, e.Exp, e.N, e.Stamp, s.Events)
		}
		off += signerRecSize
	}
	if err := uniqueStamps(stamps, "signer"); err != nil {
		return nil, err
	}
	return fromSnapshot(s), nil
}

// uniqueStamps reports a stamp used twice in one table. It sorts stamps.
func uniqueStamps(stamps []uint64, what string) error {
	slices.Sort(stamps)
	for i := 1; i < len(stamps); i++ {
		if stamps[i] == stamps[i-1] {
			return fmt.Errorf("%w: two %s records have stamp %d", ErrCorrupt, what, stamps[i])
		}
	}
	return nil
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
	if err := checkHeader(head, size); err != nil {
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
